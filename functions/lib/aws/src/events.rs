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
use crate::keys;
use crate::messages::{Envelope, EventMessage};
use crate::resellers;
use crate::store::{get_n, get_s, n, s, Item};
use crate::AwsClients;
use meterai_app::ports::{Attempt, Delivery, Endpoint, Events, WebhookClient};
use meterai_core::events::{Event, EventStatus};

/// How long an event record is kept.
const EVENT_TTL_SECONDS: i64 = 30 * 24 * 3600;

pub use meterai_core::events::{event_id, EventType};
use meterai_core::network::allowed_target as allowed;

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
    let event = meterai_app::events::new_event(
        reseller_id,
        kind,
        reference,
        data,
        meterai_core::time::now_ms(),
    );
    let id = event.event_id.clone();
    let item = event_item(&event);
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
            .is_some_and(|event| event.status != EventStatus::Pending)
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
    /// Where portal users' e-mails are queued (functions that send any).
    pub mail_queue_url: Option<String>,
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
        let account_text = account.as_str();
        if !meterai_core::resellers::is_reseller_channel(account_text) {
            return match &self.mail_queue_url {
                Some(queue_url) => {
                    crate::mail::queue(&self.clients, queue_url, account, kind, reference, data)
                        .await
                }
                None => Ok(()),
            };
        }
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

fn event_item(event: &Event) -> Item {
    keys::event(&event.event_id).with([
        ("event_id".to_string(), s(&event.event_id)),
        ("reseller_id".to_string(), s(&event.reseller_id)),
        ("type".to_string(), s(event.kind.as_str())),
        ("payload".to_string(), s(&event.payload)),
        ("status".to_string(), s(event.status.as_str())),
        ("attempts".to_string(), n(event.attempts)),
        ("created_at".to_string(), n(event.created_ms)),
        (
            "expires_at".to_string(),
            n(event.created_ms / 1000 + EVENT_TTL_SECONDS),
        ),
    ])
}

fn event_from_item(item: &Item) -> Option<Event> {
    Some(Event {
        event_id: get_s(item, "event_id")?.to_string(),
        reseller_id: get_s(item, "reseller_id")?.to_string(),
        kind: EventType::parse(get_s(item, "type")?)?,
        payload: get_s(item, "payload")?.to_string(),
        status: EventStatus::parse(get_s(item, "status")?)?,
        attempts: get_n(item, "attempts").unwrap_or(0),
        created_ms: get_n(item, "created_at").unwrap_or(0),
    })
}

pub async fn load(clients: &AwsClients, table: &str, event_id: &str) -> Result<Option<Event>> {
    let out = clients
        .dynamodb
        .get_item()
        .table_name(table)
        .set_key(Some(keys::event(event_id).map()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| Error::table(DisplayErrorContext(e)))?;
    Ok(out.item().and_then(event_from_item))
}

/// Events in the table, the resellers' endpoints, and the webhooks
/// dead-letter queue where an event waits for a replay.
#[derive(Debug, Clone)]
pub struct DynamoEvents {
    pub clients: AwsClients,
    /// Opens the resellers' sealed secrets.
    pub secrets: crate::secrets::WebhookSecrets,
    pub table: String,
    pub dead_letter_queue_url: Option<String>,
}

#[async_trait::async_trait]
impl Events for DynamoEvents {
    async fn load(&self, event_id: &str) -> Result<Option<Event>> {
        load(&self.clients, &self.table, event_id).await
    }

    async fn endpoint(&self, reseller_id: &str) -> Result<Option<Endpoint>> {
        let Some(reseller) = resellers::load(&self.clients, &self.table, reseller_id).await? else {
            return Ok(None);
        };
        let secret = reseller.webhook_secret(&self.secrets).await?;
        Ok(Some(Endpoint {
            url: reseller.webhook_url,
            enabled: reseller.webhook_enabled,
            secret,
        }))
    }

    async fn disable_endpoint(&self, reseller_id: &str) -> Result<()> {
        resellers::disable_webhook(&self.clients, &self.table, reseller_id).await
    }

    async fn record_attempt(
        &self,
        event_id: &str,
        attempt: Attempt<'_>,
        now_ms: i64,
    ) -> Result<()> {
        let mut update = self
            .clients
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::event(event_id).map()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now_ms));
        update = match attempt {
            Attempt::Delivered => update
                .update_expression("SET #status = :status, delivered_at = :now ADD attempts :one")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", s(EventStatus::Delivered.as_str())),
            Attempt::Failed(error) => update
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

    async fn park(&self, event_id: &str) -> Result<bool> {
        let Some(dlq) = &self.dead_letter_queue_url else {
            return Ok(false);
        };
        self.clients
            .sqs
            .send_message()
            .queue_url(dlq)
            .message_body(
                EventMessage {
                    event_id: event_id.to_string(),
                }
                .to_body(),
            )
            .send()
            .await
            .map_err(|e| Error::queue(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        Ok(true)
    }
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

/// The deliverer's HTTP client (built once per cold start): bounded in
/// time, no redirects, and a resolver that refuses non-public addresses.
#[derive(Debug, Clone)]
pub struct HttpWebhookClient {
    http: reqwest::Client,
}

impl HttpWebhookClient {
    pub fn new(timeout: Duration, allow_loopback: bool) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect could point anywhere, including inside our network.
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(std::sync::Arc::new(CheckedResolver { allow_loopback }))
            .user_agent("meterai-webhooks/1")
            .build()
            .expect("the HTTP client builds");
        Self { http }
    }
}

#[async_trait::async_trait]
impl WebhookClient for HttpWebhookClient {
    async fn post(&self, delivery: &Delivery<'_>) -> std::result::Result<u16, String> {
        self.http
            .post(delivery.url)
            .header("content-type", "application/json")
            .header("webhook-id", delivery.webhook_id)
            .header("webhook-timestamp", delivery.timestamp.to_string())
            .header("webhook-signature", delivery.signature)
            .body(delivery.body.to_string())
            .send()
            .await
            .map(|response| response.status().as_u16())
            .map_err(|e| e.to_string())
    }
}

/// Moves up to `max` messages from the webhooks dead-letter queue back to the
/// webhooks queue (the admin's replay). Returns how many moved.
pub async fn replay_dead_letters(
    clients: &AwsClients,
    dead_letter_queue_url: &str,
    queue_url: &str,
    max: usize,
    on_moved: &(dyn Fn(usize) + Sync),
) -> Result<usize> {
    let mut moved = 0;
    while moved < max {
        // Never more than is left to move: `max` is exact.
        let batch = (max - moved).min(10) as i32;
        let out = clients
            .sqs
            .receive_message()
            .queue_url(dead_letter_queue_url)
            .max_number_of_messages(batch)
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
            on_moved(moved);
        }
    }
    Ok(moved)
}
