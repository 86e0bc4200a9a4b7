//! Paying through the gateway (the local Midtrans simulator, speaking
//! Midtrans' documented protocol) end to end: the payment page, notifications
//! that are duplicated, reordered, lost, edited or wrong, and a gateway that
//! does not answer. Our side only ever acts on the gateway's status API.

use std::time::Duration;

use e2e::{admin, assert_audit, eventually, notify, payment, simulator, Portal, Stack};
use serde_json::json;

async fn paid_quantity(user: &Portal) -> i64 {
    user.quota().await["purchased"].as_i64().unwrap()
}

fn order_id(order: &serde_json::Value) -> &str {
    order["order_id"].as_str().unwrap()
}

/// Tells the simulator how to send this order's notifications, then pays it
/// as the page's "Bayar" would; what the API answered each notification.
async fn pay_with(
    stack: &Stack,
    order: &serde_json::Value,
    rules: serde_json::Value,
) -> serde_json::Value {
    let mut rules = rules;
    rules["order_id"] = json!(order_id(order));
    simulator(stack, "/_sim/notifications", &rules).await;
    simulator(stack, "/_sim/pay", &json!({"order_id": order_id(order)})).await
}

#[tokio::test]
async fn paying_on_the_gateways_page_credits_the_order_once() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    let order = user.order(3).await;
    let page_url = order["payment"]["redirect_url"]
        .as_str()
        .unwrap_or_else(|| panic!("a new order has a payment page: {order}"))
        .to_string();
    assert!(order["payment"]["token"].is_string(), "{order}");
    let http = reqwest::Client::new();
    let page = http
        .get(&page_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(order_id(&order)) && page.contains("Rp30.000"),
        "{page}"
    );
    for method in [
        "QRIS",
        "BCA Virtual Account",
        "Indomaret",
        "Alfamart",
        "Bayar",
        "Batal",
    ] {
        assert!(page.contains(method), "the page offers {method}");
    }
    // The buyer picks a virtual account and presses "Bayar".
    let done = http
        .post(format!("{page_url}/pay"))
        .form(&[("method", "bca_va")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(done.contains("Pembayaran berhasil"), "{done}");
    assert_eq!(paid_quantity(&user).await, 3);
    let read = user.get(&format!("/v1/orders/{}", order_id(&order))).await;
    assert_eq!(read.body["status"], "paid", "{:?}", read.body);
    assert!(
        read.body.get("payment").is_none(),
        "a paid order shows no payment page"
    );
    assert_audit(&stack, &user).await;
}

#[tokio::test]
async fn twenty_duplicated_and_reordered_notifications_credit_once() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    let order = user.order(2).await;
    // The settlement, then 19 stale "pending" notifications, all at once.
    let paid = pay_with(&stack, &order, json!({"mode": "reorder", "copies": 20})).await;
    let answers: Vec<&str> = paid["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["answer"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(answers.len(), 20, "{paid}");
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.contains("\"credited\""))
            .count(),
        1,
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .all(|a| a.contains("\"credited\"") || a.contains("already_credited")),
        "{answers:?}"
    );
    assert_eq!(paid_quantity(&user).await, 2);
    assert_audit(&stack, &user).await;
}

#[tokio::test]
async fn an_edited_pending_notification_or_a_wrong_amount_credits_nothing() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    let order = user.order(2).await;
    // Signed for "pending" (status_code 201); transaction_status is not
    // covered by the signature, so it can be edited. The gateway says pending.
    let mut edited = payment(&stack, &order, "pending").await;
    edited["transaction_status"] = json!("settlement");
    let a = notify(&stack, &edited).await;
    assert_eq!(
        (a.status, a.body["result"].as_str()),
        (200, Some("unchanged"))
    );
    // The gateway says paid, but less than the order costs, or not in rupiah.
    let mut cheap = order.clone();
    cheap["total"] = json!(10_000);
    payment(&stack, &cheap, "settlement").await;
    let honest = stack
        .midtrans()
        .notification(order_id(&order), "settlement", 20_000, "tx-honest");
    let a = notify(&stack, &serde_json::to_value(&honest).unwrap()).await;
    assert_eq!(
        (a.status, a.code()),
        (422, "AMOUNT_MISMATCH"),
        "{:?}",
        a.body
    );
    simulator(
        &stack,
        "/_sim/status",
        &json!({"order_id": order_id(&order), "gross_amount": "20000.00", "currency": "USD"}),
    )
    .await;
    let a = notify(&stack, &serde_json::to_value(&honest).unwrap()).await;
    assert_eq!(
        (a.status, a.code()),
        (422, "AMOUNT_MISMATCH"),
        "{:?}",
        a.body
    );
    assert_eq!(paid_quantity(&user).await, 0);
    assert_audit(&stack, &user).await;
}

#[tokio::test]
async fn a_gateway_that_does_not_answer_leaves_the_order_pending_until_checked() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    let order = user.order(1).await;
    let id = order_id(&order).to_string();
    simulator(&stack, "/_sim/down", &json!({"order_id": id, "down": true})).await;
    let paid = simulator(&stack, "/_sim/pay", &json!({"order_id": id})).await;
    // The gateway hears 503 and will send again; the user sees no 5xx.
    assert_eq!(paid["notifications"][0]["answer_status"], 503, "{paid}");
    let read = user.get(&format!("/v1/orders/{id}")).await;
    assert_eq!(
        (read.status, read.body["status"].as_str()),
        (200, Some("pending"))
    );
    assert_eq!(paid_quantity(&user).await, 0);
    let during = admin(&["payments", "check", "--order", &id]);
    assert_eq!(during["result"], "DEPENDENCY_UNAVAILABLE", "{during}");
    // The gateway is back: the operator's check credits it, once.
    simulator(
        &stack,
        "/_sim/down",
        &json!({"order_id": id, "down": false}),
    )
    .await;
    let after = admin(&["payments", "check", "--order", &id]);
    assert_eq!(after["result"], "credited", "{after}");
    assert_eq!(
        after["gateway_says"]["transaction_status"], "settlement",
        "{after}"
    );
    let again = admin(&["payments", "check", "--order", &id]);
    assert_eq!(again["result"], "already_credited", "{again}");
    assert_eq!(paid_quantity(&user).await, 1);
    assert_audit(&stack, &user).await;
}

#[tokio::test]
async fn a_lost_notification_is_made_good_by_the_scheduled_check() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    let order = user.order(4).await;
    let paid = pay_with(&stack, &order, json!({"mode": "drop"})).await;
    assert_eq!(paid["notifications"][0]["answer"], "dropped", "{paid}");
    assert_eq!(paid_quantity(&user).await, 0, "nothing told us yet");
    // Checked once it is SETTLE_AFTER_SECONDS old, by the next run of the
    // schedule (every minute; one late tick allowed on a busy machine).
    let settle_after: u64 = stack.get("METERAI_SETTLE_AFTER_SECONDS").parse().unwrap();
    eventually(
        "the scheduled check to credit the paid order",
        Duration::from_secs(settle_after + 2 * 60 + 30),
        || async { (paid_quantity(&user).await == 4).then_some(()) },
    )
    .await;
    assert_audit(&stack, &user).await;
}

#[tokio::test]
async fn a_pending_order_moves_to_the_back_of_the_line_in_the_table() {
    use meterai_app::ports::{Orders, PendingMark};
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    let order = user.order(1).await;
    let id = order_id(&order).to_string();
    let table = meterai::orders::DynamoOrders {
        clients: stack.clients().await,
        table: stack.get("METERAI_TABLE_NAME").to_string(),
    };
    let far = meterai_core::time::now_ms() + 30 * 24 * 3_600_000;
    let marks_of = |marks: Vec<PendingMark>| -> Vec<PendingMark> {
        marks.into_iter().filter(|m| m.order_id == id).collect()
    };
    let listed = marks_of(table.pending(far, 5_000).await.unwrap());
    assert_eq!(listed.len(), 1, "a new order is listed once: {listed:?}");
    let first = listed[0].clone();
    // Looked at: its mark moves an hour on (out of the schedule's way).
    let later = first.since_ms + 3_600_000;
    table.requeue_pending(&first, later).await.unwrap();
    let moved = marks_of(table.pending(far, 5_000).await.unwrap());
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(moved[0].since_ms, later);
    assert!(
        marks_of(table.pending(later, 5_000).await.unwrap()).is_empty(),
        "not listed before its new time"
    );
    // A second run holding the old mark changes nothing, and adds nothing.
    table.requeue_pending(&first, later + 1).await.unwrap();
    table.forget_pending(&first).await.unwrap();
    assert_eq!(marks_of(table.pending(far, 5_000).await.unwrap()), moved);
    table.forget_pending(&moved[0]).await.unwrap();
    assert!(marks_of(table.pending(far, 5_000).await.unwrap()).is_empty());
}

#[tokio::test]
async fn a_buyer_back_from_the_payment_page_sees_the_payment_without_its_notification() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    let order = user.order(2).await;
    let id = order_id(&order).to_string();
    let paid = pay_with(&stack, &order, json!({"mode": "drop"})).await;
    assert_eq!(paid["notifications"][0]["answer"], "dropped", "{paid}");
    // Reading the order asks the gateway (no waiting for the schedule).
    let read = user.get(&format!("/v1/orders/{id}")).await;
    assert_eq!(
        (read.status, read.body["status"].as_str()),
        (200, Some("paid")),
        "{:?}",
        read.body
    );
    assert_eq!(paid_quantity(&user).await, 2);
    assert_audit(&stack, &user).await;
}
