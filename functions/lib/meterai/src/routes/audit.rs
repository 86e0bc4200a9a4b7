//! Subscribed to the table's stream, filtered to balance items and batched
//! up to a minute: every account whose balance changed is audited
//! (purchased = available + reserved + spent + refunded + sold, nothing
//! negative, the balance equal to the sum of its ledger) within about a
//! minute of the change. A broken account is logged with its problems and
//! counted in `audit_failures`, which the operators' alarm watches.

use std::time::Duration;

use meterai_app::quota::AuditLimits;

use crate::App;

/// The function: the common settings only.
pub const FUNCTION: crate::lambda::Scheduled = crate::lambda::Scheduled {
    needs: crate::config::Needs::NONE,
    handle,
};

/// Three still reads a quarter second apart before an account is called
/// broken; a pool's ledger past 20,000 entries is not summed (its counters
/// are checked). With eight in flight, a batch of 200 busy accounts ends in
/// well under the function's 120 s.
const LIMITS: AuditLimits = AuditLimits {
    attempts: 3,
    pause: Duration::from_millis(250),
    max_entries: 20_000,
};

/// One batch of stream records. An error (the table did not answer) fails
/// the batch, which the stream gives again.
pub fn handle(app: &'static App, event: serde_json::Value) -> crate::lambda::Run {
    Box::pin(async move {
        let accounts = crate::quota::changed_accounts(&event);
        let run = meterai_app::quota::audit_accounts(&app.quota(), &accounts, LIMITS).await?;
        let data = vec![
            crate::metrics::count("accounts_audited", run.audited as u64),
            crate::metrics::count("audit_failures", run.broken.len() as u64),
            crate::metrics::count("audits_busy", run.busy as u64),
        ];
        if let Err(e) = crate::metrics::put(&app.clients, data).await {
            tracing::warn!(error = %e, "audit metrics not put");
        }
        Ok(serde_json::json!({
            "accounts": accounts.len(),
            "audited": run.audited,
            "balance_only": run.balance_only,
            "busy": run.busy,
            "broken": run.broken.iter().map(|r| r.account.as_str()).collect::<Vec<_>>(),
        }))
    })
}
