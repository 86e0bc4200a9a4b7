//! Subscribed to the jobs dead-letter queue: every job whose message ends
//! there is failed and its stamp returned, by the system, never by a human;
//! every dead letter is recorded.
// The AWS SDK futures nest deeply; the default limit of 128 is too low for their layout.
#![recursion_limit = "256"]

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use meterai::{stamping, App};
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Error> {
    meterai::telemetry::init();
    let app: &'static App = Box::leak(Box::new(App::from_env().await?));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let span = tracing::info_span!("dead_letters", request_id = %event.context.request_id, size = event.payload.records.len());
        Ok::<SqsBatchResponse, Error>(stamping::reconcile(&app.clients, app.stamp_settings(), event.payload).instrument(span).await)
    }))
    .await
}
