//! The ports the use cases are written against.

use async_trait::async_trait;
use meterai_core::events::EventType;
use meterai_core::orders::{Order, OrderStatus, Refund};
use meterai_core::quota::{Balance, Page};
use meterai_core::{AccountId, Result};

/// Now, in epoch milliseconds.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        meterai_core::time::now_ms()
    }
}

/// Whether a credit happened now or had happened before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credited {
    Now,
    Before,
}

/// A refund lost its race: the order or the balance changed since the
/// snapshot it was decided on. Decide again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundLost;

/// Orders and the quota movements they cause.
#[async_trait]
pub trait Orders: Send + Sync {
    /// Records a new order (its id is fresh).
    async fn create(&self, order: &Order) -> Result<()>;
    async fn load(&self, order_id: &str) -> Result<Option<Order>>;
    /// The account's orders, newest first; `cursor` is the previous page's.
    async fn list(
        &self,
        account: &AccountId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<Order>>;
    /// One step, all or nothing: the order becomes paid (unless it was) and
    /// its quantity is credited to its account with a ledger entry keyed by
    /// the order (so never twice).
    async fn credit(&self, order: &Order, transaction_id: &str, now_ms: i64) -> Result<Credited>;
    /// A pending, unpaid order is closed as `status`; false if it was not pending.
    async fn close(&self, order_id: &str, status: OrderStatus, now_ms: i64) -> Result<bool>;
    /// The order and its buyer's balance, from one consistent snapshot.
    async fn with_balance(
        &self,
        order_id: &str,
        account: &AccountId,
    ) -> Result<(Option<Order>, Balance)>;
    /// One step, all or nothing: the refund is recorded as `order`'s
    /// number `refund.seq` (only if the order has had exactly `seq - 1` and
    /// still has `refund.quantity` unrefunded), the order's refunded quantity
    /// grows, and the stamps move from available to refunded (only if that
    /// many are available).
    async fn refund(
        &self,
        order: &Order,
        refund: &Refund,
    ) -> Result<std::result::Result<(), RefundLost>>;
    /// The order's refund number `seq`.
    async fn refund_number(&self, order_id: &str, seq: i64) -> Result<Option<Refund>>;
}

/// One payment notification as received, whatever came of it (kept 90 days,
/// so "paid but no quota" can always be traced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    /// The order it names, or `unknown`.
    pub order_id: String,
    pub gateway: &'static str,
    /// What came of it (`credited`, ...) or the error code.
    pub outcome: String,
    pub signature_valid: bool,
    pub received_ms: i64,
    /// The gateway's own fields, as sent (bounded).
    pub fields: Vec<(&'static str, String)>,
}

#[async_trait]
pub trait PaymentLog: Send + Sync {
    /// Best effort: a failure is logged, never the payment's fault.
    async fn record(&self, record: &PaymentRecord);
}

/// Where reseller events go. Emitting is idempotent per (kind, reference).
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Emits the event if `account` is a reseller's pool (portal users and
    /// customers get no webhooks).
    async fn emit_for_account(
        &self,
        account: &AccountId,
        kind: EventType,
        reference: &str,
        data: serde_json::Value,
    ) -> Result<()>;
}
