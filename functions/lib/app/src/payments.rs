//! Payments: a notification from the gateway is only a hint. After its
//! signature checks out we ask the gateway for the order's status and act on
//! that answer alone (credited exactly once, or the order closed), the same
//! code path the scheduled reconciler and an order read take. Every
//! notification and every check is recorded, whatever came of it.

use meterai_core::error::codes;
use meterai_core::events::EventType;
use meterai_core::orders::OrderStatus;
use meterai_core::payments::{
    judge, recheck_delay_ms, PaymentGateway, PaymentNotice, PaymentStatus, NO_TRANSACTION,
};
use meterai_core::{Error, Result};
use serde::Serialize;

use crate::orders::valid_order_id;
use crate::ports::{
    Clock, Credited, Gateway, Orders, Outbox, PaymentLog, PaymentRecord, PendingMark,
};

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
    /// The gateway reports money going back (its own refund, a chargeback):
    /// recorded (a chargeback alerted), quota untouched.
    ReversalRecorded,
}

impl PaymentOutcome {
    /// Whether the order is no longer waiting for money (credited now or
    /// before, or closed).
    pub fn settles(self) -> bool {
        matches!(
            self,
            PaymentOutcome::Credited | PaymentOutcome::AlreadyCredited | PaymentOutcome::Closed
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentOutcome::Credited => "credited",
            PaymentOutcome::AlreadyCredited => "already_credited",
            PaymentOutcome::Closed => "closed",
            PaymentOutcome::Unchanged => "unchanged",
            PaymentOutcome::ReversalRecorded => "reversal_recorded",
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
    pub gateway: &'a dyn Gateway,
}

/// Handles one notification: its signature must check out, then the order
/// it names is checked with the gateway ([`check_order`]); what the body
/// says happened is never acted on. Every notification is recorded, whether
/// it was applied or rejected. Money received for an order that expired or
/// was cancelled is still credited: money must never vanish.
pub async fn handle_notification(
    ports: &PaymentPorts<'_>,
    signatures: &dyn PaymentGateway,
    body: &[u8],
) -> Result<Receipt> {
    let result = match signatures.verify(body) {
        Err(e) => Err(e),
        Ok(order_id) => check_order(ports, &order_id).await,
    };
    let record = record_of(signatures.name(), body, &result, ports.clock.now_ms());
    ports.log.record(&record).await;
    tracing::info!(order_id = %record.order_id, outcome = %record.outcome, "payment notification handled");
    result
}

/// Asks the gateway what happened to `order_id`'s payment and acts on its
/// answer: the one path by which an order is ever credited or closed
/// (notification, reconciler, operator, an order read).
pub async fn check_order(ports: &PaymentPorts<'_>, order_id: &str) -> Result<Receipt> {
    let order = match valid_order_id(order_id) {
        true => ports.orders.load(order_id).await?,
        false => None,
    }
    .ok_or_else(|| Error::not_found(codes::ORDER_NOT_FOUND, format!("no order {order_id}")))?;
    check_loaded(ports, &order).await
}

/// [`check_order`] for an order already read. An order the gateway has no
/// transaction for once its payment page is surely gone was abandoned: it
/// is closed as expired (money paid later would still be credited).
async fn check_loaded(
    ports: &PaymentPorts<'_>,
    order: &meterai_core::orders::Order,
) -> Result<Receipt> {
    let answer = ports.gateway.status(&order.order_id).await?;
    let mut notice = judge(&order.order_id, order.total, &answer)?;
    if notice.raw_status == NO_TRANSACTION && order.payment_page_gone(ports.clock.now_ms()) {
        notice.status = PaymentStatus::Closed(OrderStatus::Expired);
    }
    apply(ports, order, &notice).await
}

/// How far one reconciler run goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileLimits {
    /// An order is first checked this long after it was created (its
    /// notification usually comes first).
    pub grace_ms: i64,
    /// Orders taken per run.
    pub batch: usize,
    /// Checks in flight at once.
    pub concurrency: usize,
    /// No check starts after this long (the run must end within its
    /// function's timeout); the rest wait for the next run.
    pub budget_ms: i64,
}

/// A read of a pending order asks the gateway at most this often per order.
pub const READ_CHECK_EVERY_MS: i64 = 30_000;

/// One of the caller's orders, as [`crate::orders::get`] gives it; a pending
/// one is also checked with the gateway (at most every
/// [`READ_CHECK_EVERY_MS`] per order), so a buyer back from the payment
/// page sees the payment even if its notification is late or lost. A check
/// that fails leaves the order as read.
pub async fn read_order(
    ports: &PaymentPorts<'_>,
    account: &meterai_core::AccountId,
    order_id: &str,
) -> Result<meterai_core::orders::Order> {
    let order =
        crate::orders::get(ports.orders, ports.gateway, ports.clock, account, order_id).await?;
    let now = ports.clock.now_ms();
    if order.status_at(now) != OrderStatus::Pending
        || !ports
            .orders
            .claim_read_check(order_id, now, READ_CHECK_EVERY_MS)
            .await?
    {
        return Ok(order);
    }
    match checked_and_recorded(ports, &order, now).await {
        Ok(receipt) if receipt.result.settles() => {
            Ok(ports.orders.load(order_id).await?.unwrap_or(order))
        }
        Ok(_) => Ok(order),
        Err(e) => {
            tracing::warn!(order_id, code = e.code(), error = %e, "check on read failed; the order is shown as read");
            Ok(order)
        }
    }
}

/// What one reconciler run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Orders asked about.
    pub checked: usize,
    pub credited: usize,
    /// Closed by the gateway's answer, or abandoned (no transaction after
    /// the payment page closed).
    pub closed: usize,
    pub still_pending: usize,
    /// Checks that failed (gateway down, inconsistent answer): tried later.
    pub failed: usize,
    /// Orders found no longer pending, and forgotten.
    pub settled_before: usize,
    /// Taken, but the run's time was up: left for the next run.
    pub left_for_next_run: usize,
}

/// The scheduled reconciler: every order still pending `grace_ms` after it
/// was created is checked with the gateway, so a lost notification never
/// leaves a paid order without its quota. An order still pending goes to
/// the back of the line (later still the older it is), so a pile of
/// abandoned orders never starves a new one. Each check is recorded like a
/// notification.
pub async fn reconcile(
    ports: &PaymentPorts<'_>,
    limits: ReconcileLimits,
) -> Result<ReconcileReport> {
    let started = ports.clock.now_ms();
    let marks = ports
        .orders
        .pending(started - limits.grace_ms, limits.batch)
        .await?;
    let mut report = ReconcileReport::default();
    for group in marks.chunks(limits.concurrency.max(1)) {
        if ports.clock.now_ms() - started > limits.budget_ms {
            report.left_for_next_run += group.len();
            continue;
        }
        let results = futures::future::join_all(group.iter().map(|m| settle(ports, m))).await;
        for (mark, result) in group.iter().zip(results) {
            match result {
                Err(e) => {
                    tracing::warn!(order_id = %mark.order_id, code = e.code(), error = %e, "reconciler could not read or move an order's mark");
                    report.failed += 1;
                }
                Ok(Settled::Before) => report.settled_before += 1,
                Ok(Settled::Checked(result)) => {
                    report.checked += 1;
                    match result {
                        Ok(PaymentOutcome::Credited | PaymentOutcome::AlreadyCredited) => {
                            report.credited += 1
                        }
                        Ok(PaymentOutcome::Closed) => report.closed += 1,
                        Ok(_) => report.still_pending += 1,
                        Err(code) => {
                            tracing::warn!(order_id = %mark.order_id, code, "reconciler could not settle an order");
                            report.failed += 1;
                        }
                    }
                }
            }
        }
    }
    tracing::info!(?report, "payments reconciled");
    Ok(report)
}

/// What came of one listed order.
enum Settled {
    /// It was not pending any more when read.
    Before,
    /// Asked about: the outcome, or the error's code.
    Checked(std::result::Result<PaymentOutcome, &'static str>),
}

/// Checks one listed order and moves its mark: forgotten once settled
/// (credited, closed), else sent to the back of the line.
async fn settle(ports: &PaymentPorts<'_>, mark: &PendingMark) -> Result<Settled> {
    let now = ports.clock.now_ms();
    let order = match ports.orders.load(&mark.order_id).await? {
        Some(order) if order.status == OrderStatus::Pending => order,
        _ => {
            ports.orders.forget_pending(mark).await?;
            return Ok(Settled::Before);
        }
    };
    let result = checked_and_recorded(ports, &order, now).await;
    if matches!(&result, Ok(receipt) if receipt.result == PaymentOutcome::Credited) {
        // Paid, and no notification had said so: the schedule made it good.
        tracing::info!(target: meterai_core::METRIC, orders_credited_late = 1);
    }
    if matches!(&result, Ok(receipt) if receipt.result.settles()) {
        ports.orders.forget_pending(mark).await?;
    } else {
        let delay = recheck_delay_ms(now - order.created_ms);
        ports.orders.requeue_pending(mark, now + delay).await?;
    }
    Ok(Settled::Checked(
        result.map(|r| r.result).map_err(|e| e.code()),
    ))
}

/// [`check_loaded`], recorded like a notification (the gateway's own
/// answer: nothing to verify a signature of).
async fn checked_and_recorded(
    ports: &PaymentPorts<'_>,
    order: &meterai_core::orders::Order,
    now: i64,
) -> Result<Receipt> {
    let result = check_loaded(ports, order).await;
    let body = serde_json::json!({ "order_id": order.order_id }).to_string();
    let mut record = record_of("midtrans-status", body.as_bytes(), &result, now);
    record.signature_valid = true;
    ports.log.record(&record).await;
    result
}

async fn apply(
    ports: &PaymentPorts<'_>,
    order: &meterai_core::orders::Order,
    notice: &PaymentNotice,
) -> Result<Receipt> {
    let now = ports.clock.now_ms();
    let result = match notice.status {
        PaymentStatus::Paid => {
            match ports
                .orders
                .credit(order, &notice.transaction_id, now)
                .await?
            {
                Credited::Now => {
                    tracing::info!(order_id = %order.order_id, quantity = order.quantity, "order paid and credited");
                    tracing::info!(target: meterai_core::METRIC, orders_paid = 1, stamps_credited = order.quantity);
                    PaymentOutcome::Credited
                }
                Credited::Before => PaymentOutcome::AlreadyCredited,
            }
        }
        // A paid order the gateway now calls denied, failed or cancelled:
        // money went back after settlement (Midtrans' "reversal" of a VA,
        // bill or store payment). Recorded and alerted like a chargeback.
        PaymentStatus::Closed(_) if order.paid_ms.is_some() => {
            tracing::error!(alert = "reversal", order_id = %order.order_id, account = %order.account, status = %notice.raw_status, quantity = order.quantity, "a paid order was reversed at the gateway");
            PaymentOutcome::ReversalRecorded
        }
        PaymentStatus::Closed(status) => {
            match ports.orders.close(&order.order_id, status, now).await? {
                true => PaymentOutcome::Closed,
                false => PaymentOutcome::Unchanged,
            }
        }
        PaymentStatus::Pending => PaymentOutcome::Unchanged,
        PaymentStatus::Ignored => {
            tracing::warn!(order_id = %order.order_id, status = %notice.raw_status, "the gateway reports money returned outside our refunds");
            PaymentOutcome::ReversalRecorded
        }
        PaymentStatus::Chargeback => {
            // An operator must act (the stamps may be spent): an alarm
            // matches on `alert`.
            tracing::error!(alert = "chargeback", order_id = %order.order_id, account = %order.account, quantity = order.quantity, "chargeback of a paid order");
            PaymentOutcome::ReversalRecorded
        }
    };
    // A reseller hears that its pool was credited (a portal user gets the
    // receipt by e-mail). Also on a repeated notice:
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
            "paid_at": meterai_core::time::rfc3339(order.paid_ms.unwrap_or(now)),
            "payment_method": notice.payment_type,
        });
        ports
            .outbox
            .emit_for_account(&order.account, EventType::OrderPaid, &order.order_id, data)
            .await?;
    }
    Ok(Receipt {
        order_id: order.order_id.clone(),
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
