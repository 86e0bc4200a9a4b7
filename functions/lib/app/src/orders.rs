//! Buying quota: create an order, read it, list them, refund unused stamps.

use meterai_core::error::codes;
use meterai_core::events::EventType;
use meterai_core::orders::{decide_refund, Order, OrderRules, Refund, RefundDecision};
use meterai_core::quota::Page;
use meterai_core::{AccountId, Error, Result};

use crate::ports::{Clock, Gateway, Orders, Outbox};

/// Order ids are `ord_` and a ULID; anything else cannot exist.
pub fn valid_order_id(order_id: &str) -> bool {
    meterai_core::ids::is_id(order_id, "ord_")
}

fn not_found(order_id: &str) -> Error {
    Error::not_found(codes::ORDER_NOT_FOUND, format!("no order {order_id}"))
}

/// Creates a pending order of `quantity` stamps (1 to the rules' maximum)
/// and opens its payment page at the gateway. The order exists even if the
/// gateway cannot be reached: reading it opens the page then.
pub async fn create(
    orders: &dyn Orders,
    gateway: &dyn Gateway,
    clock: &dyn Clock,
    rules: &OrderRules,
    account: &AccountId,
    quantity: i64,
) -> Result<Order> {
    let quantity = rules.check_quantity(Some(quantity))?;
    let order = Order::new(
        meterai_core::ids::new_id("ord_"),
        account.clone(),
        quantity,
        rules,
        clock.now_ms(),
    );
    orders.create(&order).await?;
    tracing::info!(order_id = %order.order_id, quantity, total = order.total, "order created");
    tracing::info!(target: meterai_core::METRIC, orders_created = 1, stamps_ordered = quantity);
    Ok(with_payment_page(orders, gateway, clock, order).await)
}

/// Tries at keeping a payment page the gateway just opened.
const PAGE_KEEP_ATTEMPTS: usize = 3;

/// The order with its payment page, opened now if it is pending and has
/// none yet. A gateway that does not answer leaves the order as it is.
async fn with_payment_page(
    orders: &dyn Orders,
    gateway: &dyn Gateway,
    clock: &dyn Clock,
    mut order: Order,
) -> Order {
    let pending = order.status_at(clock.now_ms()) == meterai_core::orders::OrderStatus::Pending;
    if order.payment.is_some() || !pending {
        return order;
    }
    match gateway.open_payment(&order).await {
        Ok(link) => {
            // The gateway opens one page per order id, ever: a page not
            // kept cannot be opened again. So keeping it is retried, and
            // the buyer gets it now either way (its payment is found by the
            // status check, page or not).
            for attempt in 1..=PAGE_KEEP_ATTEMPTS {
                match orders.attach_payment(&order.order_id, &link).await {
                    Ok(()) => break,
                    Err(e) if attempt == PAGE_KEEP_ATTEMPTS => {
                        tracing::error!(order_id = %order.order_id, error = %e, "payment page not kept; only this answer has it")
                    }
                    Err(_) => {}
                }
            }
            order.payment = Some(link);
        }
        Err(e) => {
            tracing::warn!(order_id = %order.order_id, error = %e, "payment page not opened; the next read tries again")
        }
    }
    order
}

/// One of the caller's orders; another account's order is "not found". A
/// pending order without a payment page gets one now, if the gateway answers.
pub async fn get(
    orders: &dyn Orders,
    gateway: &dyn Gateway,
    clock: &dyn Clock,
    account: &AccountId,
    order_id: &str,
) -> Result<Order> {
    if !valid_order_id(order_id) {
        return Err(not_found(order_id));
    }
    match orders.load(order_id).await? {
        Some(order) if &order.account == account => {
            Ok(with_payment_page(orders, gateway, clock, order).await)
        }
        _ => Err(not_found(order_id)),
    }
}

/// The caller's orders, newest first.
pub async fn list(
    orders: &dyn Orders,
    account: &AccountId,
    limit: i32,
    cursor: Option<&str>,
) -> Result<Page<Order>> {
    orders.list(account, limit, cursor).await
}

/// How a refund request was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// A new refund was made.
    Created(Refund),
    /// Nothing was left to refund and the order had been refunded before:
    /// the latest refund, so that repeating the request is harmless.
    Existing(Refund),
}

impl RefundOutcome {
    pub fn refund(&self) -> &Refund {
        match self {
            RefundOutcome::Created(r) | RefundOutcome::Existing(r) => r,
        }
    }
}

/// Decisions made on a snapshot that another change overtook are made again
/// this many times before the caller is told to retry.
const REFUND_ATTEMPTS: usize = 10;

/// Refunds an order's unused stamps at 100% (see
/// [`meterai_core::orders::decide_refund`]), then tells the buyer's
/// reseller, if any (also on a repeat: the event is recorded once).
pub async fn refund(
    orders: &dyn Orders,
    outbox: &dyn Outbox,
    clock: &dyn Clock,
    rules: &OrderRules,
    account: &AccountId,
    order_id: &str,
    requested: Option<i64>,
) -> Result<RefundOutcome> {
    let outcome = refund_once(orders, clock, rules, account, order_id, requested).await?;
    let refund = outcome.refund();
    let data = serde_json::to_value(refund.view()).expect("a refund serializes");
    outbox
        .emit_for_account(account, EventType::RefundCompleted, &refund.refund_id, data)
        .await?;
    Ok(outcome)
}

async fn refund_once(
    orders: &dyn Orders,
    clock: &dyn Clock,
    rules: &OrderRules,
    account: &AccountId,
    order_id: &str,
    requested: Option<i64>,
) -> Result<RefundOutcome> {
    if !valid_order_id(order_id) {
        return Err(not_found(order_id));
    }
    for _ in 0..REFUND_ATTEMPTS {
        // Order and balance from one snapshot: read separately, a refund that
        // commits in between would make the order look unrefunded and the
        // balance look empty at once.
        let (order, balance) = orders.with_balance(order_id, account).await?;
        let order = order
            .filter(|o| &o.account == account)
            .ok_or_else(|| not_found(order_id))?;
        let now = clock.now_ms();
        let quantity = match decide_refund(&order, balance.available, requested, rules, now)? {
            RefundDecision::Refund(quantity) => quantity,
            RefundDecision::Repeat => {
                return orders
                    .refund_number(order_id, order.refund_count)
                    .await?
                    .map(RefundOutcome::Existing)
                    .ok_or_else(|| {
                        Error::table(format!(
                            "refund {} of {order_id} is missing",
                            order.refund_count
                        ))
                    })
            }
        };
        let refund = Refund::next(&order, quantity, now);
        match orders.refund(&order, &refund).await? {
            Ok(()) => {
                tracing::info!(order_id, refund_id = %refund.refund_id, quantity, "refund completed");
                tracing::info!(target: meterai_core::METRIC, refunds = 1, stamps_refunded = quantity);
                return Ok(RefundOutcome::Created(refund));
            }
            // Someone else refunded or reserved in between: look again.
            Err(_) => continue,
        }
    }
    Err(Error::conflict(
        codes::CONTENTION,
        "this order is being changed concurrently; retry",
    ))
}
