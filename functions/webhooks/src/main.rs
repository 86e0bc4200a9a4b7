//! The webhook deliverer: subscribed to the webhooks queue, signs and POSTs
//! each event to its reseller's endpoint, reports partial batch failures so a
//! failed delivery comes back later (jittered exponential backoff) and, after
//! the last try, lands in the webhooks dead-letter queue.
// The AWS SDK futures nest deeply; the default limit of 128 is too low for their layout.
#![recursion_limit = "256"]

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use meterai::events::Deliverer;
use meterai::jobs::{self, EventMessage};
use meterai::App;
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Error> {
    meterai::telemetry::init();
    let app: &'static App = Box::leak(Box::new(App::from_env().await?));
    let deliverer: &'static Deliverer = Box::leak(Box::new(Deliverer::new(
        app.table(),
        app.config.webhooks_dead_letter_queue_url.clone(),
        app.config.webhook_timeout,
        app.is_local_stage(),
    )));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let span = tracing::info_span!("deliveries", request_id = %event.context.request_id, size = event.payload.records.len());
        Ok::<SqsBatchResponse, Error>(handle(app, deliverer, event.payload).instrument(span).await)
    }))
    .await
}

async fn handle(
    app: &'static App,
    deliverer: &'static Deliverer,
    event: SqsEvent,
) -> SqsBatchResponse {
    let retry = jobs::RetryPolicy {
        jitter: true,
        ..jobs::RetryPolicy::from_config(&app.config)
    };
    let (response, failed) =
        jobs::process_batch(event, retry, |message: EventMessage, _| async move {
            deliverer.deliver(&app.clients, &message.event_id).await
        })
        .await;
    if let Some(queue_url) = &app.config.webhooks_queue_url {
        jobs::delay_retries(&app.clients, queue_url, &failed).await;
    }
    response
}
