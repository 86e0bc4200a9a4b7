//! The webhook deliverer: subscribed to the webhooks queue, signs and POSTs
//! each event to its reseller's endpoint, reports partial batch failures so a
//! failed delivery comes back later (jittered exponential backoff) and, after
//! the last try, lands in the webhooks dead-letter queue.

use std::sync::OnceLock;

use crate::events::{DynamoEvents, HttpWebhookClient};
use crate::jobs::{self, EventMessage};
use crate::App;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use meterai_app::events::{deliver, DeliveryPorts};
use meterai_app::ports::SystemClock;

/// The deliverer's adapters (its HTTP client above all), built once per cold start.
fn adapters(app: &App) -> &'static (DynamoEvents, HttpWebhookClient) {
    static ADAPTERS: OnceLock<(DynamoEvents, HttpWebhookClient)> = OnceLock::new();
    ADAPTERS.get_or_init(|| {
        (
            DynamoEvents {
                clients: app.clients.clone(),
                secrets: app
                    .webhook_secrets()
                    .expect("the cold start checked SECRETS_KEY_ID")
                    .clone(),
                table: app.table().to_string(),
                dead_letter_queue_url: app.config.webhooks_dead_letter_queue_url.clone(),
            },
            HttpWebhookClient::new(app.config.webhook_timeout, app.on_emulator()),
        )
    })
}

/// The function: the settings it cannot start without, and its batch handler.
pub const FUNCTION: crate::lambda::Queue = crate::lambda::Queue {
    needs: crate::config::Needs {
        events: true,
        event_dead_letters: true,
        webhook_secrets: true,
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
    let (events, client) = adapters(app);
    let ports = DeliveryPorts {
        events,
        client,
        clock: &SystemClock,
        allow_loopback: app.on_emulator(),
    };
    let ports = &ports;
    let retry = jobs::RetryPolicy {
        jitter: true,
        ..jobs::retry_policy(&app.config)
    };
    // A delivery: reading the event, the receiver's answer within its
    // timeout, recording what came of it.
    let time = jobs::TimeLeft {
        deadline,
        per_message: app.config.webhook_timeout + jobs::RECORDING_MARGIN,
    };
    let (response, failed) =
        jobs::process_batch(event, retry, time, |message: EventMessage, _| async move {
            deliver(ports, &message.event_id).await
        })
        .await;
    if let Some(queue_url) = &app.config.webhooks_queue_url {
        jobs::delay_retries(&app.clients, queue_url, &failed).await;
    }
    response
}
