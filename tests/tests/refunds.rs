//! Refunds of unused stamps through the deployed API, alone and under races.

use e2e::{assert_audit, notify, payment, unique, Portal, Stack};
use futures::future::join_all;
use meterai::quota::{self, Movement, MovementKind};
use serde_json::json;

async fn paid_order(stack: &Stack, user: &Portal, quantity: i64) -> String {
    let order = user.order(quantity).await;
    let paid = notify(stack, &payment(stack, &order, "settlement").await).await;
    assert_eq!(paid.body["result"], "credited");
    order["order_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn twenty_concurrent_refunds_of_one_order_refund_once() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    let id = paid_order(&stack, &user, 5).await;
    let path = format!("/v1/orders/{id}/refund");
    let empty = json!({});
    let answers = join_all((0..20).map(|_| user.post(&path, &empty, None))).await;
    let created: Vec<_> = answers.iter().filter(|a| a.status == 201).collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    let refund = &created[0].body;
    assert_eq!(refund["quantity"], 5);
    assert_eq!(refund["amount"], 50_000);
    assert_eq!(refund["order_id"], id.as_str());
    for a in &answers {
        assert!(a.status == 201 || a.status == 200, "{a:?}");
        assert_eq!(
            a.body["refund_id"], refund["refund_id"],
            "every answer names the one refund"
        );
    }
    let quota = user.quota().await;
    assert_eq!(
        quota,
        json!({"purchased": 5, "available": 0, "reserved": 0, "spent": 0, "refunded": 5, "sold": 0})
    );
    assert_eq!(
        user.get(&format!("/v1/orders/{id}")).await.body["refunded_quantity"],
        5
    );
    assert_audit(&stack, &user).await;
}

#[tokio::test]
async fn refund_requests_that_cannot_be_met_are_4xx() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    let pending = user.order(2).await;
    let a = user
        .post(
            &format!(
                "/v1/orders/{}/refund",
                pending["order_id"].as_str().unwrap()
            ),
            &json!({}),
            None,
        )
        .await;
    assert_eq!((a.status, a.code()), (409, "ORDER_NOT_PAID"));

    let id = paid_order(&stack, &user, 3).await;
    let path = format!("/v1/orders/{id}/refund");
    let a = user.post(&path, &json!({"quantity": 4}), None).await;
    assert_eq!((a.status, a.code()), (409, "REFUND_EXCEEDS_UNUSED"));
    let a = user.post(&path, &json!({"quantity": 0}), None).await;
    assert_eq!((a.status, a.code()), (400, "INVALID_QUANTITY"));
    let partial = user
        .post(&path, &json!({"quantity": 1}), Some(&unique("rk")))
        .await;
    assert_eq!(partial.status, 201, "{:?}", partial.body);
    let a = user.post(&path, &json!({"quantity": 3}), None).await;
    assert_eq!(
        (a.status, a.code()),
        (409, "REFUND_EXCEEDS_UNUSED"),
        "only 2 are left"
    );
    let rest = user.post(&path, &json!({}), None).await;
    assert_eq!(
        (rest.status, rest.body["quantity"].as_i64()),
        (201, Some(2))
    );
    assert_ne!(rest.body["refund_id"], partial.body["refund_id"]);
    let repeat = user.post(&path, &json!({}), None).await;
    assert_eq!(
        (repeat.status, &repeat.body["refund_id"]),
        (200, &rest.body["refund_id"])
    );
    let a = user.post(&path, &json!({"quantity": 1}), None).await;
    assert_eq!((a.status, a.code()), (409, "REFUND_EXCEEDS_UNUSED"));
    assert_eq!(user.quota().await["refunded"], 3);
    assert_audit(&stack, &user).await;
}

/// Stamps reserved for jobs are never refunded, and a refund racing with
/// reservations never drives `available` below zero.
#[tokio::test]
async fn refunds_racing_with_reservations_never_overdraw() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    let id = paid_order(&stack, &user, 10).await;
    let clients = stack.clients().await;
    let table = stack.get("METERAI_TABLE_NAME");
    let account = user.account_id();
    let jobs: Vec<String> = (0..8).map(|i| unique(&format!("job{i}"))).collect();

    let reserve = join_all(jobs.iter().map(|job| {
        let movement = Movement::new(&account, MovementKind::Reserve, 1, job.clone());
        let clients = clients.clone();
        async move {
            quota::apply(&clients, table, &movement, vec![])
                .await
                .expect("reserve runs")
        }
    }));
    let path = format!("/v1/orders/{id}/refund");
    let empty = json!({});
    let refunds = join_all((0..4).map(|_| user.post(&path, &empty, None)));
    let (reserved, refunded) = tokio::join!(reserve, refunds);

    let reserved_ok = reserved.iter().filter(|r| r.is_ok()).count() as i64;
    for a in &refunded {
        assert!(a.status < 500, "{a:?}");
    }
    let quota_now = user.quota().await;
    assert!(quota_now["available"].as_i64().unwrap() >= 0, "{quota_now}");
    assert_eq!(quota_now["reserved"].as_i64().unwrap(), reserved_ok);
    assert_eq!(
        quota_now["reserved"].as_i64().unwrap()
            + quota_now["refunded"].as_i64().unwrap()
            + quota_now["available"].as_i64().unwrap(),
        10
    );
    assert_audit(&stack, &user).await;

    // Leave the account idle: release what the race reserved.
    for (job, outcome) in jobs.iter().zip(&reserved) {
        if outcome.is_ok() {
            let release = Movement::new(&account, MovementKind::Release, 1, job.clone());
            quota::apply(&clients, table, &release, vec![])
                .await
                .unwrap()
                .unwrap();
        }
    }
    assert_eq!(user.quota().await["reserved"], 0);
    assert_audit(&stack, &user).await;
}
