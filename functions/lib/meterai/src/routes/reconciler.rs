//! Subscribed to the jobs dead-letter queue: every job whose message ends
//! there is failed and its stamp returned, by the system, never by a human;
//! every dead letter is recorded.

use aws_lambda_events::event::sqs::SqsEvent;

use crate::{stamping, App};

/// The function: the settings it cannot start without, and its batch handler.
pub const FUNCTION: crate::lambda::Queue = crate::lambda::Queue {
    needs: crate::config::Needs {
        events: true,
        ..crate::config::Needs::NONE
    },
    handle,
};

/// One batch of dead letters.
pub fn handle(app: &'static App, event: SqsEvent) -> crate::lambda::BatchAnswer {
    Box::pin(async move { stamping::reconcile(&app.stamp_ports(), event).await })
}
