//! Outbound webhook events to resellers (`stamp.completed`, `stamp.failed`,
//! `order.paid`, `refund.completed`): how one is made and how one delivery
//! goes. The event's id comes from its cause, so emitting twice records one
//! event, and it is the `webhook-id` of every attempt (Standard Webhooks).
//!
//! A delivery signs the stored payload and POSTs it: 2xx delivers; 410 Gone
//! disables the endpoint and parks the event; an endpoint that is disabled,
//! missing or not a public address parks it without sending; anything else
//! is retried by the queue with backoff and, after the last try, lands in
//! the dead-letter queue, from which a replay puts it back.

use meterai_core::events::{event_id, Event, EventStatus, EventType};
use meterai_core::Result;

use crate::ports::{Attempt, Clock, Delivery, Events, WebhookClient};
use crate::Outcome;

/// A new event for `reseller_id`: its id from its cause, its payload
/// `{type, timestamp, data}` fixed now for every attempt.
pub fn new_event(
    reseller_id: &str,
    kind: EventType,
    reference: &str,
    data: serde_json::Value,
    now_ms: i64,
) -> Event {
    let payload = serde_json::json!({
        "type": kind.as_str(),
        "timestamp": meterai_core::time::rfc3339(now_ms),
        "data": data,
    })
    .to_string();
    Event {
        event_id: event_id(kind, reference),
        reseller_id: reseller_id.to_string(),
        kind,
        payload,
        status: EventStatus::Pending,
        attempts: 0,
        created_ms: now_ms,
    }
}

/// The ports a delivery works with.
#[derive(Clone, Copy)]
pub struct DeliveryPorts<'a> {
    pub events: &'a dyn Events,
    pub client: &'a dyn WebhookClient,
    pub clock: &'a dyn Clock,
    /// Loopback endpoints are allowed (the local stage only).
    pub allow_loopback: bool,
}

/// Delivers one event (the deliverer function's whole job).
pub async fn deliver(ports: &DeliveryPorts<'_>, event_id: &str) -> Outcome {
    match deliver_once(ports, event_id).await {
        Ok(outcome) => outcome,
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

async fn deliver_once(ports: &DeliveryPorts<'_>, event_id: &str) -> Result<Outcome> {
    let Some(event) = ports.events.load(event_id).await? else {
        return Ok(Outcome::Poison(format!("no event {event_id}")));
    };
    if event.status != EventStatus::Pending {
        return Ok(Outcome::Duplicate);
    }
    let Some(endpoint) = ports.events.endpoint(&event.reseller_id).await? else {
        return Ok(Outcome::Poison(format!(
            "no reseller {}",
            event.reseller_id
        )));
    };
    let url = match (&endpoint.url, endpoint.enabled) {
        (Some(url), true) => url.clone(),
        _ => return park(ports, &event, "the endpoint is disabled").await,
    };
    let target = match meterai_core::network::check_delivery_target(&url, ports.allow_loopback) {
        Ok(target) => target,
        Err(reason) => return park(ports, &event, &reason).await,
    };
    let timestamp = ports.clock.now_ms() / 1000;
    let signature = endpoint
        .secret
        .sign(&event.event_id, timestamp, event.payload.as_bytes());
    let sent = ports
        .client
        .post(&Delivery {
            url: target.as_str(),
            webhook_id: &event.event_id,
            timestamp,
            signature: &signature,
            body: &event.payload,
        })
        .await;
    let now = ports.clock.now_ms();
    let status = match sent {
        Ok(status) => status,
        Err(e) => {
            let reason = format!("delivery failed: {e}");
            ports
                .events
                .record_attempt(event_id, Attempt::Failed(&reason), now)
                .await?;
            tracing::info!(target: meterai_core::METRIC, webhooks_failed = 1, code = "UNREACHABLE");
            return Ok(Outcome::Retry(reason));
        }
    };
    match status {
        200..=299 => {
            ports
                .events
                .record_attempt(event_id, Attempt::Delivered, now)
                .await?;
            tracing::info!(event_id, status, "webhook delivered");
            tracing::info!(target: meterai_core::METRIC, webhooks_delivered = 1);
            Ok(Outcome::Done)
        }
        410 => {
            ports.events.disable_endpoint(&event.reseller_id).await?;
            tracing::warn!(event_id, reseller_id = %event.reseller_id, "endpoint answered 410 Gone; disabled");
            park(ports, &event, "the endpoint answered 410 Gone").await
        }
        _ => {
            let reason = format!("the endpoint answered {status}");
            ports
                .events
                .record_attempt(event_id, Attempt::Failed(&reason), now)
                .await?;
            tracing::info!(target: meterai_core::METRIC, webhooks_failed = 1, code = "REFUSED");
            Ok(Outcome::Retry(reason))
        }
    }
}

/// An event that cannot be delivered now waits in the dead-letter queue for
/// a replay (after the endpoint is fixed); without one, the message itself
/// dead-letters.
async fn park(ports: &DeliveryPorts<'_>, event: &Event, reason: &str) -> Result<Outcome> {
    if !ports.events.park(&event.event_id).await? {
        return Ok(Outcome::Poison(reason.to_string()));
    }
    ports
        .events
        .record_attempt(
            &event.event_id,
            Attempt::Failed(reason),
            ports.clock.now_ms(),
        )
        .await?;
    tracing::warn!(event_id = %event.event_id, reason, "event parked in the dead-letter queue");
    tracing::info!(target: meterai_core::METRIC, webhooks_parked = 1);
    Ok(Outcome::Done)
}
