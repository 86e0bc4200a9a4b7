//! The stamp worker: subscribed to the jobs queue, reports partial batch failures.
// The AWS SDK futures nest deeply; the default limit of 128 is too low for their layout.
#![recursion_limit = "256"]

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use meterai::{jobs, stamping, App};
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Error> {
    meterai::telemetry::init();
    let app: &'static App = Box::leak(Box::new(App::from_env().await?));
    let settings: &'static stamping::StampSettings = app.stamp_settings();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let span = tracing::info_span!("batch", request_id = %event.context.request_id, size = event.payload.records.len());
        Ok::<SqsBatchResponse, Error>(handle(app, settings, event.payload).instrument(span).await)
    }))
    .await
}

async fn handle(
    app: &'static App,
    settings: &'static stamping::StampSettings,
    event: SqsEvent,
) -> SqsBatchResponse {
    let (response, failed) = jobs::process_batch(
        event,
        jobs::RetryPolicy::from_config(&app.config),
        |job: jobs::JobMessage, _message_id| async move {
            // Without the key's certificate nothing can be signed: the message
            // is retried (and, if that lasts, dead-lettered, which returns the stamp).
            match app.signer().await {
                Ok(signer) => stamping::work(&app.clients, settings, &signer, &job.job_id).await,
                Err(e) => jobs::Outcome::Retry(e.to_string()),
            }
        },
    )
    .await;
    jobs::delay_retries(&app.clients, &app.config.jobs_queue_url, &failed).await;
    response
}
