//! Orders in the table: the DynamoDB adapter of `meterai_app::ports::Orders`.
//!
//! An order is one item (`ORDER#{id}` / `ORDER`, listed by `gsi1`
//! `ORDERS#{account}`); its refunds are `REFUND#{seq:06}` items beside it.
//! A credit is one transaction: the order's `paid_at` (under
//! `attribute_not_exists`) and the credit movement (its ledger key is the
//! order's). A refund is one transaction: the order's refund counter as an
//! optimistic lock, the refund item, and the refund movement.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use meterai_app::ports::{Credited, Orders, PendingMark, RefundLost};
use meterai_core::orders::{Order, PaymentLink, Refund};
use meterai_core::AccountId;

use crate::error::{Error, Result};
use crate::keys;
use crate::quota::{self, Balance, Movement, MovementKind, Page, Rejected};
use crate::store::{self, get_n, get_s, n, s, Item};
use crate::AwsClients;

pub use meterai_core::orders::{OrderRules, OrderStatus};

/// The orders of one table.
#[derive(Debug, Clone)]
pub struct DynamoOrders {
    pub clients: AwsClients,
    pub table: String,
}

/// The marker listing an order as awaiting payment, kept by `since_ms`.
fn pending_marker(order_id: &str, since_ms: i64) -> Item {
    keys::pending_order(order_id, since_ms).with([
        ("order_id".to_string(), s(order_id)),
        ("since".to_string(), n(since_ms)),
    ])
}

/// The order's item (without `paid_at`, which only a credit writes).
pub fn order_item(order: &Order) -> Item {
    let account = order.account.as_str();
    keys::order(&order.order_id).with([
        ("gsi1pk".to_string(), s(keys::orders_of(account))),
        (
            "gsi1sk".to_string(),
            s(keys::sort_key(order.created_ms, &order.order_id)),
        ),
        ("order_id".to_string(), s(&order.order_id)),
        ("account".to_string(), s(account)),
        ("status".to_string(), s(order.status.as_str())),
        ("quantity".to_string(), n(order.quantity)),
        ("unit_price".to_string(), n(order.unit_price)),
        ("total".to_string(), n(order.total)),
        ("created_at".to_string(), n(order.created_ms)),
        ("pay_by".to_string(), n(order.pay_by_ms)),
        ("refunded_quantity".to_string(), n(order.refunded_quantity)),
        ("refund_count".to_string(), n(order.refund_count)),
    ])
}

pub fn order_from_item(item: &Item) -> Option<Order> {
    Some(Order {
        order_id: get_s(item, "order_id")?.to_string(),
        account: AccountId::parse(get_s(item, "account")?).ok()?,
        status: OrderStatus::parse(get_s(item, "status")?)?,
        quantity: get_n(item, "quantity")?,
        unit_price: get_n(item, "unit_price")?,
        total: get_n(item, "total")?,
        created_ms: get_n(item, "created_at")?,
        pay_by_ms: get_n(item, "pay_by")?,
        paid_ms: get_n(item, "paid_at"),
        refunded_quantity: get_n(item, "refunded_quantity").unwrap_or(0),
        refund_count: get_n(item, "refund_count").unwrap_or(0),
        payment: get_s(item, "payment_token")
            .zip(get_s(item, "payment_url"))
            .map(|(token, url)| PaymentLink {
                token: token.to_string(),
                redirect_url: url.to_string(),
            }),
    })
}

fn refund_item(refund: &Refund) -> Item {
    keys::refund(&refund.order_id, refund.seq).with([
        ("refund_id".to_string(), s(&refund.refund_id)),
        ("order_id".to_string(), s(&refund.order_id)),
        ("account".to_string(), s(refund.account.as_str())),
        ("seq".to_string(), n(refund.seq)),
        ("quantity".to_string(), n(refund.quantity)),
        ("amount".to_string(), n(refund.amount)),
        ("created_at".to_string(), n(refund.created_ms)),
    ])
}

fn refund_from_item(item: &Item, seq: i64) -> Option<Refund> {
    Some(Refund {
        refund_id: get_s(item, "refund_id")?.to_string(),
        order_id: get_s(item, "order_id")?.to_string(),
        account: AccountId::parse(get_s(item, "account")?).ok()?,
        seq: get_n(item, "seq").unwrap_or(seq),
        quantity: get_n(item, "quantity")?,
        amount: get_n(item, "amount")?,
        created_ms: get_n(item, "created_at")?,
    })
}

/// The order's side of a refund: its counter moves from `seq - 1` to `seq`
/// (the optimistic lock: of two refunds decided on the same state, one
/// commits), and it must still have the stamps unrefunded.
fn refund_order_update(table: &str, order: &Order, refund: &Refund) -> Update {
    Update::builder()
        .table_name(table)
        .set_key(Some(keys::order(&order.order_id).map()))
        .update_expression("SET refund_count = :seq ADD refunded_quantity :q")
        .condition_expression("refund_count = :prev AND refunded_quantity <= :most_before")
        .expression_attribute_values(":seq", n(refund.seq))
        .expression_attribute_values(":prev", n(refund.seq - 1))
        .expression_attribute_values(":q", n(refund.quantity))
        .expression_attribute_values(":most_before", n(order.quantity - refund.quantity))
        .build()
        .expect("update is complete")
}

#[async_trait]
impl Orders for DynamoOrders {
    async fn create(&self, order: &Order) -> Result<()> {
        // The order and its awaiting-payment marker, both or neither, so
        // that no pending order escapes the reconciler.
        let order_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(order_item(order)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .expect("put is complete");
        // No expiry: the reconciler forgets a marker once the gateway
        // settles or closes the order (an abandoned one after its page is
        // gone), never while a virtual account could still be paid.
        let marker = pending_marker(&order.order_id, order.created_ms);
        let marker_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(marker))
            .build()
            .expect("put is complete");
        self.clients
            .dynamodb
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(order_put).build())
            .transact_items(TransactWriteItem::builder().put(marker_put).build())
            .send()
            .await
            .map_err(|e| Error::table(DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn attach_payment(&self, order_id: &str, link: &PaymentLink) -> Result<()> {
        // A condition that fails means another read attached one first:
        // theirs stands.
        let result = self
            .clients
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::order(order_id).map()))
            .update_expression("SET payment_token = :token, payment_url = :url")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(payment_token)")
            .expression_attribute_values(":token", s(&link.token))
            .expression_attribute_values(":url", s(&link.redirect_url))
            .send()
            .await;
        store::condition_held(result).map(|_| ())
    }

    async fn pending(&self, quiet_since_ms: i64, limit: usize) -> Result<Vec<PendingMark>> {
        let mut found: Vec<(String, PendingMark)> = Vec::new();
        let upper = keys::sort_key(quiet_since_ms, "");
        for shard in 0..keys::PENDING_SHARDS {
            let out = self
                .clients
                .dynamodb
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk < :before")
                .expression_attribute_values(":pk", s(keys::pending_shard(shard)))
                .expression_attribute_values(":before", s(&upper))
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(|e| Error::table(DisplayErrorContext(e)))?;
            for item in out.items() {
                // Markers written before `since` existed carry it in the key.
                let since = get_n(item, "since")
                    .or_else(|| get_s(item, "sk")?.split('#').next()?.parse().ok());
                if let (Some(sk), Some(id), Some(since)) =
                    (get_s(item, "sk"), get_s(item, "order_id"), since)
                {
                    let mark = PendingMark {
                        order_id: id.to_string(),
                        since_ms: since,
                    };
                    found.push((sk.to_string(), mark));
                }
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found.into_iter().take(limit).map(|(_, m)| m).collect())
    }

    async fn requeue_pending(&self, mark: &PendingMark, since_ms: i64) -> Result<()> {
        // Both or neither, so the order never drops out of the line; the old
        // marker must still be there (another run may have moved it).
        let moved = Put::builder()
            .table_name(&self.table)
            .set_item(Some(pending_marker(&mark.order_id, since_ms)))
            .build()
            .expect("put is complete");
        let old = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(
                keys::pending_order(&mark.order_id, mark.since_ms).map(),
            ))
            .condition_expression("attribute_exists(pk)")
            .build()
            .expect("delete is complete");
        let result = self
            .clients
            .dynamodb
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(moved).build())
            .transact_items(TransactWriteItem::builder().delete(old).build())
            .send()
            .await;
        match result.map_err(|e| e.into_service_error()) {
            // Moved or forgotten meanwhile, or a conflict: the marker is
            // where it was or where the other run put it; both are fine.
            Ok(_) | Err(TransactWriteItemsError::TransactionCanceledException(_)) => Ok(()),
            Err(other) => Err(Error::table(DisplayErrorContext(other))),
        }
    }

    async fn claim_read_check(&self, order_id: &str, now_ms: i64, every_ms: i64) -> Result<bool> {
        let result = self
            .clients
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::order(order_id).map()))
            .update_expression("SET read_checked_at = :now")
            .condition_expression(
                "#status = :pending AND attribute_not_exists(paid_at) \
                 AND (attribute_not_exists(read_checked_at) OR read_checked_at <= :due)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s(OrderStatus::Pending.as_str()))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":due", n(now_ms - every_ms))
            .send()
            .await;
        store::condition_held(result)
    }

    async fn forget_pending(&self, mark: &PendingMark) -> Result<()> {
        self.clients
            .dynamodb
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(
                keys::pending_order(&mark.order_id, mark.since_ms).map(),
            ))
            .send()
            .await
            .map_err(|e| Error::table(DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn load(&self, order_id: &str) -> Result<Option<Order>> {
        let key = keys::order(order_id);
        let out = self
            .clients
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.map()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::table(DisplayErrorContext(e)))?;
        Ok(out.item().and_then(order_from_item))
    }

    async fn list(
        &self,
        account: &AccountId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<Order>> {
        let (items, next_cursor) = crate::paging::query_gsi1_desc(
            &self.clients,
            &self.table,
            &keys::orders_of(account.as_str()),
            limit,
            cursor,
        )
        .await?;
        Ok(Page {
            items: items.iter().filter_map(order_from_item).collect(),
            next_cursor,
        })
    }

    async fn credit(&self, order: &Order, transaction_id: &str, now_ms: i64) -> Result<Credited> {
        let movement = Movement::new(
            &order.account,
            MovementKind::Credit,
            order.quantity,
            &order.order_id,
        );
        let mark_paid = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::order(&order.order_id).map()))
            .update_expression("SET #status = :paid, paid_at = :now, transaction_id = :tx")
            .condition_expression("attribute_not_exists(paid_at)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":paid", s(OrderStatus::Paid.as_str()))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":tx", s(transaction_id))
            .build()
            .expect("update is complete");
        let outcome = quota::apply(
            &self.clients,
            &self.table,
            &movement,
            vec![TransactWriteItem::builder().update(mark_paid).build()],
        )
        .await?;
        Ok(match outcome {
            Ok(()) => Credited::Now,
            Err(Rejected::AlreadyApplied) | Err(Rejected::Condition(_)) => Credited::Before,
            Err(Rejected::Insufficient) => unreachable!("a credit takes from no counter"),
        })
    }

    async fn close(&self, order_id: &str, status: OrderStatus, now_ms: i64) -> Result<bool> {
        let result = self
            .clients
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::order(order_id).map()))
            .update_expression("SET #status = :closed, closed_at = :now")
            .condition_expression("#status = :pending AND attribute_not_exists(paid_at)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":closed", s(status.as_str()))
            .expression_attribute_values(":pending", s(OrderStatus::Pending.as_str()))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        store::condition_held(result)
    }

    async fn with_balance(
        &self,
        order_id: &str,
        account: &AccountId,
    ) -> Result<(Option<Order>, Balance)> {
        use aws_sdk_dynamodb::types::{Get, TransactGetItem};
        let get = |key: keys::Key| {
            TransactGetItem::builder()
                .get(
                    Get::builder()
                        .table_name(&self.table)
                        .set_key(Some(key.map()))
                        .build()
                        .expect("get is complete"),
                )
                .build()
        };
        let out = self
            .clients
            .dynamodb
            .transact_get_items()
            .transact_items(get(keys::order(order_id)))
            .transact_items(get(keys::balance(account.as_str())))
            .send()
            .await
            .map_err(|e| Error::table(DisplayErrorContext(e)))?;
        let responses = out.responses();
        let item = |i: usize| responses.get(i).and_then(|r| r.item());
        Ok((
            item(0).and_then(order_from_item),
            item(1).map(quota::balance_from_item).unwrap_or_default(),
        ))
    }

    async fn refund(
        &self,
        order: &Order,
        refund: &Refund,
    ) -> Result<std::result::Result<(), RefundLost>> {
        let put_refund = Put::builder()
            .table_name(&self.table)
            .set_item(Some(refund_item(refund)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .expect("put is complete");
        let movement = Movement::new(
            &refund.account,
            MovementKind::Refund,
            refund.quantity,
            &refund.refund_id,
        );
        let extra = vec![
            TransactWriteItem::builder()
                .update(refund_order_update(&self.table, order, refund))
                .build(),
            TransactWriteItem::builder().put(put_refund).build(),
        ];
        Ok(quota::apply(&self.clients, &self.table, &movement, extra)
            .await?
            .map_err(|_| RefundLost))
    }

    async fn refund_number(&self, order_id: &str, seq: i64) -> Result<Option<Refund>> {
        let out = self
            .clients
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::refund(order_id, seq).map()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::table(DisplayErrorContext(e)))?;
        Ok(out.item().and_then(|item| refund_from_item(item, seq)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_survives_its_item() {
        let account = AccountId::parse("acct-1").unwrap();
        let mut order = Order::new(
            "ord_01JC0000000000000000000000".into(),
            account,
            2,
            &OrderRules::default(),
            1_700_000_000_000,
        );
        assert_eq!(order_from_item(&order_item(&order)), Some(order.clone()));
        order.status = OrderStatus::Paid;
        order.paid_ms = Some(1_700_000_001_000);
        order.refund_count = 1;
        order.refunded_quantity = 1;
        let mut item = order_item(&order);
        item.insert("paid_at".into(), n(1_700_000_001_000));
        assert_eq!(order_from_item(&item), Some(order));
    }

    #[test]
    fn a_refund_may_not_take_more_than_the_order_has_unrefunded() {
        let account = AccountId::parse("acct-1").unwrap();
        let order = Order::new("ord_1".into(), account, 5, &OrderRules::default(), 0);
        let refund = Refund::next(&order, 2, 10);
        let update = refund_order_update("t", &order, &refund);
        assert_eq!(
            update.condition_expression(),
            Some("refund_count = :prev AND refunded_quantity <= :most_before")
        );
        let values = update.expression_attribute_values().unwrap();
        assert_eq!(values[":prev"], n(0));
        assert_eq!(values[":most_before"], n(3));
    }
}
