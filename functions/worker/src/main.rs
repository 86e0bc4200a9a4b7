//! The stamp worker: subscribed to the jobs queue, reports partial batch failures.
// The AWS SDK futures nest deeply; the default limit of 128 is too low for their layout.
#![recursion_limit = "256"]

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use meterai::{jobs, AwsClients, Config};
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Error> {
    meterai::telemetry::init();
    let config = Config::from_env()?;
    let clients = AwsClients::new(&config).await;
    let (config, clients) = (&config, &clients);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let span = tracing::info_span!("batch", request_id = %event.context.request_id, size = event.payload.records.len());
        Ok::<SqsBatchResponse, Error>(handle(event.payload, clients, config).instrument(span).await)
    }))
    .await
}

async fn handle(event: SqsEvent, clients: &AwsClients, config: &Config) -> SqsBatchResponse {
    let (response, failed) =
        jobs::process_batch(
            event,
            jobs::RetryPolicy::from_config(config),
            |job, message_id| async move {
                jobs::record_delivery(clients, config, &job, &message_id).await
            },
        )
        .await;
    jobs::delay_retries(clients, &config.jobs_queue_url, &failed).await;
    response
}
