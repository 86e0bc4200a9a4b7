//! Subscribed to the table's stream, filtered to balance items and batched
//! up to a minute: every account whose balance changed is audited
//! (purchased = available + reserved + spent + refunded + sold, nothing
//! negative, the balance equal to the sum of its ledger) within about a
//! minute of the change. A broken account is logged with its problems and
//! counted in `audit_failures`, which the operators' alarm watches.

use std::time::Duration;

use meterai_app::quota::AuditLimits;
use meterai_core::AccountId;

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
        let accounts = changed_accounts(&event);
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

/// The distinct accounts of a batch's balance records (`ACCT#{account}` /
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
            .and_then(|pk| pk.strip_prefix(crate::keys::ACCOUNT_PREFIX))
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
