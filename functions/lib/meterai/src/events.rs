//! Outbound webhook events to resellers: `stamp.completed`, `stamp.failed`,
//! `order.paid`, `refund.completed`.
//!
//! An event is recorded in the table (`EVENT#{id}`) and its id is sent to
//! the webhooks queue; the deliverer function signs and POSTs it, so a slow
//! or failing reseller never slows stamping. The event id is derived from its
//! cause (type + job/order id), so emitting twice (a redelivered job message,
//! a retry after a crash) records one event, and it is the `webhook-id` of
//! every attempt. Failed attempts come back with jittered exponential backoff
//! (the queue's visibility); after the last one the message moves to the
//! webhooks dead-letter queue, from which `meterai-admin replay-webhooks`
//! puts it back. An endpoint answering 410 Gone is disabled, and events for a
//! disabled endpoint go straight to the dead-letter queue.

use std::net::SocketAddr;
use std::time::Duration;

use aws_sdk_dynamodb::error::DisplayErrorContext;

use crate::error::{Error, Result};
use crate::jobs::{Envelope, EventMessage, Outcome};
use crate::resellers;
use crate::store::{get_n, get_s, n, s, Item};
use crate::AwsClients;

/// How long an event record is kept.
const EVENT_TTL_SECONDS: i64 = 30 * 24 * 3600;

pub use meterai_core::events::{event_id, EventType};
use meterai_core::network::{allowed_target as allowed, literal_ip};

/// Where events go (the functions that emit them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbox {
    pub table: String,
    pub queue_url: String,
}

/// Records an event for a reseller and queues its delivery. Idempotent: an
/// event already delivered is not queued again.
pub async fn emit(
    clients: &AwsClients,
    outbox: &Outbox,
    reseller_id: &str,
    kind: EventType,
    reference: &str,
    data: serde_json::Value,
) -> Result<String> {
    let id = event_id(kind, reference);
    let now = meterai_core::time::now_ms();
    let payload = serde_json::json!({
        "type": kind.as_str(),
        "timestamp": meterai_core::time::rfc3339(now),
        "data": data,
    })
    .to_string();
    let item = Item::from([
        ("pk".to_string(), s(format!("EVENT#{id}"))),
        ("sk".to_string(), s("EVENT")),
        ("event_id".to_string(), s(&id)),
        ("reseller_id".to_string(), s(reseller_id)),
        ("type".to_string(), s(kind.as_str())),
        ("payload".to_string(), s(payload)),
        ("status".to_string(), s("pending")),
        ("attempts".to_string(), n(0)),
        ("created_at".to_string(), n(now)),
        ("expires_at".to_string(), n(now / 1000 + EVENT_TTL_SECONDS)),
    ]);
    let put = clients
        .dynamodb
        .put_item()
        .table_name(&outbox.table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await;
    if let Err(e) = put {
        let exists = e
            .as_service_error()
            .is_some_and(|s| s.is_conditional_check_failed_exception());
        if !exists {
            return Err(Error::table(DisplayErrorContext(e)));
        }
        if load(clients, &outbox.table, &id)
            .await?
            .is_some_and(|event| event.status != "pending")
        {
            return Ok(id);
        }
    }
    clients
        .sqs
        .send_message()
        .queue_url(&outbox.queue_url)
        .message_body(
            EventMessage {
                event_id: id.clone(),
            }
            .to_body(),
        )
        .send()
        .await
        .map_err(|e| Error::queue(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    tracing::info!(event_id = %id, reseller_id, kind = kind.as_str(), "webhook event queued");
    Ok(id)
}

/// Emits an event if `account` is a reseller's pool (portal users and
/// customers get no webhooks; their reseller hears of customer jobs).
pub async fn emit_for_account(
    clients: &AwsClients,
    outbox: Option<&Outbox>,
    account: &str,
    kind: EventType,
    reference: &str,
    data: serde_json::Value,
) -> Result<()> {
    let (Some(outbox), Some(reseller_id)) = (outbox, account.strip_prefix(resellers::POOL_PREFIX))
    else {
        return Ok(());
    };
    emit(clients, outbox, reseller_id, kind, reference, data).await?;
    Ok(())
}

/// The outbox of a function that emits reseller events (none when the
/// function has no webhooks queue): the adapter of `meterai_app::ports::Outbox`.
#[derive(Debug, Clone)]
pub struct DynamoOutbox {
    pub clients: AwsClients,
    pub outbox: Option<Outbox>,
}

#[async_trait::async_trait]
impl meterai_app::ports::Outbox for DynamoOutbox {
    async fn emit_for_account(
        &self,
        account: &meterai_core::AccountId,
        kind: EventType,
        reference: &str,
        data: serde_json::Value,
    ) -> Result<()> {
        emit_for_account(
            &self.clients,
            self.outbox.as_ref(),
            account.as_str(),
            kind,
            reference,
            data,
        )
        .await
    }
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub event_id: String,
    pub reseller_id: String,
    pub payload: String,
    pub status: String,
    pub attempts: i64,
}

pub async fn load(clients: &AwsClients, table: &str, event_id: &str) -> Result<Option<Event>> {
    let out = clients
        .dynamodb
        .get_item()
        .table_name(table)
        .key("pk", s(format!("EVENT#{event_id}")))
        .key("sk", s("EVENT"))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| Error::table(DisplayErrorContext(e)))?;
    Ok(out.item().and_then(|item| {
        Some(Event {
            event_id: get_s(item, "event_id")?.to_string(),
            reseller_id: get_s(item, "reseller_id")?.to_string(),
            payload: get_s(item, "payload")?.to_string(),
            status: get_s(item, "status")?.to_string(),
            attempts: get_n(item, "attempts").unwrap_or(0),
        })
    }))
}

/// Where deliveries may go: public addresses only, or loopback as well on
/// the local stage. Used as the HTTP client's resolver, so the check holds
/// for the address actually connected to (no DNS rebinding between check
/// and connect).
#[derive(Debug, Clone, Copy)]
struct CheckedResolver {
    allow_loopback: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_loopback = self.allow_loopback;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addresses.is_empty() || addresses.iter().any(|a| !allowed(a.ip(), allow_loopback)) {
                return Err(format!("{host} resolves to a non-public address").into());
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The deliverer's HTTP client and rules, built once per cold start.
#[derive(Debug, Clone)]
pub struct Deliverer {
    http: reqwest::Client,
    pub table: String,
    pub dead_letter_queue_url: Option<String>,
    pub allow_loopback: bool,
}

impl Deliverer {
    pub fn new(
        table: &str,
        dead_letter_queue_url: Option<String>,
        timeout: Duration,
        allow_loopback: bool,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect could point anywhere, including inside our network.
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(std::sync::Arc::new(CheckedResolver { allow_loopback }))
            .user_agent("meterai-webhooks/1")
            .build()
            .expect("the HTTP client builds");
        Self {
            http,
            table: table.to_string(),
            dead_letter_queue_url,
            allow_loopback,
        }
    }

    /// Checks an endpoint URL before sending: the form, and for a literal IP
    /// host (which the resolver never sees) the address itself.
    fn check_target(&self, url: &str) -> std::result::Result<reqwest::Url, String> {
        let parsed = meterai_core::network::check_webhook_url(url, self.allow_loopback)
            .map_err(|e| e.to_string())?;
        if literal_ip(&parsed).is_some_and(|ip| !allowed(ip, self.allow_loopback)) {
            return Err(format!("{url} is not a public address"));
        }
        Ok(parsed)
    }

    /// Delivers one event (the deliverer function's whole job).
    pub async fn deliver(&self, clients: &AwsClients, event_id: &str) -> Outcome {
        match self.deliver_inner(clients, event_id).await {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Retry(e.to_string()),
        }
    }

    async fn deliver_inner(&self, clients: &AwsClients, event_id: &str) -> Result<Outcome> {
        let Some(event) = load(clients, &self.table, event_id).await? else {
            return Ok(Outcome::Poison(format!("no event {event_id}")));
        };
        if event.status != "pending" {
            return Ok(Outcome::Duplicate);
        }
        let Some(reseller) = resellers::load(clients, &self.table, &event.reseller_id).await?
        else {
            return Ok(Outcome::Poison(format!(
                "no reseller {}",
                event.reseller_id
            )));
        };
        let url = match (&reseller.webhook_url, reseller.webhook_enabled) {
            (Some(url), true) => url.clone(),
            _ => return self.park(clients, &event, "the endpoint is disabled").await,
        };
        let target = match self.check_target(&url) {
            Ok(target) => target,
            Err(reason) => return self.park(clients, &event, &reason).await,
        };
        let timestamp = meterai_core::time::now_ms() / 1000;
        let signature =
            reseller
                .webhook_secret
                .sign(&event.event_id, timestamp, event.payload.as_bytes());
        let sent = self
            .http
            .post(target)
            .header("content-type", "application/json")
            .header("webhook-id", &event.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(event.payload.clone())
            .send()
            .await;
        let status = match sent {
            Ok(response) => response.status().as_u16(),
            Err(e) => {
                let reason = format!("delivery failed: {e}");
                self.record_attempt(clients, &event, None, &reason).await?;
                return Ok(Outcome::Retry(reason));
            }
        };
        match status {
            200..=299 => {
                self.record_attempt(clients, &event, Some("delivered"), "")
                    .await?;
                tracing::info!(event_id, status, "webhook delivered");
                Ok(Outcome::Done)
            }
            410 => {
                resellers::disable_webhook(clients, &self.table, &event.reseller_id).await?;
                tracing::warn!(event_id, reseller_id = %event.reseller_id, "endpoint answered 410 Gone; disabled");
                self.park(clients, &event, "the endpoint answered 410 Gone")
                    .await
            }
            _ => {
                let reason = format!("the endpoint answered {status}");
                self.record_attempt(clients, &event, None, &reason).await?;
                Ok(Outcome::Retry(reason))
            }
        }
    }

    /// Sends an event that cannot be delivered now to the dead-letter queue,
    /// where it waits for a replay (after the endpoint is fixed).
    async fn park(&self, clients: &AwsClients, event: &Event, reason: &str) -> Result<Outcome> {
        let Some(dlq) = &self.dead_letter_queue_url else {
            return Ok(Outcome::Poison(reason.to_string()));
        };
        clients
            .sqs
            .send_message()
            .queue_url(dlq)
            .message_body(
                EventMessage {
                    event_id: event.event_id.clone(),
                }
                .to_body(),
            )
            .send()
            .await
            .map_err(|e| Error::queue(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        self.record_attempt(clients, event, None, reason).await?;
        tracing::warn!(event_id = %event.event_id, reason, "event parked in the dead-letter queue");
        Ok(Outcome::Done)
    }

    async fn record_attempt(
        &self,
        clients: &AwsClients,
        event: &Event,
        new_status: Option<&str>,
        error: &str,
    ) -> Result<()> {
        let mut update = clients
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("EVENT#{}", event.event_id)))
            .key("sk", s("EVENT"))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(meterai_core::time::now_ms()));
        update = match new_status {
            Some(status) => update
                .update_expression("SET #status = :status, delivered_at = :now ADD attempts :one")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", s(status)),
            None => update
                .update_expression(
                    "SET last_error = :error, last_attempt_at = :now ADD attempts :one",
                )
                .expression_attribute_values(":error", s(error)),
        };
        update
            .send()
            .await
            .map_err(|e| Error::table(DisplayErrorContext(e)))?;
        Ok(())
    }
}

/// Moves up to `max` messages from the webhooks dead-letter queue back to the
/// webhooks queue (the admin's replay). Returns how many moved.
pub async fn replay_dead_letters(
    clients: &AwsClients,
    dead_letter_queue_url: &str,
    queue_url: &str,
    max: usize,
) -> Result<usize> {
    let mut moved = 0;
    while moved < max {
        let out = clients
            .sqs
            .receive_message()
            .queue_url(dead_letter_queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|e| Error::queue(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            let body = message.body.clone().unwrap_or_default();
            clients
                .sqs
                .send_message()
                .queue_url(queue_url)
                .message_body(body)
                .send()
                .await
                .map_err(|e| Error::queue(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
            if let Some(handle) = message.receipt_handle() {
                clients
                    .sqs
                    .delete_message()
                    .queue_url(dead_letter_queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(|e| Error::queue(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
            }
            moved += 1;
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_private_targets_are_refused_even_over_https() {
        let deliverer = Deliverer::new("t", None, Duration::from_secs(1), false);
        assert!(deliverer
            .check_target("https://169.254.169.254/latest")
            .is_err());
        assert!(deliverer.check_target("https://[::1]/hook").is_err());
        assert!(deliverer.check_target("http://127.0.0.1:9/hook").is_err());
        assert!(deliverer.check_target("https://shop.example/hook").is_ok());
        let local = Deliverer::new("t", None, Duration::from_secs(1), true);
        assert!(local.check_target("http://127.0.0.1:9/hook").is_ok());
        assert!(local.check_target("https://10.0.0.1/hook").is_err());
    }
}
