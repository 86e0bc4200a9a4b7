//! A payment notification from the gateway: verified by the gateway's rules,
//! matched to its order, checked, credited exactly once (or the order
//! closed), and recorded whatever came of it.

use meterai_core::error::codes;
use meterai_core::events::EventType;
use meterai_core::payments::{PaymentGateway, PaymentNotice, PaymentStatus};
use meterai_core::{Error, Result};
use serde::Serialize;

use crate::orders::valid_order_id;
use crate::ports::{Clock, Credited, Orders, Outbox, PaymentLog, PaymentRecord};

/// What a payment notice did to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentOutcome {
    /// The quantity was credited now.
    Credited,
    /// It had been credited before; nothing changed.
    AlreadyCredited,
    /// A pending order was closed (expired, cancelled, denied).
    Closed,
    /// Nothing to do (still pending, or closing an order that is not pending).
    Unchanged,
}

impl PaymentOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentOutcome::Credited => "credited",
            PaymentOutcome::AlreadyCredited => "already_credited",
            PaymentOutcome::Closed => "closed",
            PaymentOutcome::Unchanged => "unchanged",
        }
    }
}

/// The answer to the gateway.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Receipt {
    pub order_id: String,
    pub result: PaymentOutcome,
}

/// What a notification needs.
pub struct PaymentPorts<'a> {
    pub orders: &'a dyn Orders,
    pub log: &'a dyn PaymentLog,
    pub outbox: &'a dyn Outbox,
    pub clock: &'a dyn Clock,
}

/// Verifies and applies one notification; every notification is recorded,
/// whether it was applied or rejected. Money received for an order that
/// expired or was cancelled is still credited: money must never vanish.
pub async fn handle_notification(
    ports: &PaymentPorts<'_>,
    gateway: &dyn PaymentGateway,
    body: &[u8],
) -> Result<Receipt> {
    let result = match gateway.verify(body) {
        Err(e) => Err(e),
        Ok(notice) => apply(ports, &notice).await,
    };
    let record = record_of(gateway.name(), body, &result, ports.clock.now_ms());
    ports.log.record(&record).await;
    tracing::info!(order_id = %record.order_id, outcome = %record.outcome, "payment notification handled");
    result
}

async fn apply(ports: &PaymentPorts<'_>, notice: &PaymentNotice) -> Result<Receipt> {
    let order = match valid_order_id(&notice.order_id) {
        true => ports.orders.load(&notice.order_id).await?,
        false => None,
    }
    .ok_or_else(|| {
        Error::not_found(
            codes::ORDER_NOT_FOUND,
            format!("no order {}", notice.order_id),
        )
    })?;
    if notice.amount != order.total {
        return Err(Error::rejected(
            codes::AMOUNT_MISMATCH,
            format!(
                "paid {} but order {} costs {}",
                notice.amount, order.order_id, order.total
            ),
        ));
    }
    let now = ports.clock.now_ms();
    let result = match notice.status {
        PaymentStatus::Paid => {
            match ports
                .orders
                .credit(&order, &notice.transaction_id, now)
                .await?
            {
                Credited::Now => {
                    tracing::info!(order_id = %order.order_id, quantity = order.quantity, "order paid and credited");
                    PaymentOutcome::Credited
                }
                Credited::Before => PaymentOutcome::AlreadyCredited,
            }
        }
        PaymentStatus::Closed(status) => {
            match ports.orders.close(&order.order_id, status, now).await? {
                true => PaymentOutcome::Closed,
                false => PaymentOutcome::Unchanged,
            }
        }
        PaymentStatus::Pending | PaymentStatus::Ignored => PaymentOutcome::Unchanged,
    };
    // A reseller hears that its pool was credited. Also on a repeated notice:
    // if the first one died before queueing the event, the gateway's retry
    // queues it (the event id is the order's, so it is recorded once).
    if matches!(
        result,
        PaymentOutcome::Credited | PaymentOutcome::AlreadyCredited
    ) {
        let data = serde_json::json!({
            "order_id": order.order_id,
            "status": "paid",
            "quantity": order.quantity,
            "total": order.total,
            "currency": "IDR",
        });
        ports
            .outbox
            .emit_for_account(&order.account, EventType::OrderPaid, &order.order_id, data)
            .await?;
    }
    Ok(Receipt {
        order_id: order.order_id,
        result,
    })
}

/// The gateway's fields kept with a notification's record.
const RECORDED_FIELDS: [&str; 5] = [
    "transaction_status",
    "transaction_id",
    "gross_amount",
    "status_code",
    "fraud_status",
];

/// What is kept of a notification: the order it names (if that looks like an
/// id at all), what came of it, and the gateway's own fields, bounded.
pub fn record_of(
    gateway: &'static str,
    body: &[u8],
    result: &Result<Receipt>,
    now_ms: i64,
) -> PaymentRecord {
    let raw: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    let order_id = raw
        .get("order_id")
        .and_then(|v| v.as_str())
        .filter(|id| !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("unknown")
        .to_string();
    let outcome = match result {
        Ok(receipt) => receipt.result.as_str().to_string(),
        Err(e) => e.code().to_string(),
    };
    let fields = RECORDED_FIELDS
        .iter()
        .filter_map(|field| {
            raw.get(*field)
                .and_then(|v| v.as_str())
                .map(|value| (*field, value.chars().take(128).collect::<String>()))
        })
        .collect();
    PaymentRecord {
        order_id,
        gateway,
        outcome,
        signature_valid: !matches!(result, Err(e) if e.code() == codes::INVALID_SIGNATURE),
        received_ms: now_ms,
        fields,
    }
}
