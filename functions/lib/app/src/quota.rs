//! An operator's manual correction of an account's quota: a ledger movement
//! with a reason and a name, applied once per ticket, audited right after.

use meterai_core::error::codes;
use meterai_core::quota::{AuditReport, Correction};
use meterai_core::{Error, Result};

use crate::ports::{Clock, CorrectionRejected, Corrections};

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
