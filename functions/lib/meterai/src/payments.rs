//! Payment notifications from the gateway: verified by the gateway's rules
//! (`meterai_core::payments`), then matched to the order, checked, credited
//! exactly once and recorded, the same for every gateway.

use aws_sdk_dynamodb::error::DisplayErrorContext;
use serde::Serialize;

use crate::error::{codes, Error, Result};
pub use meterai_core::payments::{
    parse_rupiah, Midtrans, MidtransNotification, PaymentGateway, PaymentNotice, PaymentStatus,
};

use crate::orders::{self, PaymentOutcome};
use crate::store::{self, n, s, Item};
use crate::AwsClients;

/// The answer to the gateway.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NotificationReceipt {
    pub order_id: String,
    pub result: PaymentOutcome,
}

/// Verifies and applies one notification; every notification that names an
/// order is recorded, whether it was applied or rejected.
pub async fn handle_notification(
    clients: &AwsClients,
    table: &str,
    gateway: &dyn PaymentGateway,
    outbox: Option<&crate::events::Outbox>,
    body: &[u8],
) -> Result<NotificationReceipt> {
    let result = match gateway.verify(body) {
        Err(e) => Err(e),
        Ok(notice) => apply(clients, table, outbox, &notice).await,
    };
    record_event(clients, table, gateway.name(), body, &result).await;
    result
}

async fn apply(
    clients: &AwsClients,
    table: &str,
    outbox: Option<&crate::events::Outbox>,
    notice: &PaymentNotice,
) -> Result<NotificationReceipt> {
    let order = match orders::valid_order_id(&notice.order_id) {
        true => orders::load(clients, table, &notice.order_id).await?,
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
    let result = match notice.status {
        PaymentStatus::Paid => {
            orders::credit(clients, table, &order, &notice.transaction_id).await?
        }
        PaymentStatus::Closed(status) => {
            orders::close(clients, table, &order.order_id, status).await?
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
            "currency": order.currency,
        });
        crate::events::emit_for_account(
            clients,
            outbox,
            &order.account,
            crate::events::EventType::OrderPaid,
            &order.order_id,
            data,
        )
        .await?;
    }
    Ok(NotificationReceipt {
        order_id: order.order_id,
        result,
    })
}

/// Keeps every notification (90 days), so "paid but no quota" can always be traced.
async fn record_event(
    clients: &AwsClients,
    table: &str,
    gateway: &str,
    body: &[u8],
    result: &Result<NotificationReceipt>,
) {
    let raw: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    let order_id = raw
        .get("order_id")
        .and_then(|v| v.as_str())
        .filter(|id| !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("unknown")
        .to_string();
    let now = meterai_core::time::now_ms();
    let outcome = match result {
        Ok(receipt) => serde_json::to_value(receipt.result)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        Err(e) => e.code().to_string(),
    };
    let mut item = Item::from([
        ("pk".to_string(), s(format!("PAYMENT#{order_id}"))),
        (
            "sk".to_string(),
            s(format!(
                "EVENT#{}#{}",
                store::sortable_ms(now),
                meterai_core::ids::nonce()
            )),
        ),
        ("gateway".to_string(), s(gateway)),
        ("outcome".to_string(), s(outcome)),
        (
            "signature_valid".to_string(),
            aws_sdk_dynamodb::types::AttributeValue::Bool(
                !matches!(result, Err(e) if e.code() == codes::INVALID_SIGNATURE),
            ),
        ),
        ("received_at".to_string(), n(now)),
        ("expires_at".to_string(), n(now / 1000 + 90 * 24 * 3600)),
    ]);
    for field in [
        "transaction_status",
        "transaction_id",
        "gross_amount",
        "status_code",
        "fraud_status",
    ] {
        if let Some(value) = raw.get(field).and_then(|v| v.as_str()) {
            item.insert(
                field.to_string(),
                s(value.chars().take(128).collect::<String>()),
            );
        }
    }
    if let Err(e) = clients
        .dynamodb
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
    {
        tracing::error!(order_id, error = %DisplayErrorContext(e), "could not record the payment event");
    }
    tracing::info!(order_id, outcome = ?result.as_ref().map(|r| r.result).map_err(|e| e.code()), "payment notification handled");
}
