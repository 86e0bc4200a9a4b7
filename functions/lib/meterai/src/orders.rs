//! Orders: a purchase of stamp quota, paid through the payment gateway.
//!
//! An order is `pending` until the gateway says it is paid; then its quantity is
//! credited to the buyer's quota exactly once (the credit's ledger entry and the
//! order's `paid_at` are written in one transaction, each under a condition).
//! Unused stamps of a paid order can be refunded within the refund window.

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use serde::Serialize;

use crate::auth::AccountId;
use crate::error::{codes, Error, Result};
use crate::quota::{self, Movement, MovementKind, Page, Rejected};
use crate::store::{self, get_n, get_s, n, s, Item};
use crate::AwsClients;

pub use meterai_core::orders::{OrderRules, OrderStatus};

/// An order as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    pub order_id: String,
    #[serde(skip)]
    pub account: String,
    pub status: OrderStatus,
    pub quantity: i64,
    pub unit_price: i64,
    pub total: i64,
    pub currency: &'static str,
    /// What the buyer pays against at the gateway (the gateway's order id).
    pub payment_reference: String,
    pub created_at: String,
    /// Payment deadline of a pending order.
    pub expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<String>,
    pub refunded_quantity: i64,
    #[serde(skip)]
    created_ms: i64,
    #[serde(skip)]
    expires_ms: i64,
    #[serde(skip)]
    paid_ms: Option<i64>,
    #[serde(skip)]
    refund_count: i64,
}

impl Order {
    fn from_item(item: &Item) -> Option<Self> {
        let created_ms = get_n(item, "created_at")?;
        let expires_ms = get_n(item, "pay_by")?;
        let paid_ms = get_n(item, "paid_at");
        let status = OrderStatus::parse(get_s(item, "status")?)?
            .as_of(expires_ms, meterai_core::time::now_ms());
        let order_id = get_s(item, "order_id")?.to_string();
        Some(Order {
            payment_reference: order_id.clone(),
            order_id,
            account: get_s(item, "account")?.to_string(),
            status,
            quantity: get_n(item, "quantity")?,
            unit_price: get_n(item, "unit_price")?,
            total: get_n(item, "total")?,
            currency: "IDR",
            created_at: meterai_core::time::rfc3339(created_ms),
            expires_at: meterai_core::time::rfc3339(expires_ms),
            paid_at: paid_ms.map(meterai_core::time::rfc3339),
            refunded_quantity: get_n(item, "refunded_quantity").unwrap_or(0),
            created_ms,
            expires_ms,
            paid_ms,
            refund_count: get_n(item, "refund_count").unwrap_or(0),
        })
    }

    /// Stamps bought by this order and not refunded yet.
    pub fn unrefunded(&self) -> i64 {
        self.quantity - self.refunded_quantity
    }
}

/// Validates the body of `POST /v1/orders`: `{"quantity": n}`, 1 <= n <= max.
pub fn parse_quantity(body: &serde_json::Value, rules: &OrderRules) -> Result<i64> {
    let object = crate::request::json_object(body, &["quantity"])?;
    let invalid = || {
        Error::invalid(
            codes::INVALID_QUANTITY,
            format!(
                "quantity must be a whole number from 1 to {}",
                rules.max_quantity
            ),
        )
    };
    let quantity = object
        .get("quantity")
        .and_then(|q| q.as_i64())
        .ok_or_else(invalid)?;
    if !rules.allows_quantity(quantity) {
        return Err(invalid());
    }
    Ok(quantity)
}

/// Validates the optional body of a refund: `{}` (refund every unused stamp)
/// or `{"quantity": n}` with n >= 1.
pub fn parse_refund_quantity(body: &serde_json::Value) -> Result<Option<i64>> {
    let object = crate::request::json_object(body, &["quantity"])?;
    match object.get("quantity") {
        None => Ok(None),
        Some(q) => q.as_i64().filter(|q| *q >= 1).map(Some).ok_or_else(|| {
            Error::invalid(
                codes::INVALID_QUANTITY,
                "quantity must be a whole number of at least 1",
            )
        }),
    }
}

/// Creates a pending order.
pub async fn create(
    clients: &AwsClients,
    table: &str,
    rules: &OrderRules,
    account: &AccountId,
    quantity: i64,
) -> Result<Order> {
    let now = meterai_core::time::now_ms();
    let order_id = format!("ord_{}", meterai_core::ids::nonce());
    let total = quantity * rules.unit_price;
    let item = Item::from([
        ("pk".to_string(), s(store::order_pk(&order_id))),
        ("sk".to_string(), s("ORDER")),
        (
            "gsi1pk".to_string(),
            s(store::orders_gsi_pk(account.as_str())),
        ),
        (
            "gsi1sk".to_string(),
            s(format!("{}#{order_id}", store::sortable_ms(now))),
        ),
        ("order_id".to_string(), s(&order_id)),
        ("account".to_string(), s(account.as_str())),
        ("status".to_string(), s("pending")),
        ("quantity".to_string(), n(quantity)),
        ("unit_price".to_string(), n(rules.unit_price)),
        ("total".to_string(), n(total)),
        ("created_at".to_string(), n(now)),
        ("pay_by".to_string(), n(now + rules.payment_window_ms)),
        ("refunded_quantity".to_string(), n(0)),
        ("refund_count".to_string(), n(0)),
    ]);
    clients
        .dynamodb
        .put_item()
        .table_name(table)
        .set_item(Some(item.clone()))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
        .map_err(|e| Error::table(DisplayErrorContext(e)))?;
    tracing::info!(order_id = %order_id, quantity, total, "order created");
    Ok(Order::from_item(&item).expect("a freshly built order item is complete"))
}

/// Loads an order by id, whoever owns it (the payment gateway's view).
pub async fn load(clients: &AwsClients, table: &str, order_id: &str) -> Result<Option<Order>> {
    let out = clients
        .dynamodb
        .get_item()
        .table_name(table)
        .key("pk", s(store::order_pk(order_id)))
        .key("sk", s("ORDER"))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| Error::table(DisplayErrorContext(e)))?;
    Ok(out.item().and_then(Order::from_item))
}

/// Loads one of the caller's orders; another account's order is "not found".
pub async fn get(
    clients: &AwsClients,
    table: &str,
    account: &AccountId,
    order_id: &str,
) -> Result<Order> {
    let not_found = || Error::not_found(codes::ORDER_NOT_FOUND, format!("no order {order_id}"));
    if !valid_order_id(order_id) {
        return Err(not_found());
    }
    match load(clients, table, order_id).await? {
        Some(order) if order.account == account.as_str() => Ok(order),
        _ => Err(not_found()),
    }
}

/// Order ids are `ord_` and a ULID; anything else cannot exist.
pub fn valid_order_id(order_id: &str) -> bool {
    meterai_core::ids::is_id(order_id, "ord_")
}

/// The caller's orders, newest first.
pub async fn list(
    clients: &AwsClients,
    table: &str,
    account: &AccountId,
    limit: i32,
    cursor: Option<&str>,
) -> Result<Page<Order>> {
    let (items, next_cursor) = crate::paging::query_gsi1_desc(
        clients,
        table,
        &store::orders_gsi_pk(account.as_str()),
        limit,
        cursor,
    )
    .await?;
    Ok(Page {
        items: items.iter().filter_map(Order::from_item).collect(),
        next_cursor,
    })
}

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

/// Credits a paid order's quantity to its buyer, exactly once. Money received
/// for an order that expired or was cancelled is still credited: money must
/// never vanish.
pub async fn credit(
    clients: &AwsClients,
    table: &str,
    order: &Order,
    transaction_id: &str,
) -> Result<PaymentOutcome> {
    let account = AccountId::parse(&order.account)?;
    let movement = Movement::new(
        &account,
        MovementKind::Credit,
        order.quantity,
        &order.order_id,
    );
    let mark_paid = Update::builder()
        .table_name(table)
        .key("pk", s(store::order_pk(&order.order_id)))
        .key("sk", s("ORDER"))
        .update_expression("SET #status = :paid, paid_at = :now, transaction_id = :tx")
        .condition_expression("attribute_not_exists(paid_at)")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":paid", s("paid"))
        .expression_attribute_values(":now", n(meterai_core::time::now_ms()))
        .expression_attribute_values(":tx", s(transaction_id))
        .build()
        .expect("update is complete");
    let outcome = quota::apply(
        clients,
        table,
        &movement,
        vec![TransactWriteItem::builder().update(mark_paid).build()],
    )
    .await?;
    Ok(match outcome {
        Ok(()) => {
            tracing::info!(order_id = %order.order_id, quantity = order.quantity, "order paid and credited");
            PaymentOutcome::Credited
        }
        Err(Rejected::AlreadyApplied) | Err(Rejected::Condition(_)) => {
            PaymentOutcome::AlreadyCredited
        }
        Err(Rejected::Insufficient) => unreachable!("a credit takes from no counter"),
    })
}

/// Closes a pending order (the gateway said expire, cancel or deny).
pub async fn close(
    clients: &AwsClients,
    table: &str,
    order_id: &str,
    status: OrderStatus,
) -> Result<PaymentOutcome> {
    let result = clients
        .dynamodb
        .update_item()
        .table_name(table)
        .key("pk", s(store::order_pk(order_id)))
        .key("sk", s("ORDER"))
        .update_expression("SET #status = :closed, closed_at = :now")
        .condition_expression("#status = :pending AND attribute_not_exists(paid_at)")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":closed", s(status.as_str()))
        .expression_attribute_values(":pending", s("pending"))
        .expression_attribute_values(":now", n(meterai_core::time::now_ms()))
        .send()
        .await;
    match result {
        Ok(_) => Ok(PaymentOutcome::Closed),
        Err(e) => match e.into_service_error() {
            aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(_) => {
                Ok(PaymentOutcome::Unchanged)
            }
            other => Err(Error::table(DisplayErrorContext(other))),
        },
    }
}

/// A refund of unused stamps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refund {
    pub refund_id: String,
    pub order_id: String,
    pub quantity: i64,
    /// Rupiah paid back: quantity x the order's unit price (100%).
    pub amount: i64,
    pub currency: &'static str,
    pub status: &'static str,
    pub created_at: String,
}

impl Refund {
    fn from_item(item: &Item) -> Option<Self> {
        Some(Refund {
            refund_id: get_s(item, "refund_id")?.to_string(),
            order_id: get_s(item, "order_id")?.to_string(),
            quantity: get_n(item, "quantity")?,
            amount: get_n(item, "amount")?,
            currency: "IDR",
            status: "completed",
            created_at: meterai_core::time::rfc3339(get_n(item, "created_at")?),
        })
    }
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

const REFUND_ATTEMPTS: usize = 10;

/// Refunds an order's unused stamps at 100%: the least of what the order
/// bought and has not had refunded, and what the account has available
/// (reserved and spent stamps are never refunded). `requested` asks for a
/// specific number instead of all of them.
pub async fn refund(
    clients: &AwsClients,
    table: &str,
    rules: &OrderRules,
    account: &AccountId,
    order_id: &str,
    requested: Option<i64>,
) -> Result<RefundOutcome> {
    if !valid_order_id(order_id) {
        return Err(Error::not_found(
            codes::ORDER_NOT_FOUND,
            format!("no order {order_id}"),
        ));
    }
    for _ in 0..REFUND_ATTEMPTS {
        // Order and balance from one snapshot: read separately, a refund that
        // commits in between would make the order look unrefunded and the
        // balance look empty at once.
        let (order, balance) = order_and_balance(clients, table, account, order_id).await?;
        let order = order
            .filter(|o| o.account == account.as_str())
            .ok_or_else(|| {
                Error::not_found(codes::ORDER_NOT_FOUND, format!("no order {order_id}"))
            })?;
        let Some(paid_ms) = order.paid_ms else {
            return Err(Error::conflict(
                codes::ORDER_NOT_PAID,
                "only a paid order can be refunded",
            ));
        };
        if !rules.refund_window_open(paid_ms, meterai_core::time::now_ms()) {
            return Err(Error::conflict(
                codes::REFUND_WINDOW_CLOSED,
                "the refund window of this order has closed",
            ));
        }
        let refundable = order.unrefunded().min(balance.available);
        let quantity = match requested {
            Some(q) if q > refundable => {
                return Err(Error::conflict(
                    codes::REFUND_EXCEEDS_UNUSED,
                    format!(
                        "asked to refund {q} stamps but only {refundable} of this order are unused"
                    ),
                ))
            }
            Some(q) => q,
            None if refundable > 0 => refundable,
            None if order.refund_count > 0 => {
                return latest_refund(clients, table, &order)
                    .await
                    .map(RefundOutcome::Existing)
            }
            None => {
                return Err(Error::conflict(
                    codes::NOTHING_TO_REFUND,
                    "this order has no unused stamps to refund",
                ))
            }
        };
        let seq = order.refund_count + 1;
        let refund_id = format!("{order_id}-r{seq}");
        let now = meterai_core::time::now_ms();
        let refund_item = Item::from([
            ("pk".to_string(), s(store::order_pk(order_id))),
            ("sk".to_string(), s(format!("REFUND#{seq:06}"))),
            ("refund_id".to_string(), s(&refund_id)),
            ("order_id".to_string(), s(order_id)),
            ("account".to_string(), s(account.as_str())),
            ("quantity".to_string(), n(quantity)),
            ("amount".to_string(), n(quantity * order.unit_price)),
            ("created_at".to_string(), n(now)),
        ]);
        // The order's refund counter is the optimistic lock: of two refunds
        // computed from the same state, only one commits.
        let bump_order = Update::builder()
            .table_name(table)
            .key("pk", s(store::order_pk(order_id)))
            .key("sk", s("ORDER"))
            .update_expression(
                "SET refund_count = :seq, refunded_quantity = refunded_quantity + :q",
            )
            .condition_expression("refund_count = :prev AND refunded_quantity + :q <= quantity")
            .expression_attribute_values(":seq", n(seq))
            .expression_attribute_values(":prev", n(order.refund_count))
            .expression_attribute_values(":q", n(quantity))
            .build()
            .expect("update is complete");
        let put_refund = Put::builder()
            .table_name(table)
            .set_item(Some(refund_item.clone()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .expect("put is complete");
        let movement = Movement::new(account, MovementKind::Refund, quantity, &refund_id);
        let extra = vec![
            TransactWriteItem::builder().update(bump_order).build(),
            TransactWriteItem::builder().put(put_refund).build(),
        ];
        match quota::apply(clients, table, &movement, extra).await? {
            Ok(()) => {
                tracing::info!(order_id, refund_id = %refund_id, quantity, "refund completed");
                return Ok(RefundOutcome::Created(
                    Refund::from_item(&refund_item).expect("complete refund item"),
                ));
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

/// An order and its buyer's balance, read in one transaction (a consistent snapshot).
async fn order_and_balance(
    clients: &AwsClients,
    table: &str,
    account: &AccountId,
    order_id: &str,
) -> Result<(Option<Order>, quota::Balance)> {
    use aws_sdk_dynamodb::types::{Get, TransactGetItem};
    let get = |pk: String, sk: &str| {
        TransactGetItem::builder()
            .get(
                Get::builder()
                    .table_name(table)
                    .key("pk", s(pk))
                    .key("sk", s(sk))
                    .build()
                    .expect("get is complete"),
            )
            .build()
    };
    let out = clients
        .dynamodb
        .transact_get_items()
        .transact_items(get(store::order_pk(order_id), "ORDER"))
        .transact_items(get(store::account_pk(account.as_str()), "BALANCE"))
        .send()
        .await
        .map_err(|e| Error::table(DisplayErrorContext(e)))?;
    let responses = out.responses();
    let item = |i: usize| responses.get(i).and_then(|r| r.item());
    Ok((
        item(0).and_then(Order::from_item),
        item(1).map(quota::balance_from_item).unwrap_or_default(),
    ))
}

async fn latest_refund(clients: &AwsClients, table: &str, order: &Order) -> Result<Refund> {
    let out = clients
        .dynamodb
        .get_item()
        .table_name(table)
        .key("pk", s(store::order_pk(&order.order_id)))
        .key("sk", s(format!("REFUND#{:06}", order.refund_count)))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| Error::table(DisplayErrorContext(e)))?;
    out.item().and_then(Refund::from_item).ok_or_else(|| {
        Error::table(format!(
            "refund {} of {} is missing",
            order.refund_count, order.order_id
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantity_must_be_a_whole_number_in_range() {
        let rules = OrderRules::default();
        assert_eq!(parse_quantity(&json!({"quantity": 3}), &rules).unwrap(), 3);
        assert_eq!(
            parse_quantity(&json!({"quantity": 1000}), &rules).unwrap(),
            1000
        );
        for bad in [
            json!({"quantity": 0}),
            json!({"quantity": -1}),
            json!({"quantity": 1.5}),
            json!({"quantity": "3"}),
            json!({"quantity": 1001}),
            json!({}),
            json!({"quantity": null}),
        ] {
            let err = parse_quantity(&bad, &rules).unwrap_err();
            assert_eq!(err.code(), codes::INVALID_QUANTITY, "{bad}");
            assert_eq!(err.kind(), meterai_core::ErrorKind::Invalid);
        }
        assert_eq!(
            parse_quantity(&json!([1]), &rules).unwrap_err().code(),
            codes::BAD_REQUEST
        );
        assert_eq!(
            parse_quantity(&json!({"quantity": 1, "price": 1}), &rules)
                .unwrap_err()
                .code(),
            codes::BAD_REQUEST
        );
    }

    #[test]
    fn refund_body_is_empty_or_a_positive_quantity() {
        assert_eq!(parse_refund_quantity(&json!({})).unwrap(), None);
        assert_eq!(
            parse_refund_quantity(&json!({"quantity": 2})).unwrap(),
            Some(2)
        );
        for bad in [
            json!({"quantity": 0}),
            json!({"quantity": -2}),
            json!({"quantity": 0.5}),
        ] {
            assert_eq!(
                parse_refund_quantity(&bad).unwrap_err().code(),
                codes::INVALID_QUANTITY,
                "{bad}"
            );
        }
        assert_eq!(
            parse_refund_quantity(&json!({"amount": 1}))
                .unwrap_err()
                .code(),
            codes::BAD_REQUEST
        );
    }

    #[test]
    fn order_ids_have_one_shape() {
        let id = format!("ord_{}", meterai_core::ids::nonce());
        assert!(valid_order_id(&id), "{id}");
        assert!(!valid_order_id("ord_short"));
        assert!(!valid_order_id(&id.replace("ord_", "job_")));
        assert!(!valid_order_id("ord_../../../../../../../../../x"));
    }

    #[test]
    fn a_pending_order_past_its_deadline_reads_as_expired() {
        let now = meterai_core::time::now_ms();
        let mut item = Item::from([
            ("order_id".to_string(), s("ord_01JC0000000000000000000000")),
            ("account".to_string(), s("a")),
            ("status".to_string(), s("pending")),
            ("quantity".to_string(), n(2)),
            ("unit_price".to_string(), n(10_000)),
            ("total".to_string(), n(20_000)),
            ("created_at".to_string(), n(now - 10)),
            ("pay_by".to_string(), n(now + 60_000)),
        ]);
        let order = Order::from_item(&item).unwrap();
        assert_eq!(order.status, OrderStatus::Pending);
        assert_eq!(order.unrefunded(), 2);
        item.insert("pay_by".into(), n(now - 1));
        assert_eq!(
            Order::from_item(&item).unwrap().status,
            OrderStatus::Expired
        );
        let json = serde_json::to_value(Order::from_item(&item).unwrap()).unwrap();
        assert_eq!(json["status"], "expired");
        assert_eq!(json["payment_reference"], "ord_01JC0000000000000000000000");
        assert!(json.get("account").is_none(), "the owner is not echoed");
    }
}
