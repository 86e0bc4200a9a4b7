//! Quota: the per-account balance and the movements that change it.
//!
//! Invariant, per account, at all times:
//! `purchased = available + reserved + spent + refunded + sold`, where `sold`
//! counts what a reseller's pool passed on to its customers (zero for portal
//! users, so for them `purchased = available + reserved + spent + refunded`);
//! a customer's `purchased` counts what it received. Every movement keeps
//! it by construction ([`MovementKind::deltas`]); [`audit_entries`] checks a
//! balance against the sum of its ledger.

use serde::{Deserialize, Serialize};

use crate::error::{codes, Error};
use crate::ids::AccountId;

/// The six counters of an account's quota, in stamps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    pub purchased: i64,
    pub available: i64,
    pub reserved: i64,
    pub spent: i64,
    pub refunded: i64,
    /// Passed on by a reseller's pool to its customers.
    pub sold: i64,
}

impl Balance {
    pub const FIELDS: [&'static str; 6] = [
        "purchased",
        "available",
        "reserved",
        "spent",
        "refunded",
        "sold",
    ];

    /// `purchased = available + reserved + spent + refunded + sold`, nothing negative.
    pub fn is_consistent(&self) -> bool {
        self.purchased == self.accounted() && self.values().iter().all(|v| *v >= 0)
    }

    /// Where the purchased stamps are now.
    pub fn accounted(&self) -> i64 {
        self.available + self.reserved + self.spent + self.refunded + self.sold
    }

    pub fn values(&self) -> [i64; 6] {
        [
            self.purchased,
            self.available,
            self.reserved,
            self.spent,
            self.refunded,
            self.sold,
        ]
    }

    pub fn add(&mut self, other: &Balance) {
        self.purchased += other.purchased;
        self.available += other.available;
        self.reserved += other.reserved;
        self.spent += other.spent;
        self.refunded += other.refunded;
        self.sold += other.sold;
    }
}

/// What a movement does to the balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MovementKind {
    /// A paid order: purchased and available grow.
    Credit,
    /// A stamp job was accepted: available -> reserved.
    Reserve,
    /// The stamped document is stored: reserved -> spent.
    Spend,
    /// The job failed for good: reserved -> available.
    Release,
    /// Unused quota paid back: available -> refunded.
    Refund,
    /// A reseller's sale, on its pool: available -> sold.
    Sell,
    /// A reseller's sale, on the customer: purchased and available grow.
    Receive,
    /// An operator's correction adding stamps: purchased and available grow.
    Grant,
    /// An operator's correction taking unused stamps back: available and
    /// purchased shrink (stamps that never should have come in).
    Withdraw,
}

impl MovementKind {
    pub const ALL: [MovementKind; 9] = [
        MovementKind::Credit,
        MovementKind::Reserve,
        MovementKind::Spend,
        MovementKind::Release,
        MovementKind::Refund,
        MovementKind::Sell,
        MovementKind::Receive,
        MovementKind::Grant,
        MovementKind::Withdraw,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MovementKind::Credit => "credit",
            MovementKind::Reserve => "reserve",
            MovementKind::Spend => "spend",
            MovementKind::Release => "release",
            MovementKind::Refund => "refund",
            MovementKind::Sell => "sell",
            MovementKind::Receive => "receive",
            MovementKind::Grant => "grant",
            MovementKind::Withdraw => "withdraw",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// The change to each counter when `quantity` stamps move.
    pub fn deltas(self, quantity: i64) -> Balance {
        let q = quantity;
        match self {
            MovementKind::Credit | MovementKind::Receive | MovementKind::Grant => Balance {
                purchased: q,
                available: q,
                ..Balance::default()
            },
            MovementKind::Withdraw => Balance {
                purchased: -q,
                available: -q,
                ..Balance::default()
            },
            MovementKind::Reserve => Balance {
                available: -q,
                reserved: q,
                ..Balance::default()
            },
            MovementKind::Spend => Balance {
                reserved: -q,
                spent: q,
                ..Balance::default()
            },
            MovementKind::Release => Balance {
                reserved: -q,
                available: q,
                ..Balance::default()
            },
            MovementKind::Refund => Balance {
                available: -q,
                refunded: q,
                ..Balance::default()
            },
            MovementKind::Sell => Balance {
                available: -q,
                sold: q,
                ..Balance::default()
            },
        }
    }

    /// The counter that must hold at least `quantity` before the move.
    pub fn source(self) -> Option<&'static str> {
        match self {
            MovementKind::Credit | MovementKind::Receive | MovementKind::Grant => None,
            MovementKind::Reserve
            | MovementKind::Refund
            | MovementKind::Sell
            | MovementKind::Withdraw => Some("available"),
            MovementKind::Spend | MovementKind::Release => Some("reserved"),
        }
    }
}

/// One movement of quota, identified by its cause (`reference`: an order id,
/// a job id, a refund id). The pair (kind, reference) is unique per account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub account: AccountId,
    pub kind: MovementKind,
    pub quantity: i64,
    pub reference: String,
}

impl Movement {
    pub fn new(
        account: &AccountId,
        kind: MovementKind,
        quantity: i64,
        reference: impl Into<String>,
    ) -> Self {
        assert!(quantity > 0, "a movement moves at least one stamp");
        Self {
            account: account.clone(),
            kind,
            quantity,
            reference: reference.into(),
        }
    }

    /// The ledger entry's sort key: deterministic, so it can be written once only.
    pub fn ledger_sk(&self) -> String {
        format!("{}#{}", self.kind.as_str(), self.reference)
    }
}

/// One immutable movement as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    pub movement_id: String,
    pub kind: MovementKind,
    pub quantity: i64,
    pub reference: String,
    pub created_at: String,
    pub balance_change: Balance,
    /// Why an operator corrected the balance (corrections only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who corrected it: kept for the operators' tool, never shown to the
    /// account's owner.
    #[serde(skip)]
    pub operator: Option<String>,
}

/// An operator's manual correction of one account's quota: itself a ledger
/// movement (`grant` or `withdraw`), with a reason and the operator's name,
/// never a silent balance edit. Its reference (the support ticket) makes it
/// apply once: the same ticket twice is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correction {
    pub movement: Movement,
    pub reason: String,
    pub operator: String,
}

/// At most this many stamps in one correction: a slip of the keyboard
/// (an extra zero) must not mint a fortune.
pub const MAX_CORRECTION: i64 = 10_000;

impl Correction {
    /// Checks an operator's correction. `delta` is signed: positive adds
    /// stamps, negative takes unused ones back.
    pub fn new(
        account: &AccountId,
        delta: i64,
        ticket: &str,
        reason: &str,
        operator: &str,
    ) -> Result<Self, Error> {
        if delta == 0 || delta.abs() > MAX_CORRECTION {
            return Err(Error::invalid(
                codes::INVALID_QUANTITY,
                format!("a correction moves 1 to {MAX_CORRECTION} stamps, up or down"),
            ));
        }
        let ticket_ok = (1..=64).contains(&ticket.len())
            && ticket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !ticket_ok {
            return Err(Error::invalid(
                codes::BAD_REQUEST,
                "the ticket is 1-64 letters, digits, '-', '_' or '.'",
            ));
        }
        let reason = reason.trim();
        if !(10..=500).contains(&reason.chars().count()) || reason.chars().any(char::is_control) {
            return Err(Error::invalid(
                codes::BAD_REQUEST,
                "the reason is 10-500 characters on one line: say why, for the next reader",
            ));
        }
        let operator = operator.trim();
        let operator_ok =
            (1..=64).contains(&operator.chars().count()) && !operator.chars().any(char::is_control);
        if !operator_ok {
            return Err(Error::invalid(
                codes::BAD_REQUEST,
                "the operator's name is 1-64 characters",
            ));
        }
        let kind = if delta > 0 {
            MovementKind::Grant
        } else {
            MovementKind::Withdraw
        };
        // One ticket whatever its case: `cs-101` is `CS-101`.
        Ok(Self {
            movement: Movement::new(account, kind, delta.abs(), ticket.to_ascii_uppercase()),
            reason: reason.to_string(),
            operator: operator.to_string(),
        })
    }
}

/// Items in a page of a listing when the client does not say, and at most.
pub const DEFAULT_PAGE_SIZE: i32 = 20;
pub const MAX_PAGE_SIZE: i32 = 100;

/// A page of results and the cursor of the next page.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The result of checking an account's quota against its ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    pub account: String,
    pub balance: Balance,
    /// The sum of every ledger entry's changes.
    pub ledger: Balance,
    pub entries: usize,
    /// Empty when the audit holds.
    pub problems: Vec<String>,
}

impl AuditReport {
    pub fn holds(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Compares a balance with the sum of its ledger entries (pure part of [`audit`]).
pub fn audit_entries(account: &str, balance: Balance, entries: &[Balance]) -> AuditReport {
    let mut ledger = Balance::default();
    for change in entries {
        ledger.add(change);
    }
    let mut problems = Vec::new();
    if balance.purchased != balance.accounted() {
        problems.push(format!(
            "purchased {} != available {} + reserved {} + spent {} + refunded {} + sold {}",
            balance.purchased,
            balance.available,
            balance.reserved,
            balance.spent,
            balance.refunded,
            balance.sold
        ));
    }
    for (field, value) in Balance::FIELDS.iter().zip(balance.values()) {
        if value < 0 {
            problems.push(format!("{field} is negative ({value})"));
        }
    }
    if ledger != balance {
        problems.push(format!(
            "balance {balance:?} differs from the ledger's sum {ledger:?}"
        ));
    }
    AuditReport {
        account: account.to_string(),
        balance,
        ledger,
        entries: entries.len(),
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> AccountId {
        AccountId::parse("acct-1").unwrap()
    }

    #[test]
    fn every_movement_keeps_the_invariant() {
        for kind in MovementKind::ALL {
            let d = kind.deltas(3);
            assert_eq!(
                d.purchased,
                d.available + d.reserved + d.spent + d.refunded + d.sold,
                "{kind:?} breaks purchased = available + reserved + spent + refunded + sold"
            );
            assert_eq!(MovementKind::parse(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn movements_take_from_their_source() {
        assert_eq!(MovementKind::Credit.source(), None);
        assert_eq!(MovementKind::Reserve.source(), Some("available"));
        assert_eq!(MovementKind::Refund.source(), Some("available"));
        assert_eq!(MovementKind::Spend.source(), Some("reserved"));
        assert_eq!(MovementKind::Release.source(), Some("reserved"));
        assert_eq!(
            MovementKind::Spend.deltas(1),
            Balance {
                reserved: -1,
                spent: 1,
                ..Default::default()
            }
        );
    }

    #[test]
    #[should_panic(expected = "at least one stamp")]
    fn a_movement_of_nothing_is_a_bug() {
        Movement::new(&account(), MovementKind::Reserve, 0, "job_1");
    }

    #[test]
    fn audit_holds_when_balance_matches_the_ledger() {
        let entries = [
            MovementKind::Credit.deltas(10),
            MovementKind::Reserve.deltas(1),
            MovementKind::Spend.deltas(1),
            MovementKind::Reserve.deltas(1),
            MovementKind::Release.deltas(1),
            MovementKind::Refund.deltas(4),
        ];
        let balance = Balance {
            purchased: 10,
            available: 5,
            reserved: 0,
            spent: 1,
            refunded: 4,
            sold: 0,
        };
        let report = audit_entries("a", balance, &entries);
        assert!(report.holds(), "{:?}", report.problems);
        assert_eq!(report.entries, 6);
    }

    #[test]
    fn audit_catches_drift_and_broken_invariants() {
        let entries = [MovementKind::Credit.deltas(10)];
        let drifted = Balance {
            purchased: 10,
            available: 9,
            refunded: 1,
            ..Default::default()
        };
        let report = audit_entries("a", drifted, &entries);
        assert!(!report.holds());
        assert!(
            report.problems[0].contains("differs from the ledger"),
            "{:?}",
            report.problems
        );

        let broken = Balance {
            purchased: 10,
            available: 11,
            ..Default::default()
        };
        let report = audit_entries("a", broken, &[]);
        assert!(report
            .problems
            .iter()
            .any(|p| p.starts_with("purchased 10 != available 11")));
        assert!(!broken.is_consistent());

        let negative = Balance {
            purchased: 0,
            available: -1,
            refunded: 1,
            ..Default::default()
        };
        let report = audit_entries("a", negative, &[]);
        assert!(report
            .problems
            .iter()
            .any(|p| p == "available is negative (-1)"));
    }

    #[test]
    fn a_sale_keeps_both_sides_consistent() {
        let mut pool = Balance::default();
        pool.add(&MovementKind::Credit.deltas(10));
        pool.add(&MovementKind::Sell.deltas(4));
        let mut customer = Balance::default();
        customer.add(&MovementKind::Receive.deltas(4));
        customer.add(&MovementKind::Reserve.deltas(1));
        customer.add(&MovementKind::Spend.deltas(1));
        assert!(pool.is_consistent(), "{pool:?}");
        assert!(customer.is_consistent(), "{customer:?}");
        assert_eq!((pool.available, pool.sold), (6, 4));
        assert_eq!((customer.purchased, customer.available), (4, 3));
        assert_eq!(MovementKind::Sell.source(), Some("available"));
        assert_eq!(MovementKind::Receive.source(), None);
    }

    #[test]
    fn a_correction_is_a_movement_with_a_reason_and_an_operator() {
        let up = Correction::new(
            &account(),
            5,
            "TICKET-42",
            "  paid order never credited ",
            "dewi",
        )
        .unwrap();
        assert_eq!(up.movement.kind, MovementKind::Grant);
        assert_eq!(up.movement.quantity, 5);
        assert_eq!(up.movement.ledger_sk(), "grant#TICKET-42");
        assert_eq!(up.reason, "paid order never credited");
        let down = Correction::new(&account(), -3, "t.7", "credited twice by hand", "ops").unwrap();
        assert_eq!(down.movement.ledger_sk(), "withdraw#T.7");
        assert_eq!(down.movement.kind, MovementKind::Withdraw);
        assert_eq!(down.movement.quantity, 3);
        assert_eq!(MovementKind::Withdraw.source(), Some("available"));
        let mut balance = Balance::default();
        balance.add(&MovementKind::Credit.deltas(4));
        balance.add(&MovementKind::Grant.deltas(5));
        balance.add(&MovementKind::Withdraw.deltas(3));
        assert!(balance.is_consistent(), "{balance:?}");
        assert_eq!((balance.purchased, balance.available), (6, 6));
    }

    #[test]
    fn a_correction_refuses_what_an_operator_should_not_type() {
        let bad = [
            (
                0,
                "T-1",
                "a good long reason",
                "ops",
                codes::INVALID_QUANTITY,
            ),
            (
                10_001,
                "T-1",
                "a good long reason",
                "ops",
                codes::INVALID_QUANTITY,
            ),
            (
                -10_001,
                "T-1",
                "a good long reason",
                "ops",
                codes::INVALID_QUANTITY,
            ),
            (1, "", "a good long reason", "ops", codes::BAD_REQUEST),
            (1, "T 1", "a good long reason", "ops", codes::BAD_REQUEST),
            (1, "T#1", "a good long reason", "ops", codes::BAD_REQUEST),
            (1, "T-1", "too short", "ops", codes::BAD_REQUEST),
            (
                1,
                "T-1",
                "a reason\nwith a line break",
                "ops",
                codes::BAD_REQUEST,
            ),
            (1, "T-1", "a good long reason", " ", codes::BAD_REQUEST),
        ];
        for (delta, ticket, reason, operator, code) in bad {
            let refused = Correction::new(&account(), delta, ticket, reason, operator).unwrap_err();
            assert_eq!(
                refused.code(),
                code,
                "{delta} {ticket:?} {reason:?} {operator:?}"
            );
        }
        assert!(
            Correction::new(&account(), 10_000, &"x".repeat(64), &"r".repeat(500), "o").is_ok()
        );
        assert!(
            Correction::new(&account(), 1, &"x".repeat(65), "a good long reason", "o").is_err()
        );
    }
}
