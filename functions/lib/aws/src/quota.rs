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
//! the ledger. The rules themselves are in `meterai_core::quota`.

use std::time::Duration;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use tracing::Instrument;

use crate::error::{codes, Error, Result};
use crate::keys;
use crate::store::{get_n, get_s, n, s, Item};
use crate::AwsClients;
use meterai_app::ports::{CorrectionRejected, Corrections, QuotaReads};
pub use meterai_core::quota::{
    audit_entries, AuditReport, Balance, Correction, LedgerEntry, Movement, MovementKind, Page,
};
use meterai_core::AccountId;

/// The conditional `ADD` on the balance item.
pub fn balance_update(movement: &Movement, table: &str, now_ms: i64) -> Update {
    let deltas = movement.kind.deltas(movement.quantity);
    let mut adds = Vec::new();
    let mut builder = Update::builder()
        .table_name(table)
        .set_key(Some(keys::balance(movement.account.as_str()).map()));
    for (field, delta) in Balance::FIELDS.iter().zip(deltas.values()) {
        if delta != 0 {
            adds.push(format!("{field} :d_{field}"));
            builder = builder.expression_attribute_values(format!(":d_{field}"), n(delta));
        }
    }
    builder = builder
        .update_expression(format!("SET updated_at = :now ADD {}", adds.join(", ")))
        .expression_attribute_values(":now", n(now_ms));
    if let Some(source) = movement.kind.source() {
        builder = builder
            .condition_expression(format!("{source} >= :q"))
            .expression_attribute_values(":q", n(movement.quantity));
    }
    builder.build().expect("table, key and expression are set")
}

/// The immutable ledger entry.
pub fn ledger_put(movement: &Movement, table: &str, now_ms: i64) -> Put {
    let deltas = movement.kind.deltas(movement.quantity);
    let account = movement.account.as_str();
    let mut item = keys::ledger_entry(account, &movement.ledger_sk()).with([
        ("gsi1pk".to_string(), s(keys::ledger_partition(account))),
        (
            "gsi1sk".to_string(),
            s(keys::sort_key(now_ms, &movement.ledger_sk())),
        ),
        ("kind".to_string(), s(movement.kind.as_str())),
        ("quantity".to_string(), n(movement.quantity)),
        ("reference".to_string(), s(&movement.reference)),
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
    let now = meterai_core::time::now_ms();
    let mut items = vec![
        TransactWriteItem::builder()
            .update(balance_update(movement, table, now))
            .build(),
        TransactWriteItem::builder()
            .put(ledger_put(movement, table, now))
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
    let jitter = meterai_core::time::now_ms()
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
    let now = meterai_core::time::now_ms();
    let sell = Movement::new(from, MovementKind::Sell, quantity, reference);
    let receive = Movement::new(to, MovementKind::Receive, quantity, reference);
    // Ledger entries first: a repeated sale is reported as such even when the
    // pool could no longer afford it (the first failed condition is reported).
    let mut items = Vec::new();
    for movement in [&sell, &receive] {
        items.push(
            TransactWriteItem::builder()
                .put(ledger_put(movement, table, now))
                .build(),
        );
    }
    for movement in [&sell, &receive] {
        items.push(
            TransactWriteItem::builder()
                .update(balance_update(movement, table, now))
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
        .set_key(Some(keys::balance(account.as_str()).map()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| Error::table(DisplayErrorContext(e)))?;
    Ok(out.item().map(balance_from_item).unwrap_or_default())
}

/// A balance item's counters (missing ones are 0).
pub fn balance_from_item(item: &Item) -> Balance {
    counters(item, "")
}

/// The six counters stored as `{prefix}{field}` (a ledger entry's are `d_*`).
fn counters(item: &Item, prefix: &str) -> Balance {
    let get = |name: &str| get_n(item, &format!("{prefix}{name}")).unwrap_or(0);
    Balance {
        purchased: get("purchased"),
        available: get("available"),
        reserved: get("reserved"),
        spent: get("spent"),
        refunded: get("refunded"),
        sold: get("sold"),
    }
}

fn ledger_entry(item: &Item) -> Option<LedgerEntry> {
    Some(LedgerEntry {
        movement_id: get_s(item, "sk")?.to_string(),
        kind: MovementKind::parse(get_s(item, "kind")?)?,
        quantity: get_n(item, "quantity")?,
        reference: get_s(item, "reference")?.to_string(),
        created_at: meterai_core::time::rfc3339(get_n(item, "created_at")?),
        balance_change: counters(item, "d_"),
        reason: get_s(item, "reason").map(str::to_string),
        operator: get_s(item, "operator").map(str::to_string),
    })
}

/// The account's ledger, newest first.
pub async fn ledger_page(
    clients: &AwsClients,
    table: &str,
    account: &AccountId,
    limit: i32,
    cursor: Option<&str>,
) -> Result<Page<LedgerEntry>> {
    let pk = keys::ledger_partition(account.as_str());
    let (items, next_cursor) =
        crate::paging::query_gsi1_desc(clients, table, &pk, limit, cursor).await?;
    Ok(Page {
        items: items.iter().filter_map(ledger_entry).collect(),
        next_cursor,
    })
}

/// Audits one account: the balance item against every ledger entry.
pub async fn audit(clients: &AwsClients, table: &str, account: &AccountId) -> Result<AuditReport> {
    let balance = balance(clients, table, account).await?;
    let changes = ledger_changes(clients, table, account, usize::MAX)
        .await?
        .unwrap_or_default();
    Ok(audit_entries(account.as_str(), balance, &changes))
}

/// Every ledger entry's change (strongly consistent), or `None` past `max`.
async fn ledger_changes(
    clients: &AwsClients,
    table: &str,
    account: &AccountId,
    max: usize,
) -> Result<Option<Vec<Balance>>> {
    let mut changes = Vec::new();
    let mut start = None;
    loop {
        let out = clients
            .dynamodb
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(keys::ledger_partition(account.as_str())))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| Error::table(DisplayErrorContext(e)))?;
        for item in out.items() {
            let entry = ledger_entry(item).ok_or_else(|| {
                Error::table(format!("malformed ledger entry {:?}", get_s(item, "sk")))
            })?;
            changes.push(entry.balance_change);
        }
        if changes.len() > max {
            return Ok(None);
        }
        match out.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => break,
        }
    }
    Ok(Some(changes))
}

/// The distinct accounts of a batch of the table's stream records (the
/// audit's event): balance records (`ACCT#{account}` /
/// `BALANCE`), in order; anything else is ignored.
pub fn changed_accounts(event: &serde_json::Value) -> Vec<AccountId> {
    let mut accounts: Vec<AccountId> = Vec::new();
    let records = event["Records"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for record in records {
        let keys = &record["dynamodb"]["Keys"];
        if keys["sk"]["S"] != "BALANCE" {
            continue;
        }
        let Some(id) = keys["pk"]["S"]
            .as_str()
            .and_then(|pk| pk.strip_prefix(keys::ACCOUNT_PREFIX))
            .and_then(|raw| AccountId::parse(raw).ok())
        else {
            continue;
        };
        if !accounts.contains(&id) {
            accounts.push(id);
        }
    }
    accounts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> AccountId {
        AccountId::parse("acct-1").unwrap()
    }

    #[test]
    fn balance_update_is_a_conditional_add() {
        let update = balance_update(
            &Movement::new(&account(), MovementKind::Refund, 2, "ord_1-r1"),
            "t",
            7,
        );
        assert_eq!(
            update.update_expression(),
            "SET updated_at = :now ADD available :d_available, refunded :d_refunded"
        );
        assert_eq!(update.condition_expression(), Some("available >= :q"));
        let values = update.expression_attribute_values().unwrap();
        assert_eq!(values[":d_available"], n(-2));
        assert_eq!(values[":d_refunded"], n(2));
        assert_eq!(values[":q"], n(2));
        let credit = balance_update(
            &Movement::new(&account(), MovementKind::Credit, 5, "ord_1"),
            "t",
            7,
        );
        assert_eq!(credit.condition_expression(), None);
    }

    #[test]
    fn ledger_entry_key_is_deterministic_and_written_once() {
        let m = Movement::new(&account(), MovementKind::Credit, 5, "ord_1");
        let put = ledger_put(&m, "t", 1_700_000_000_000);
        assert_eq!(put.condition_expression(), Some("attribute_not_exists(pk)"));
        assert_eq!(put.item()["sk"], s("credit#ord_1"));
        assert_eq!(put.item()["pk"], s("LEDGER#acct-1"));
        assert_eq!(put.item()["gsi1sk"], s("1700000000000#credit#ord_1"));
        let entry = ledger_entry(put.item()).unwrap();
        assert_eq!(entry.balance_change, MovementKind::Credit.deltas(5));
        assert_eq!(entry.movement_id, "credit#ord_1");
    }

    #[test]
    fn backoff_is_bounded() {
        for attempt in 0..20 {
            let delay = backoff(attempt);
            assert!(delay >= Duration::from_millis(1));
            assert!(delay <= Duration::from_millis(10 << 8) + Duration::from_millis(1));
        }
    }

    #[test]
    fn only_balance_records_name_accounts_once_each() {
        let event = serde_json::json!({"Records": [
            {"dynamodb": {"Keys": {"pk": {"S": "ACCT#user-1"}, "sk": {"S": "BALANCE"}}}},
            {"dynamodb": {"Keys": {"pk": {"S": "LEDGER#user-1"}, "sk": {"S": "credit#ord_1"}}}},
            {"dynamodb": {"Keys": {"pk": {"S": "ACCT#customer:cus_2"}, "sk": {"S": "BALANCE"}}}},
            {"dynamodb": {"Keys": {"pk": {"S": "ACCT#user-1"}, "sk": {"S": "BALANCE"}}}},
            {"dynamodb": {"Keys": {"pk": {"S": "JOB#job_1"}, "sk": {"S": "BALANCE"}}}},
            {"dynamodb": {}},
            "not a record"
        ]});
        let accounts: Vec<String> = changed_accounts(&event)
            .iter()
            .map(|a| a.as_str().to_string())
            .collect();
        assert_eq!(accounts, ["user-1", "customer:cus_2"]);
        assert!(changed_accounts(&serde_json::json!({})).is_empty());
    }
}

/// The operators' corrections and the audit's reads in the table. A
/// correction is one transaction whose ledger
/// entry (first, so a repeated ticket is named as such) carries the reason
/// and the operator, and whose balance update is conditional like any
/// other movement's.
#[derive(Debug, Clone)]
pub struct DynamoQuota {
    pub clients: AwsClients,
    pub table: String,
}

#[async_trait::async_trait]
impl Corrections for DynamoQuota {
    async fn correct(
        &self,
        correction: &Correction,
        now_ms: i64,
    ) -> Result<std::result::Result<(), CorrectionRejected>> {
        let movement = &correction.movement;
        let mut entry = ledger_put(movement, &self.table, now_ms);
        entry
            .item
            .insert("reason".to_string(), s(&correction.reason));
        entry
            .item
            .insert("operator".to_string(), s(&correction.operator));
        let items = vec![
            TransactWriteItem::builder().put(entry).build(),
            TransactWriteItem::builder()
                .update(balance_update(movement, &self.table, now_ms))
                .build(),
        ];
        let span = tracing::info_span!("correction", account = %movement.account, kind = movement.kind.as_str(), ticket = %movement.reference, quantity = movement.quantity);
        let outcome = transact(&self.clients, items).instrument(span).await?;
        Ok(outcome.map_err(|failed| match failed {
            0 => CorrectionRejected::AlreadyApplied,
            _ => CorrectionRejected::Insufficient,
        }))
    }

    async fn audit(&self, account: &AccountId) -> Result<AuditReport> {
        audit(&self.clients, &self.table, account).await
    }
}

#[async_trait::async_trait]
impl QuotaReads for DynamoQuota {
    async fn balance(&self, account: &AccountId) -> Result<Balance> {
        balance(&self.clients, &self.table, account).await
    }

    async fn ledger_changes(
        &self,
        account: &AccountId,
        max: usize,
    ) -> Result<Option<Vec<Balance>>> {
        ledger_changes(&self.clients, &self.table, account, max).await
    }
}
