//! An operator's manual correction of an account's quota (a ledger movement
//! with a reason and a name, applied once per ticket, audited right after),
//! and the audit of accounts whose balance just changed.

use std::time::Duration;

use meterai_core::error::codes;
use meterai_core::quota::{audit_entries, AuditReport, Correction};
use meterai_core::{AccountId, Error, Result};

use crate::ports::{Clock, CorrectionRejected, Corrections, QuotaReads};

/// What a correction came to: the account's audit after it (which must hold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrected {
    pub correction: Correction,
    pub audit: AuditReport,
}

/// Applies the correction. A ticket used before is refused (`CORRECTION_EXISTS`),
/// a withdrawal beyond the available stamps too (`INSUFFICIENT_QUOTA`): reserved
/// or spent stamps are never taken back by hand.
pub async fn correct(
    corrections: &dyn Corrections,
    clock: &dyn Clock,
    correction: Correction,
) -> Result<Corrected> {
    let movement = &correction.movement;
    match corrections.correct(&correction, clock.now_ms()).await? {
        Ok(()) => {}
        Err(CorrectionRejected::AlreadyApplied) => {
            return Err(Error::conflict(
                codes::CORRECTION_EXISTS,
                format!(
                    "a {} correction with ticket {} was applied before; use another ticket",
                    movement.kind.as_str(),
                    movement.reference
                ),
            ))
        }
        Err(CorrectionRejected::Insufficient) => {
            return Err(Error::quota_exhausted(
                codes::INSUFFICIENT_QUOTA,
                format!(
                    "the account has fewer than {} available stamps to withdraw",
                    movement.quantity
                ),
            ))
        }
    }
    tracing::warn!(
        account = %movement.account,
        kind = movement.kind.as_str(),
        quantity = movement.quantity,
        ticket = %movement.reference,
        operator = %correction.operator,
        "quota corrected by hand"
    );
    let audit = corrections.audit(&movement.account).await?;
    Ok(Corrected { correction, audit })
}

/// What the audit of one account came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audited {
    /// The balance is consistent and equals the sum of its ledger.
    Holds,
    /// The balance is consistent; its ledger is too long to sum here.
    BalanceHolds,
    /// Every attempt saw the same balance, and it was wrong every time.
    Broken(AuditReport),
    /// The account kept moving: no attempt saw it still. Its next change
    /// brings it back to the audit.
    Busy,
}

/// How hard one audit tries.
#[derive(Debug, Clone, Copy)]
pub struct AuditLimits {
    /// Attempts, each a balance read, the ledger and the balance again.
    pub attempts: usize,
    /// The pause between attempts.
    pub pause: Duration,
    /// Ledgers longer than this are not summed (the balance is still checked).
    pub max_entries: usize,
}

/// Audits one account that may be moving. The balance and the ledger are
/// separate reads, so a movement between them looks like drift: an attempt
/// counts only when the balance read before and after the ledger is the
/// same, and the account is `Broken` only when every attempt counted and
/// failed. One that holds ends the audit.
pub async fn audit_account(
    reads: &dyn QuotaReads,
    account: &AccountId,
    limits: AuditLimits,
) -> Result<Audited> {
    let mut still_and_wrong = 0;
    let mut report = None;
    for attempt in 0..limits.attempts {
        if attempt > 0 {
            tokio::time::sleep(limits.pause).await;
        }
        let before = reads.balance(account).await?;
        let ledger = reads.ledger_changes(account, limits.max_entries).await?;
        let after = reads.balance(account).await?;
        if before != after {
            continue;
        }
        let audited = match ledger {
            Some(changes) => audit_entries(account.as_str(), before, &changes),
            None if before.is_consistent() => return Ok(Audited::BalanceHolds),
            None => audit_entries(account.as_str(), before, &[before]),
        };
        if audited.holds() {
            return Ok(Audited::Holds);
        }
        still_and_wrong += 1;
        report = Some(audited);
    }
    Ok(match report {
        Some(report) if still_and_wrong == limits.attempts => Audited::Broken(report),
        _ => Audited::Busy,
    })
}

/// What auditing a batch of changed accounts found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditRun {
    pub audited: usize,
    /// Audited by the balance alone (ledger too long to sum).
    pub balance_only: usize,
    pub busy: usize,
    pub broken: Vec<AuditReport>,
}

/// Audits in flight at once: a busy account waits out its pauses without
/// holding the others back.
const AUDITS_IN_FLIGHT: usize = 8;

/// Audits each account once; a broken one is logged with its problems (the
/// account id only: no personal data).
pub async fn audit_accounts(
    reads: &dyn QuotaReads,
    accounts: &[AccountId],
    limits: AuditLimits,
) -> Result<AuditRun> {
    use futures::stream::{FuturesUnordered, StreamExt};
    // A named async fn, not a closure: the future stays Send for the
    // function's boxed handler.
    async fn one<'a>(
        reads: &'a dyn QuotaReads,
        account: &'a AccountId,
        limits: AuditLimits,
    ) -> Result<(&'a AccountId, Audited)> {
        Ok((account, audit_account(reads, account, limits).await?))
    }
    let mut waiting = accounts.iter();
    let mut in_flight = FuturesUnordered::new();
    let mut outcomes = Vec::with_capacity(accounts.len());
    loop {
        while in_flight.len() < AUDITS_IN_FLIGHT {
            let Some(account) = waiting.next() else { break };
            in_flight.push(one(reads, account, limits));
        }
        match in_flight.next().await {
            Some(outcome) => outcomes.push(outcome?),
            None => break,
        }
    }
    let mut run = AuditRun::default();
    for (account, outcome) in outcomes {
        match outcome {
            Audited::Holds => run.audited += 1,
            Audited::BalanceHolds => {
                run.audited += 1;
                run.balance_only += 1;
            }
            Audited::Busy => run.busy += 1,
            Audited::Broken(report) => {
                tracing::error!(account = %account, problems = ?report.problems, "quota audit failed");
                run.audited += 1;
                run.broken.push(report);
            }
        }
    }
    Ok(run)
}
