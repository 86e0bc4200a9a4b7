//! Orders: the rules of buying stamp quota (prices, limits, windows) and the
//! states an order goes through.

use serde::Serialize;

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
}
