//! The operators' side against the deployed stack: a quota correction by
//! `meterai-admin` is a ledger movement the account's owner sees, applied
//! once per ticket, and the invariant holds after it. Every answer names
//! its request id, and the function's log lines carry the same id. A
//! balance changed outside the ledger is found by the audit on the table's
//! stream, and its alarm goes to ALARM.

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
    assert_eq!(
        granted["movement"],
        format!("grant#{}", ticket.to_ascii_uppercase()),
        "{granted}"
    );
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

    // The order as the operators see it: paid, whose, and the gateway's word.
    let orders = user.get("/v1/orders").await;
    let order_id = orders.body["orders"][0]["order_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{:?}", orders.body))
        .to_string();
    let order = admin(&["order", "show", "--order", &order_id]);
    assert_eq!(order["order"]["status"], "paid", "{order}");
    assert_eq!(order["account"], user.account.as_str(), "{order}");
    assert!(order["gateway_says"].is_object(), "{order}");

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

#[tokio::test]
async fn a_balance_changed_outside_the_ledger_is_found_and_alarmed() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let stack = Stack::load();
    let dynamodb = stack.dynamodb().await;
    stack.reset_alarm("audit-failures").await;
    let user = Portal::new(&stack).await;
    user.buy(&stack, 2).await;
    // A stamp from nowhere: the counters still add up, the ledger does not.
    let drift = |n: i64| {
        dynamodb
            .update_item()
            .table_name(stack.get("METERAI_TABLE_NAME"))
            .key("pk", AttributeValue::S(format!("ACCT#{}", user.account)))
            .key("sk", AttributeValue::S("BALANCE".into()))
            .update_expression("ADD purchased :n, available :n")
            .expression_attribute_values(":n", AttributeValue::N(n.to_string()))
            .send()
    };
    drift(1).await.expect("balance changed by hand");
    let found = e2e::eventually(
        "the audit's line naming the account",
        std::time::Duration::from_secs(60),
        || async {
            let lines = stack.logged("audit", &user.account).await;
            lines.into_iter().find(|l| l.contains("quota audit failed"))
        },
    )
    .await;
    assert!(found.contains("differs from the ledger"), "{found}");
    let alarmed = stack
        .alarmed("audit-failures", std::time::Duration::from_secs(30))
        .await;
    assert_eq!(alarmed.metric_name(), Some("audit_failures"));
    // Put back as it was, and the alarm with it, for whoever runs next.
    drift(-1).await.expect("balance restored");
    assert_audit(&stack, &user).await;
    stack.reset_alarm("audit-failures").await;
}

#[tokio::test]
async fn the_alarms_and_the_dashboard_are_deployed() {
    let stack = Stack::load();
    let name = stack.get("METERAI_STACK");
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&stack.sdk_config().await);
    let described = cloudwatch
        .describe_alarms()
        .alarm_name_prefix(format!("{name}-"))
        .send()
        .await
        .expect("describe alarms");
    let alarms = described.metric_alarms();
    // (alarm, the metric it watches, whether it also says when it is over)
    for (wanted, metric, gauge) in [
        ("jobs-dead-lettered", "jobs_dead_lettered", false),
        (
            "webhooks-dead-letters",
            "webhooks_dead_letters_waiting",
            true,
        ),
        (
            "mail-dead-letters",
            "ApproximateNumberOfMessagesVisible",
            true,
        ),
        ("jobs-oldest", "ApproximateAgeOfOldestMessage", true),
        ("worker-errors", "Errors", false),
        ("worker-throttles", "Throttles", false),
        ("api-5xx", "5xx", false),
        ("kms-throttles", "kms_throttles", false),
        ("orders-credited-late", "orders_credited_late", false),
        ("audit-failures", "audit_failures", false),
        ("audit-errors", "Errors", false),
        ("audit-lag", "IteratorAge", false),
    ] {
        let alarm = alarms
            .iter()
            .find(|a| a.alarm_name() == Some(&format!("{name}-{wanted}")))
            .unwrap_or_else(|| panic!("no alarm {wanted}"));
        assert_eq!(alarm.metric_name(), Some(metric), "{wanted}");
        // Each tells the one topic; a gauge also when it is over.
        let topic = |actions: &[String]| {
            actions.len() == 1 && actions[0].ends_with(&format!(":{name}-alarms"))
        };
        assert!(topic(alarm.alarm_actions()), "{wanted}: {alarm:?}");
        assert_eq!(topic(alarm.ok_actions()), gauge, "{wanted}: {alarm:?}");
    }
    let dashboard = cloudwatch
        .get_dashboard()
        .dashboard_name(format!("{name}-deadline"))
        .send()
        .await
        .expect("the deadline dashboard");
    let body: serde_json::Value =
        serde_json::from_str(dashboard.dashboard_body().unwrap_or_default()).expect("JSON");
    let titles: Vec<&str> = body["widgets"]
        .as_array()
        .expect("widgets")
        .iter()
        .filter_map(|w| w["properties"]["title"].as_str())
        .collect();
    for wanted in [
        "accepted vs done",
        "Jobs queue",
        "per route",
        "by code",
        "KMS",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(wanted)),
            "{wanted} in {titles:?}"
        );
    }
}
