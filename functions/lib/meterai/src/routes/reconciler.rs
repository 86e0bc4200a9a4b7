//! Subscribed to the jobs dead-letter queue: every job whose message ends
//! there is failed and its stamp returned, by the system, never by a human;
//! every dead letter is recorded.

use aws_lambda_events::event::sqs::SqsEvent;

use crate::jobs::{Envelope, JobMessage};
use crate::App;
use meterai_app::stamping::{DeadMessage, StampPorts};

/// The function: the settings it cannot start without, and its batch handler.
pub const FUNCTION: crate::lambda::Queue = crate::lambda::Queue {
    needs: crate::config::Needs {
        events: true,
        ..crate::config::Needs::NONE
    },
    handle,
};

/// One batch of dead letters.
pub fn handle(
    app: &'static App,
    event: SqsEvent,
    _deadline: std::time::Instant,
) -> crate::lambda::BatchAnswer {
    Box::pin(async move {
        let received = event.records.len();
        let answer = reconcile(&app.stamp_ports(), event).await;
        // Those handed back come again: counted when they are reconciled.
        let dead = received.saturating_sub(answer.batch_item_failures.len()) as u64;
        // The operators' alarm: a job reached the dead-letter queue. Put,
        // not logged, so the alarm acts within its minute; a failed put is
        // logged and never holds the batch back.
        if dead > 0 {
            let data = vec![crate::metrics::count("jobs_dead_lettered", dead)];
            if let Err(e) = crate::metrics::put(&app.clients, data).await {
                tracing::warn!(error = %e, "jobs_dead_lettered not put");
            }
        }
        answer
    })
}

/// Handles a batch from the dead-letter queue, one message at a time (see
/// [`meterai_app::stamping::reconcile_dead_letter`]). A message whose
/// reconciliation could not be recorded is reported back and comes again;
/// the others are removed: the record keeps what an operator needs, and
/// nothing cycles forever.
pub async fn reconcile(
    ports: &StampPorts<'_>,
    event: aws_lambda_events::event::sqs::SqsEvent,
) -> aws_lambda_events::event::sqs::SqsBatchResponse {
    use tracing::Instrument;
    let mut response = aws_lambda_events::event::sqs::SqsBatchResponse::default();
    for message in event.records {
        let message_id = message.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!("dead_letter", message_id = %message_id);
        let parsed = JobMessage::parse(message.body.as_deref());
        let dead = DeadMessage {
            message_id: &message_id,
            job: match &parsed {
                Ok(job) => Ok(job.job_id.as_str()),
                Err(poison) => Err(poison.to_string()),
            },
            body: message.body.as_deref().unwrap_or(""),
            receive_count: message
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        };
        let reconciled = meterai_app::stamping::reconcile_dead_letter(ports, &dead)
            .instrument(span.clone())
            .await;
        if let Err(e) = reconciled {
            span.in_scope(
                || tracing::error!(error = %e, "dead letter not reconciled; it will be retried"),
            );
            let mut failure = aws_lambda_events::event::sqs::BatchItemFailure::default();
            failure.item_identifier = message_id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}
