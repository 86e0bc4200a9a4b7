//! Orders: the rules of buying stamp quota (prices, limits, windows), the
//! states an order goes through, and what may be refunded.

use serde::Serialize;

use crate::error::{codes, Error, Result};
use crate::ids::AccountId;
use crate::time::rfc3339;

/// How long past its payment deadline an unused payment page may still be
/// open at the gateway (clock skew, the page's own rounding).
pub const PAGE_GONE_MARGIN_MS: i64 = 15 * 60_000;

/// Prices and limits of the purchase side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRules {
    /// Rupiah per stamp (Rp10,000).
    pub unit_price: i64,
    pub max_quantity: i64,
    /// How long a pending order waits for payment.
    pub payment_window_ms: i64,
    /// How long after payment unused stamps may be refunded.
    pub refund_window_ms: i64,
}

impl Default for OrderRules {
    fn default() -> Self {
        Self {
            unit_price: 10_000,
            max_quantity: 1_000,
            payment_window_ms: 24 * 3600 * 1000,
            refund_window_ms: 30 * 24 * 3600 * 1000,
        }
    }
}

impl OrderRules {
    /// Whether an order paid at `paid_ms` may still be refunded at `now_ms`.
    pub fn refund_window_open(&self, paid_ms: i64, now_ms: i64) -> bool {
        now_ms <= paid_ms + self.refund_window_ms
    }

    /// Whether `quantity` may be ordered at once.
    pub fn allows_quantity(&self, quantity: i64) -> bool {
        (1..=self.max_quantity).contains(&quantity)
    }

    /// `quantity` if it may be ordered at once (`None`: not a whole number),
    /// else the error a client is told.
    pub fn check_quantity(&self, quantity: Option<i64>) -> Result<i64> {
        quantity
            .filter(|q| self.allows_quantity(*q))
            .ok_or_else(|| {
                Error::invalid(
                    codes::INVALID_QUANTITY,
                    format!(
                        "quantity must be a whole number from 1 to {}",
                        self.max_quantity
                    ),
                )
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    Pending,
    Paid,
    Expired,
    Cancelled,
    Denied,
}

impl OrderStatus {
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending" => OrderStatus::Pending,
            "paid" => OrderStatus::Paid,
            "expired" => OrderStatus::Expired,
            "cancelled" => OrderStatus::Cancelled,
            "denied" => OrderStatus::Denied,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Paid => "paid",
            OrderStatus::Expired => "expired",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Denied => "denied",
        }
    }

    /// A pending order past its payment deadline is expired, whether or not
    /// the gateway has said so yet.
    pub fn as_of(self, payment_deadline_ms: i64, now_ms: i64) -> Self {
        if self == OrderStatus::Pending && now_ms > payment_deadline_ms {
            OrderStatus::Expired
        } else {
            self
        }
    }
}

/// An order: a purchase of `quantity` stamps by `account`. Times are epoch ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub order_id: String,
    pub account: AccountId,
    /// As recorded; [`Order::status_at`] also knows the payment deadline.
    pub status: OrderStatus,
    pub quantity: i64,
    /// Rupiah per stamp when ordered.
    pub unit_price: i64,
    /// Rupiah: quantity x unit price.
    pub total: i64,
    pub created_ms: i64,
    pub pay_by_ms: i64,
    pub paid_ms: Option<i64>,
    pub refunded_quantity: i64,
    /// Refunds made so far (the next one is number `refund_count + 1`).
    pub refund_count: i64,
    /// The gateway's payment page for this order, once opened.
    pub payment: Option<PaymentLink>,
}

/// Where the buyer pays: the gateway's page for one order (Midtrans Snap:
/// its transaction token and redirect URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentLink {
    pub token: String,
    pub redirect_url: String,
}

impl Order {
    /// A new pending order, priced by `rules` (the quantity is checked by the caller).
    pub fn new(
        order_id: String,
        account: AccountId,
        quantity: i64,
        rules: &OrderRules,
        now_ms: i64,
    ) -> Self {
        Order {
            order_id,
            account,
            status: OrderStatus::Pending,
            quantity,
            unit_price: rules.unit_price,
            total: quantity * rules.unit_price,
            created_ms: now_ms,
            pay_by_ms: now_ms + rules.payment_window_ms,
            paid_ms: None,
            refunded_quantity: 0,
            refund_count: 0,
            payment: None,
        }
    }

    /// Whether the gateway's payment page, if never used, has surely closed:
    /// it expires with the payment window, plus a margin for both clocks.
    /// A gateway that still knows no transaction then never will.
    pub fn payment_page_gone(&self, now_ms: i64) -> bool {
        now_ms > self.pay_by_ms + PAGE_GONE_MARGIN_MS
    }

    pub fn status_at(&self, now_ms: i64) -> OrderStatus {
        self.status.as_of(self.pay_by_ms, now_ms)
    }

    /// Stamps bought by this order and not refunded yet.
    pub fn unrefunded(&self) -> i64 {
        self.quantity - self.refunded_quantity
    }

    /// The order as the API shows it at `now_ms`.
    pub fn view(&self, now_ms: i64) -> OrderView {
        OrderView {
            order_id: self.order_id.clone(),
            status: self.status_at(now_ms),
            quantity: self.quantity,
            unit_price: self.unit_price,
            total: self.total,
            currency: "IDR",
            payment_reference: self.order_id.clone(),
            created_at: rfc3339(self.created_ms),
            expires_at: rfc3339(self.pay_by_ms),
            paid_at: self.paid_ms.map(rfc3339),
            refunded_quantity: self.refunded_quantity,
            // The payment page only matters while the order can be paid.
            payment: self
                .payment
                .clone()
                .filter(|_| self.status_at(now_ms) == OrderStatus::Pending),
        }
    }
}

/// An order as the API shows it (the owner is never echoed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderView {
    pub order_id: String,
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
    /// Where to pay a pending order (absent if the gateway could not be
    /// reached yet: reading the order tries again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentLink>,
}

/// A refund of unused stamps at 100% of what they cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub refund_id: String,
    pub order_id: String,
    pub account: AccountId,
    /// Its number among the order's refunds, from 1.
    pub seq: i64,
    pub quantity: i64,
    /// Rupiah paid back: quantity x the order's unit price.
    pub amount: i64,
    pub created_ms: i64,
}

impl Refund {
    /// The order's next refund, of `quantity` stamps.
    pub fn next(order: &Order, quantity: i64, now_ms: i64) -> Self {
        let seq = order.refund_count + 1;
        Refund {
            refund_id: format!("{}-r{seq}", order.order_id),
            order_id: order.order_id.clone(),
            account: order.account.clone(),
            seq,
            quantity,
            amount: quantity * order.unit_price,
            created_ms: now_ms,
        }
    }

    pub fn view(&self) -> RefundView {
        RefundView {
            refund_id: self.refund_id.clone(),
            order_id: self.order_id.clone(),
            quantity: self.quantity,
            amount: self.amount,
            currency: "IDR",
            status: "completed",
            created_at: rfc3339(self.created_ms),
        }
    }
}

/// A refund as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundView {
    pub refund_id: String,
    pub order_id: String,
    pub quantity: i64,
    pub amount: i64,
    pub currency: &'static str,
    pub status: &'static str,
    pub created_at: String,
}

/// What a refund request comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundDecision {
    /// Refund this many stamps now.
    Refund(i64),
    /// Nothing is left and the order was refunded before: answer with its
    /// latest refund, so that repeating the request is harmless.
    Repeat,
}

/// Decides a refund of `order`'s unused stamps: the least of what the order
/// bought and has not had refunded, and what the buyer has `available`
/// (reserved and spent stamps are never refunded); `requested` asks for a
/// specific number instead of all of them.
pub fn decide_refund(
    order: &Order,
    available: i64,
    requested: Option<i64>,
    rules: &OrderRules,
    now_ms: i64,
) -> Result<RefundDecision> {
    let Some(paid_ms) = order.paid_ms else {
        return Err(Error::conflict(
            codes::ORDER_NOT_PAID,
            "only a paid order can be refunded",
        ));
    };
    if !rules.refund_window_open(paid_ms, now_ms) {
        return Err(Error::conflict(
            codes::REFUND_WINDOW_CLOSED,
            "the refund window of this order has closed",
        ));
    }
    let refundable = order.unrefunded().min(available).max(0);
    match requested {
        Some(q) if q > refundable => Err(Error::conflict(
            codes::REFUND_EXCEEDS_UNUSED,
            format!("asked to refund {q} stamps but only {refundable} of this order are unused"),
        )),
        Some(q) => Ok(RefundDecision::Refund(q)),
        None if refundable > 0 => Ok(RefundDecision::Refund(refundable)),
        None if order.refund_count > 0 => Ok(RefundDecision::Repeat),
        None => Err(Error::conflict(
            codes::NOTHING_TO_REFUND,
            "this order has no unused stamps to refund",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refund_window_closes_after_the_configured_time() {
        let rules = OrderRules {
            refund_window_ms: 1_000,
            ..OrderRules::default()
        };
        assert!(rules.refund_window_open(5_000, 5_000));
        assert!(rules.refund_window_open(5_000, 6_000));
        assert!(!rules.refund_window_open(5_000, 6_001));
        let closed = OrderRules {
            refund_window_ms: 0,
            ..OrderRules::default()
        };
        assert!(!closed.refund_window_open(5_000, 5_001));
    }

    #[test]
    fn quantities_and_states() {
        let rules = OrderRules::default();
        assert!(rules.allows_quantity(1) && rules.allows_quantity(1_000));
        assert!(!rules.allows_quantity(0) && !rules.allows_quantity(1_001));
        for s in ["pending", "paid", "expired", "cancelled", "denied"] {
            assert_eq!(OrderStatus::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(OrderStatus::parse("lost"), None);
        assert_eq!(OrderStatus::Pending.as_of(10, 11), OrderStatus::Expired);
        assert_eq!(OrderStatus::Pending.as_of(10, 10), OrderStatus::Pending);
        assert_eq!(OrderStatus::Paid.as_of(10, 11), OrderStatus::Paid);
    }

    fn paid_order(quantity: i64, paid_ms: i64) -> Order {
        let account = AccountId::parse("acct-1").unwrap();
        let mut order = Order::new("ord_1".into(), account, quantity, &OrderRules::default(), 0);
        order.status = OrderStatus::Paid;
        order.paid_ms = Some(paid_ms);
        order
    }

    #[test]
    fn a_pending_order_past_its_deadline_reads_as_expired_and_hides_its_owner() {
        let rules = OrderRules::default();
        let order = Order::new(
            "ord_1".into(),
            AccountId::parse("a").unwrap(),
            2,
            &rules,
            1_000,
        );
        assert_eq!(order.total, 20_000);
        assert_eq!(order.status_at(1_000), OrderStatus::Pending);
        assert_eq!(
            order.status_at(1_001 + rules.payment_window_ms),
            OrderStatus::Expired
        );
        let view = order.view(1_000);
        assert_eq!(view.payment_reference, "ord_1");
        assert_eq!(view.currency, "IDR");
        assert_eq!(view.paid_at, None);
    }

    #[test]
    fn a_refund_takes_the_least_of_unrefunded_and_available() {
        let rules = OrderRules::default();
        let order = paid_order(5, 100);
        assert_eq!(
            decide_refund(&order, 3, None, &rules, 200).unwrap(),
            RefundDecision::Refund(3)
        );
        assert_eq!(
            decide_refund(&order, 9, None, &rules, 200).unwrap(),
            RefundDecision::Refund(5)
        );
        assert_eq!(
            decide_refund(&order, 9, Some(2), &rules, 200).unwrap(),
            RefundDecision::Refund(2)
        );
        let code = |r: Result<RefundDecision>| r.unwrap_err().code();
        assert_eq!(
            code(decide_refund(&order, 3, Some(4), &rules, 200)),
            codes::REFUND_EXCEEDS_UNUSED
        );
        assert_eq!(
            code(decide_refund(&order, 0, None, &rules, 200)),
            codes::NOTHING_TO_REFUND
        );
        let mut refunded = order.clone();
        refunded.refund_count = 1;
        refunded.refunded_quantity = 5;
        assert_eq!(
            decide_refund(&refunded, 9, None, &rules, 200).unwrap(),
            RefundDecision::Repeat
        );
        let late = 100 + rules.refund_window_ms + 1;
        assert_eq!(
            code(decide_refund(&order, 3, None, &rules, late)),
            codes::REFUND_WINDOW_CLOSED
        );
        let mut pending = order.clone();
        pending.paid_ms = None;
        assert_eq!(
            code(decide_refund(&pending, 3, None, &rules, 200)),
            codes::ORDER_NOT_PAID
        );
        let refund = Refund::next(&refunded, 2, 300);
        assert_eq!(
            (refund.refund_id.as_str(), refund.seq, refund.amount),
            ("ord_1-r2", 2, 20_000)
        );
    }
}
