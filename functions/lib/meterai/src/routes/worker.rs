//! The stamp worker: subscribed to the jobs queue, reports partial batch failures.

use crate::{jobs, App};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use meterai_app::stamping;

/// The function: the settings it cannot start without, and its batch handler.
pub const FUNCTION: crate::lambda::Queue = crate::lambda::Queue {
    needs: crate::config::Needs {
        signing_key: true,
        events: true,
        ..crate::config::Needs::NONE
    },
    handle,
};

/// One batch (its future is boxed here, so the function's binary compiles
/// none of this).
pub fn handle(
    app: &'static App,
    event: SqsEvent,
    deadline: std::time::Instant,
) -> crate::lambda::BatchAnswer {
    Box::pin(work(app, event, deadline))
}

async fn work(
    app: &'static App,
    event: SqsEvent,
    deadline: std::time::Instant,
) -> SqsBatchResponse {
    let settings = app.stamp_settings();
    let ports = &app.stamp_ports();
    // A job: reading the file, stamping it within its timeout, signing,
    // storing and recording it.
    let time = jobs::TimeLeft {
        deadline,
        per_message: settings.stamp_timeout + jobs::RECORDING_MARGIN,
    };
    let (response, failed) = jobs::process_batch(
        event,
        jobs::retry_policy(&app.config),
        time,
        |job: jobs::JobMessage, _message_id| async move {
            // Without the key's certificate nothing can be signed: the message
            // is retried (and, if that lasts, dead-lettered, which returns the stamp).
            match app.signer().await {
                Ok(signer) => stamping::work(ports, settings, &signer, &job.job_id).await,
                Err(e) => jobs::Outcome::Retry(e.to_string()),
            }
        },
    )
    .await;
    jobs::delay_retries(&app.clients, &app.config.jobs_queue_url, &failed).await;
    response
}
