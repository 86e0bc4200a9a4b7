//! Quota: the per-account balance and its immutable ledger.
//!
//! Every movement (credit, reserve, spend, release, refund) is one DynamoDB
//! transaction: the balance item changes by `ADD` under a condition that the
//! source bucket holds enough, and a ledger entry is put with
//! `attribute_not_exists` under a key derived from the movement's cause, so the
//! same movement can never apply twice. A balance is never read, changed and
//! written back.
//!
//! Invariant, per account, at all times:
//! `purchased = available + reserved + spent + refunded + sold`, where `sold`
//! counts what a reseller's pool passed on to its customers (zero for portal
//! users, so for them `purchased = available + reserved + spent + refunded`);
//! a customer's `purchased` counts what it received. Every movement keeps
//! it by construction ([`MovementKind::deltas`]); [`audit`] checks it against
//! the ledger.

use std::time::Duration;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::auth::AccountId;
use crate::error::{codes, Error, Result};
use crate::store::{self, get_n, get_s, n, s, Item};
use crate::AwsClients;

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
    fn accounted(&self) -> i64 {
        self.available + self.reserved + self.spent + self.refunded + self.sold
    }

    fn values(&self) -> [i64; 6] {
        [
            self.purchased,
            self.available,
            self.reserved,
            self.spent,
            self.refunded,
            self.sold,
        ]
    }

    fn add(&mut self, other: &Balance) {
        self.purchased += other.purchased;
        self.available += other.available;
        self.reserved += other.reserved;
        self.spent += other.spent;
        self.refunded += other.refunded;
        self.sold += other.sold;
    }

    pub(crate) fn from_item(item: &Item) -> Self {
        let get = |name| get_n(item, name).unwrap_or(0);
        Balance {
            purchased: get("purchased"),
            available: get("available"),
            reserved: get("reserved"),
            spent: get("spent"),
            refunded: get("refunded"),
            sold: get("sold"),
        }
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
}

impl MovementKind {
    pub const ALL: [MovementKind; 7] = [
        MovementKind::Credit,
        MovementKind::Reserve,
        MovementKind::Spend,
        MovementKind::Release,
        MovementKind::Refund,
        MovementKind::Sell,
        MovementKind::Receive,
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
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// The change to each counter when `quantity` stamps move.
    pub fn deltas(self, quantity: i64) -> Balance {
        let q = quantity;
        match self {
            MovementKind::Credit | MovementKind::Receive => Balance {
                purchased: q,
                available: q,
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
            MovementKind::Credit | MovementKind::Receive => None,
            MovementKind::Reserve | MovementKind::Refund | MovementKind::Sell => Some("available"),
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

    /// The conditional `ADD` on the balance item.
    pub fn balance_update(&self, table: &str, now_ms: i64) -> Update {
        let deltas = self.kind.deltas(self.quantity);
        let mut adds = Vec::new();
        let mut builder = Update::builder()
            .table_name(table)
            .key("pk", s(store::account_pk(self.account.as_str())))
            .key("sk", s("BALANCE"));
        for (field, delta) in Balance::FIELDS.iter().zip(deltas.values()) {
            if delta != 0 {
                adds.push(format!("{field} :d_{field}"));
                builder = builder.expression_attribute_values(format!(":d_{field}"), n(delta));
            }
        }
        builder = builder
            .update_expression(format!("SET updated_at = :now ADD {}", adds.join(", ")))
            .expression_attribute_values(":now", n(now_ms));
        if let Some(source) = self.kind.source() {
            builder = builder
                .condition_expression(format!("{source} >= :q"))
                .expression_attribute_values(":q", n(self.quantity));
        }
        builder.build().expect("table, key and expression are set")
    }

    /// The immutable ledger entry.
    pub fn ledger_put(&self, table: &str, now_ms: i64) -> Put {
        let deltas = self.kind.deltas(self.quantity);
        let account = self.account.as_str();
        let mut item = Item::from([
            ("pk".to_string(), s(store::ledger_pk(account))),
            ("sk".to_string(), s(self.ledger_sk())),
            ("gsi1pk".to_string(), s(store::ledger_pk(account))),
            (
                "gsi1sk".to_string(),
                s(format!(
                    "{}#{}",
                    store::sortable_ms(now_ms),
                    self.ledger_sk()
                )),
            ),
            ("kind".to_string(), s(self.kind.as_str())),
            ("quantity".to_string(), n(self.quantity)),
            ("reference".to_string(), s(&self.reference)),
            ("created_at".to_string(), n(now_ms)),
        ]);
        for (field, delta) in Balance::FIELDS.iter().zip(deltas.values()) {
            item.insert(format!("d_{field}"), n(delta));
        }
        Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .expect("table and item are set")
    }
}

/// Why a movement did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// The source counter holds fewer stamps than the movement needs.
    Insufficient,
    /// The same movement was applied before (its ledger entry exists).
    AlreadyApplied,
    /// A condition of one of the caller's extra items failed (index into them).
    Condition(usize),
}

const MAX_CONFLICT_RETRIES: u32 = 8;

/// Applies a movement, together with the caller's extra items (an order's
/// status change, a job's state), as one transaction. Transaction conflicts
/// (another transaction on the same items at the same moment) are retried with
/// jittered backoff; condition failures are answered with [`Rejected`].
pub async fn apply(
    clients: &AwsClients,
    table: &str,
    movement: &Movement,
    extra: Vec<TransactWriteItem>,
) -> Result<std::result::Result<(), Rejected>> {
    let now = store::now_ms();
    let mut items = vec![
        TransactWriteItem::builder()
            .update(movement.balance_update(table, now))
            .build(),
        TransactWriteItem::builder()
            .put(movement.ledger_put(table, now))
            .build(),
    ];
    items.extend(extra);
    let span = tracing::info_span!("movement", account = %movement.account, kind = movement.kind.as_str(), reference = %movement.reference, quantity = movement.quantity);
    transact(clients, items)
        .instrument(span)
        .await
        .map(|outcome| {
            outcome.map_err(|failed| match failed {
                0 => Rejected::Insufficient,
                1 => Rejected::AlreadyApplied,
                i => Rejected::Condition(i - 2),
            })
        })
}

/// Runs a transaction, retrying conflicts. `Ok(Err(i))` names the first item
/// whose condition failed.
pub async fn transact(
    clients: &AwsClients,
    items: Vec<TransactWriteItem>,
) -> Result<std::result::Result<(), usize>> {
    let mut attempt = 0;
    loop {
        let result = clients
            .dynamodb
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(Ok(())),
            Err(e) => e,
        };
        let service_error = match error.into_service_error() {
            TransactWriteItemsError::TransactionCanceledException(cancelled) => cancelled,
            other => return Err(Error::table(DisplayErrorContext(other))),
        };
        let reasons = service_error.cancellation_reasons();
        if let Some(index) = reasons
            .iter()
            .position(|r| r.code() == Some("ConditionalCheckFailed"))
        {
            return Ok(Err(index));
        }
        let conflict = reasons.iter().any(|r| {
            matches!(
                r.code(),
                Some("TransactionConflict") | Some("ThrottlingError")
            )
        });
        if !conflict || attempt >= MAX_CONFLICT_RETRIES {
            tracing::warn!(attempt, reasons = ?reasons, "transaction cancelled");
            return Err(if conflict {
                Error::conflict(
                    codes::CONTENTION,
                    "too many concurrent changes to this account; retry",
                )
            } else {
                Error::table(format!("transaction cancelled: {reasons:?}"))
            });
        }
        attempt += 1;
        tokio::time::sleep(backoff(attempt)).await;
    }
}

/// Full-jitter backoff: a random delay up to 10 ms * 2^attempt.
fn backoff(attempt: u32) -> Duration {
    let cap_ms = 10u64 << attempt.min(8);
    let jitter = store::now_ms()
        .unsigned_abs()
        .wrapping_mul(6_364_136_223_846_793_005)
        >> 33;
    Duration::from_millis(jitter % cap_ms + 1)
}

/// Why a transfer did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferRejected {
    /// The source account has fewer available stamps than the transfer moves.
    Insufficient,
    /// A transfer with this reference was applied before.
    AlreadyApplied,
}

/// Moves `quantity` available stamps from a reseller's pool to a customer as
/// one transaction: `sell` on the pool, `receive` on the customer, each with
/// its ledger entry under `reference` (a sale id), so a sale applies once.
pub async fn transfer(
    clients: &AwsClients,
    table: &str,
    from: &AccountId,
    to: &AccountId,
    quantity: i64,
    reference: &str,
) -> Result<std::result::Result<(), TransferRejected>> {
    let now = store::now_ms();
    let sell = Movement::new(from, MovementKind::Sell, quantity, reference);
    let receive = Movement::new(to, MovementKind::Receive, quantity, reference);
    // Ledger entries first: a repeated sale is reported as such even when the
    // pool could no longer afford it (the first failed condition is reported).
    let mut items = Vec::new();
    for movement in [&sell, &receive] {
        items.push(
            TransactWriteItem::builder()
                .put(movement.ledger_put(table, now))
                .build(),
        );
    }
    for movement in [&sell, &receive] {
        items.push(
            TransactWriteItem::builder()
                .update(movement.balance_update(table, now))
                .build(),
        );
    }
    let span = tracing::info_span!("transfer", from = %from, to = %to, reference, quantity);
    transact(clients, items)
        .instrument(span)
        .await
        .map(|outcome| {
            outcome.map_err(|failed| match failed {
                0 | 1 => TransferRejected::AlreadyApplied,
                _ => TransferRejected::Insufficient,
            })
        })
}

/// The account's balance (all zeros for an account that never bought).
pub async fn balance(clients: &AwsClients, table: &str, account: &AccountId) -> Result<Balance> {
    let out = clients
        .dynamodb
        .get_item()
        .table_name(table)
        .key("pk", s(store::account_pk(account.as_str())))
        .key("sk", s("BALANCE"))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| Error::table(DisplayErrorContext(e)))?;
    Ok(out.item().map(Balance::from_item).unwrap_or_default())
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
}

impl LedgerEntry {
    fn from_item(item: &Item) -> Option<Self> {
        let get = |name: &str| get_n(item, &format!("d_{name}")).unwrap_or(0);
        Some(LedgerEntry {
            movement_id: get_s(item, "sk")?.to_string(),
            kind: MovementKind::parse(get_s(item, "kind")?)?,
            quantity: get_n(item, "quantity")?,
            reference: get_s(item, "reference")?.to_string(),
            created_at: store::rfc3339(get_n(item, "created_at")?),
            balance_change: Balance {
                purchased: get("purchased"),
                available: get("available"),
                reserved: get("reserved"),
                spent: get("spent"),
                refunded: get("refunded"),
                sold: get("sold"),
            },
        })
    }
}

/// A page of results and the cursor of the next page.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The account's ledger, newest first.
pub async fn ledger_page(
    clients: &AwsClients,
    table: &str,
    account: &AccountId,
    limit: i32,
    cursor: Option<&str>,
) -> Result<Page<LedgerEntry>> {
    let pk = store::ledger_pk(account.as_str());
    let (items, next_cursor) =
        crate::paging::query_gsi1_desc(clients, table, &pk, limit, cursor).await?;
    Ok(Page {
        items: items.iter().filter_map(LedgerEntry::from_item).collect(),
        next_cursor,
    })
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

/// Audits one account: the balance item against every ledger entry.
pub async fn audit(clients: &AwsClients, table: &str, account: &AccountId) -> Result<AuditReport> {
    let balance = balance(clients, table, account).await?;
    let mut changes = Vec::new();
    let mut start = None;
    loop {
        let out = clients
            .dynamodb
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(store::ledger_pk(account.as_str())))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| Error::table(DisplayErrorContext(e)))?;
        for item in out.items() {
            let entry = LedgerEntry::from_item(item).ok_or_else(|| {
                Error::table(format!("malformed ledger entry {:?}", get_s(item, "sk")))
            })?;
            changes.push(entry.balance_change);
        }
        match out.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => break,
        }
    }
    Ok(audit_entries(account.as_str(), balance, &changes))
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
    fn balance_update_is_a_conditional_add() {
        let update =
            Movement::new(&account(), MovementKind::Refund, 2, "ord_1-r1").balance_update("t", 7);
        assert_eq!(
            update.update_expression(),
            "SET updated_at = :now ADD available :d_available, refunded :d_refunded"
        );
        assert_eq!(update.condition_expression(), Some("available >= :q"));
        let values = update.expression_attribute_values().unwrap();
        assert_eq!(values[":d_available"], n(-2));
        assert_eq!(values[":d_refunded"], n(2));
        assert_eq!(values[":q"], n(2));
        let credit =
            Movement::new(&account(), MovementKind::Credit, 5, "ord_1").balance_update("t", 7);
        assert_eq!(credit.condition_expression(), None);
    }

    #[test]
    fn ledger_entry_key_is_deterministic_and_written_once() {
        let m = Movement::new(&account(), MovementKind::Credit, 5, "ord_1");
        let put = m.ledger_put("t", 1_700_000_000_000);
        assert_eq!(put.condition_expression(), Some("attribute_not_exists(pk)"));
        assert_eq!(put.item()["sk"], s("credit#ord_1"));
        assert_eq!(put.item()["pk"], s("LEDGER#acct-1"));
        assert_eq!(put.item()["gsi1sk"], s("1700000000000#credit#ord_1"));
        let entry = LedgerEntry::from_item(put.item()).unwrap();
        assert_eq!(entry.balance_change, MovementKind::Credit.deltas(5));
        assert_eq!(entry.movement_id, "credit#ord_1");
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
    fn backoff_is_bounded() {
        for attempt in 0..20 {
            let delay = backoff(attempt);
            assert!(delay >= Duration::from_millis(1));
            assert!(delay <= Duration::from_millis(10 << 8) + Duration::from_millis(1));
        }
    }
}
