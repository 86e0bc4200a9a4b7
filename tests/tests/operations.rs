//! The operators' side against the deployed stack: a quota correction by
//! `meterai-admin` is a ledger movement the account's owner sees, applied
//! once per ticket, and the invariant holds after it. Every answer names
//! its request id, and the function's log lines carry the same id.

use e2e::{admin, admin_output, assert_audit, unique, Portal, Stack};
use serde_json::json;

#[tokio::test]
async fn a_quota_correction_is_a_ledger_movement_applied_once() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    user.buy(&stack, 2).await;
    let ticket = unique("CS");
    let reason = "paid order credited short by the gateway's outage";
    let correct = |way: &str, n: &str, ticket: &str| {
        admin_output(&[
            "account",
            "correct",
            "--account",
            &user.account,
            way,
            n,
            "--ticket",
            ticket,
            "--reason",
            reason,
            "--operator",
            "e2e operator",
        ])
    };
    let granted = correct("--add", "3", &ticket);
    assert!(
        granted.status.success(),
        "{}",
        String::from_utf8_lossy(&granted.stderr)
    );
    let granted: serde_json::Value = serde_json::from_slice(&granted.stdout).unwrap();
    assert_eq!(granted["audit_holds"], true, "{granted}");
    assert_eq!(granted["movement"], format!("grant#{ticket}"), "{granted}");
    assert_eq!(
        user.quota().await,
        json!({"purchased": 5, "available": 5, "reserved": 0, "spent": 0, "refunded": 0, "sold": 0})
    );

    // The same ticket again: refused, nothing moves.
    let again = correct("--add", "3", &ticket);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("CORRECTION_EXISTS"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    // More than is available cannot be withdrawn.
    let too_many = correct("--withdraw", "6", &unique("CS"));
    assert_eq!(too_many.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&too_many.stderr).contains("INSUFFICIENT_QUOTA"));
    let withdrawn = correct("--withdraw", "1", &unique("CS"));
    assert!(withdrawn.status.success());
    assert_eq!(user.quota().await["available"], 4);

    // The owner sees the movements and their reason, not who made them.
    let ledger = user.get("/v1/ledger").await;
    assert_eq!(ledger.status, 200, "{:?}", ledger.body);
    let entries = ledger.body["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("{:?}", ledger.body))
        .clone();
    let grant = entries
        .iter()
        .find(|e| e["kind"] == "grant")
        .unwrap_or_else(|| panic!("{entries:?}"));
    assert_eq!(grant["quantity"], 3);
    assert_eq!(grant["reason"], reason);
    assert!(grant.get("operator").is_none(), "{grant}");
    assert!(
        entries.iter().any(|e| e["kind"] == "withdraw"),
        "{entries:?}"
    );
    assert_audit(&stack, &user).await;

    // The operators' own look-up names who did it.
    let shown = admin(&["account", "show", "--account", &user.account]);
    assert_eq!(shown["audit_holds"], true, "{shown}");
    assert!(
        shown["latest_ledger_entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "grant" && e["operator"] == "e2e operator"),
        "{shown}"
    );
}

#[tokio::test]
async fn an_answer_names_the_request_id_its_log_lines_carry() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    let asked = user.get("/v1/quota").await;
    assert_eq!(asked.status, 200);
    let id = asked.request_id.clone().expect("x-request-id on a 200");
    let refused = user.get("/v1/stamps/job_not-a-job").await;
    assert!((400..500).contains(&refused.status), "{:?}", refused.body);
    let refused_id = refused.request_id.clone().expect("x-request-id on a 4xx");
    assert_ne!(id, refused_id);
    assert!(
        refused.body["error"]["code"].is_string(),
        "{:?}",
        refused.body
    );
    let lines = e2e::eventually(
        "the quota function's lines with the request id",
        std::time::Duration::from_secs(30),
        || async {
            let lines = stack.logged("quota", &id).await;
            (!lines.is_empty()).then_some(lines)
        },
    )
    .await;
    assert!(
        lines.iter().any(|l| l.contains("request answered")),
        "{lines:?}"
    );
}
