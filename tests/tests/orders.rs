//! Orders, payment notifications, quota and ledger through the deployed API.
//! Every test ends with the quota audit of the accounts it touched.

use e2e::{assert_audit, notify, payment, unique, Portal, Stack};
use futures::future::join_all;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn buy_notify_and_the_quota_shows_the_stamps() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    let order = user.order(3).await;
    assert_eq!(order["status"], "pending");
    assert_eq!(order["quantity"], 3);
    assert_eq!(order["unit_price"], 10_000);
    assert_eq!(order["total"], 30_000);
    assert_eq!(order["currency"], "IDR");
    assert_eq!(order["payment_reference"], order["order_id"]);
    assert!(order["expires_at"]
        .as_str()
        .is_some_and(|t| t > order["created_at"].as_str().unwrap()));

    let paid = notify(&stack, &payment(&stack, &order, "settlement").await).await;
    assert_eq!(paid.status, 200, "{:?}", paid.body);
    assert_eq!(paid.body["result"], "credited");

    let quota = user.quota().await;
    assert_eq!(
        quota,
        json!({"purchased": 3, "available": 3, "reserved": 0, "spent": 0, "refunded": 0, "sold": 0})
    );
    let fetched = user
        .get(&format!(
            "/v1/orders/{}",
            order["order_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body["status"], "paid");
    assert!(fetched.body["paid_at"].is_string());

    let ledger = user.get("/v1/ledger").await;
    assert_eq!(ledger.status, 200);
    let entries = ledger.body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["kind"], "credit");
    assert_eq!(entries[0]["quantity"], 3);
    assert_eq!(entries[0]["reference"], order["order_id"]);
    assert_audit(&stack, &user).await;
}

#[tokio::test]
async fn twenty_concurrent_duplicate_notifications_credit_once() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    let order = user.order(2).await;
    let note = payment(&stack, &order, "settlement").await;
    let answers = join_all((0..20).map(|_| notify(&stack, &note))).await;
    for a in &answers {
        assert_eq!(a.status, 200, "{:?}", a.body);
    }
    let credited = answers
        .iter()
        .filter(|a| a.body["result"] == "credited")
        .count();
    let duplicates = answers
        .iter()
        .filter(|a| a.body["result"] == "already_credited")
        .count();
    assert_eq!((credited, duplicates), (1, 19));
    // And a capture with fraud_status=accept for the same order changes nothing either.
    let again = notify(&stack, &payment(&stack, &order, "capture").await).await;
    assert_eq!(again.body["result"], "already_credited");
    assert_eq!(user.quota().await["purchased"], 2);
    assert_audit(&stack, &user).await;
}

#[tokio::test]
async fn idempotency_key_returns_the_first_answer_and_refuses_another_body() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    let key = unique("key");
    let first = user
        .post("/v1/orders", &json!({"quantity": 4}), Some(&key))
        .await;
    assert_eq!(first.status, 201);
    assert!(!first.replayed);
    let again = user
        .post("/v1/orders", &json!({"quantity": 4}), Some(&key))
        .await;
    assert_eq!(again.status, 201);
    assert!(again.replayed);
    assert_eq!(again.body["order_id"], first.body["order_id"]);
    let other = user
        .post("/v1/orders", &json!({"quantity": 5}), Some(&key))
        .await;
    assert_eq!(
        (other.status, other.code()),
        (422, "IDEMPOTENCY_KEY_REUSED")
    );
    // The same key of another account is another key.
    let stranger = Portal::new(&stack).await;
    let theirs = stranger
        .post("/v1/orders", &json!({"quantity": 5}), Some(&key))
        .await;
    assert_eq!(theirs.status, 201);
    assert_ne!(theirs.body["order_id"], first.body["order_id"]);
    let listed = user.get("/v1/orders").await;
    assert_eq!(
        listed.body["orders"].as_array().unwrap().len(),
        1,
        "one order, not two"
    );
}

#[tokio::test]
async fn bad_order_requests_are_4xx_with_stable_codes() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    for (body, code) in [
        (json!({"quantity": 0}), "INVALID_QUANTITY"),
        (json!({"quantity": -1}), "INVALID_QUANTITY"),
        (json!({"quantity": 2.5}), "INVALID_QUANTITY"),
        (json!({"quantity": "2"}), "INVALID_QUANTITY"),
        (json!({"quantity": 1_000_001}), "INVALID_QUANTITY"),
        (json!({"quantity": 1, "price": 1}), "BAD_REQUEST"),
    ] {
        let a = user.post("/v1/orders", &body, Some(&unique("k"))).await;
        assert_eq!((a.status, a.code()), (400, code), "{body}");
    }
    let not_json = user
        .send(
            Method::POST,
            "/v1/orders",
            Some(b"{quantity: 1".to_vec()),
            &[("idempotency-key", "k1")],
        )
        .await;
    assert_eq!((not_json.status, not_json.code()), (400, "INVALID_JSON"));
    let huge = format!(r#"{{"quantity":1,"pad":"{}"}}"#, "x".repeat(70 * 1024));
    let too_big = user
        .send(
            Method::POST,
            "/v1/orders",
            Some(huge.into_bytes()),
            &[("idempotency-key", "k2")],
        )
        .await;
    assert_eq!((too_big.status, too_big.code()), (413, "PAYLOAD_TOO_LARGE"));
    let no_key = user.post("/v1/orders", &json!({"quantity": 1}), None).await;
    assert_eq!(
        (no_key.status, no_key.code()),
        (400, "IDEMPOTENCY_KEY_MISSING")
    );
    let long_key = user
        .post(
            "/v1/orders",
            &json!({"quantity": 1}),
            Some(&"k".repeat(256)),
        )
        .await;
    assert_eq!(
        (long_key.status, long_key.code()),
        (400, "IDEMPOTENCY_KEY_INVALID")
    );
    let bad_limit = user.get("/v1/orders?limit=1000").await;
    assert_eq!((bad_limit.status, bad_limit.code()), (400, "INVALID_LIMIT"));
    assert_eq!(user.quota().await["purchased"], 0);
}

#[tokio::test]
async fn another_accounts_order_is_not_found() {
    let stack = Stack::load();
    let owner = Portal::new(&stack).await;
    let order = owner.order(1).await;
    notify(&stack, &payment(&stack, &order, "settlement").await).await;
    let intruder = Portal::new(&stack).await;
    let id = order["order_id"].as_str().unwrap();
    let a = intruder.get(&format!("/v1/orders/{id}")).await;
    assert_eq!((a.status, a.code()), (404, "ORDER_NOT_FOUND"));
    let a = intruder
        .post(&format!("/v1/orders/{id}/refund"), &json!({}), None)
        .await;
    assert_eq!((a.status, a.code()), (404, "ORDER_NOT_FOUND"));
    let a = intruder.get("/v1/orders/ord_does-not-exist").await;
    assert_eq!((a.status, a.code()), (404, "ORDER_NOT_FOUND"));
    assert_eq!(
        owner.quota().await["available"],
        1,
        "the owner's stamps are untouched"
    );
    assert_audit(&stack, &owner).await;
    assert_audit(&stack, &intruder).await;
}

#[tokio::test]
async fn bad_notifications_credit_nothing() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    let order = user.order(2).await;

    let mut forged = payment(&stack, &order, "settlement").await;
    forged["signature_key"] = json!("00".repeat(64));
    let a = notify(&stack, &forged).await;
    assert_eq!((a.status, a.code()), (401, "INVALID_SIGNATURE"));

    let mut cheap = order.clone();
    cheap["total"] = json!(10_000);
    let a = notify(&stack, &payment(&stack, &cheap, "settlement").await).await;
    assert_eq!((a.status, a.code()), (422, "AMOUNT_MISMATCH"));

    let mut unknown = order.clone();
    unknown["order_id"] = json!("ord_01JC0000000000000000000000");
    let a = notify(&stack, &payment(&stack, &unknown, "settlement").await).await;
    assert_eq!((a.status, a.code()), (404, "ORDER_NOT_FOUND"));

    let a = notify(&stack, &payment(&stack, &order, "teleported").await).await;
    assert_eq!((a.status, a.code()), (400, "UNKNOWN_TRANSACTION_STATUS"));

    let a = notify(&stack, &json!("not an object")).await;
    assert_eq!((a.status, a.code()), (400, "INVALID_JSON"));

    let a = notify(&stack, &payment(&stack, &order, "pending").await).await;
    assert_eq!(
        (a.status, a.body["result"].as_str()),
        (200, Some("unchanged"))
    );

    assert_eq!(user.quota().await["purchased"], 0);
    assert_audit(&stack, &user).await;
}

#[tokio::test]
async fn an_expired_order_paid_late_is_still_credited() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    let order = user.order(1).await;
    let id = order["order_id"].as_str().unwrap();
    let closed = notify(&stack, &payment(&stack, &order, "expire").await).await;
    assert_eq!(closed.body["result"], "closed");
    assert_eq!(
        user.get(&format!("/v1/orders/{id}")).await.body["status"],
        "expired"
    );
    let again = notify(&stack, &payment(&stack, &order, "cancel").await).await;
    assert_eq!(
        again.body["result"], "unchanged",
        "only a pending order closes"
    );
    // The money arrived anyway: it must not vanish.
    let paid = notify(&stack, &payment(&stack, &order, "settlement").await).await;
    assert_eq!(paid.body["result"], "credited");
    assert_eq!(
        user.get(&format!("/v1/orders/{id}")).await.body["status"],
        "paid"
    );
    assert_eq!(user.quota().await["available"], 1);
    assert_audit(&stack, &user).await;
}

#[tokio::test]
async fn ledger_and_orders_page_newest_first() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    let mut ids = Vec::new();
    for quantity in 1..=3 {
        let order = user.order(quantity).await;
        notify(&stack, &payment(&stack, &order, "settlement").await).await;
        ids.push(order["order_id"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/v1/ledger?limit=2".to_string(),
            Some(c) => format!("/v1/ledger?limit=2&cursor={c}"),
        };
        let page = user.get(&path).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        for entry in page.body["entries"].as_array().unwrap() {
            seen.push(entry["reference"].as_str().unwrap().to_string());
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(seen.len() <= 3, "pagination does not end");
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    let orders = user.get("/v1/orders").await;
    let listed: Vec<&str> = orders.body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        newest_first.iter().map(String::as_str).collect::<Vec<_>>()
    );

    let garbled = user.get("/v1/ledger?cursor=not-a-cursor").await;
    assert_eq!((garbled.status, garbled.code()), (400, "INVALID_CURSOR"));
    // A cursor from another account's listing does not open this one.
    let first_page = user.get("/v1/ledger?limit=1").await;
    let foreign = first_page.body["next_cursor"].as_str().unwrap();
    let other = Portal::new(&stack).await;
    let a = other.get(&format!("/v1/ledger?cursor={foreign}")).await;
    assert_eq!((a.status, a.code()), (400, "INVALID_CURSOR"));
    assert_audit(&stack, &user).await;
}
