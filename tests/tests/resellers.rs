//! The reseller channel end to end: admin creates a reseller, it buys a pool,
//! its shop sells to a customer by a signed inbound webhook, it stamps for
//! the customer, and its endpoint (a receiver on loopback) gets a signed
//! `stamp.completed`, retried with the same `webhook-id` after failures.

use std::time::Duration;

use base64::Engine;
use e2e::{admin, assert_audit_of, eventually, unique, Portal, Receiver, Stack};
use hmac::{KeyInit, Mac};
use meterai_pdf::stamp::pdf::sample_pdf;
use serde_json::json;

struct Reseller {
    id: String,
    name: String,
    secret: String,
    api: Portal,
}

fn create_reseller(stack: &Stack, webhook_url: Option<&str>) -> Reseller {
    let name = unique("shop");
    let mut args = vec!["reseller", "create", "--name", name.as_str()];
    if let Some(url) = webhook_url {
        args.extend(["--webhook-url", url]);
    }
    let created = admin(&args);
    let id = created["reseller_id"].as_str().unwrap().to_string();
    let key = created["api_key"].as_str().unwrap();
    assert!(key.starts_with("mk_"), "{created}");
    Reseller {
        api: Portal::with_credential(stack, &format!("reseller:{id}"), key),
        id,
        name,
        secret: created["webhook_secret"].as_str().unwrap().to_string(),
    }
}

/// HMAC-SHA256 as the Standard Webhooks spec defines it, written here from
/// the spec rather than taken from the library under test.
fn spec_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    b64.encode(mac.finalize().into_bytes())
}

/// The deliveries of one event type a receiver got, in order.
fn of_type(receiver: &Receiver, kind: &str) -> Vec<e2e::Received> {
    receiver
        .received()
        .into_iter()
        .filter(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.body).is_ok_and(|v| v["type"] == kind)
        })
        .collect()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Sends an inbound event from the reseller's shop.
async fn send_event(
    stack: &Stack,
    webhook_id: &str,
    timestamp: i64,
    signature: &str,
    body: &serde_json::Value,
) -> e2e::Answer {
    let anonymous = Portal::with_credential(stack, "nobody", "none");
    anonymous
        .send(
            reqwest::Method::POST,
            "/v1/resellers/events",
            Some(body.to_string().into_bytes()),
            &[
                ("webhook-id", webhook_id),
                ("webhook-timestamp", &timestamp.to_string()),
                ("webhook-signature", signature),
            ],
        )
        .await
}

fn sale(reseller: &Reseller, customer: &str, quantity: i64, sale_id: &str) -> serde_json::Value {
    json!({"type": "sale.completed", "reseller_id": reseller.id,
           "data": {"customer_id": customer, "quantity": quantity, "sale_id": sale_id}})
}

fn signed(reseller: &Reseller, id: &str, ts: i64, body: &serde_json::Value) -> String {
    let secret = meterai_core::webhooks::Secret::parse(&reseller.secret).unwrap();
    secret.sign(id, ts, body.to_string().as_bytes())
}

async fn customer_quota(reseller: &Reseller, customer: &str) -> serde_json::Value {
    let answer = reseller.api.get(&format!("/v1/customers/{customer}")).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body["quota"].clone()
}

#[tokio::test]
async fn a_reseller_sells_stamps_for_a_customer_and_hears_back_signed() {
    let stack = Stack::load();
    // The receiver fails twice, then accepts.
    let receiver = Receiver::start(vec![500, 503, 204]).await;
    let shop = create_reseller(&stack, Some(&receiver.url));
    shop.api.buy(&stack, 5).await;
    assert_eq!(shop.api.quota().await["available"], 5);

    let created = shop
        .api
        .post("/v1/customers", &json!({"reference": "budi@example"}), None)
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let customer = created.body["customer_id"].as_str().unwrap().to_string();

    // A signed sale moves 3 stamps from the pool to the customer.
    let id = unique("msg");
    let body = sale(&shop, &customer, 3, &unique("sale"));
    let ts = now();
    let applied = send_event(&stack, &id, ts, &signed(&shop, &id, ts, &body), &body).await;
    assert_eq!(applied.status, 200, "{:?}", applied.body);
    assert_eq!(applied.body["status"], "applied");
    // The same delivery again: the first answer, nothing moves twice.
    let again = send_event(&stack, &id, ts, &signed(&shop, &id, ts, &body), &body).await;
    assert_eq!(
        (again.status, again.replayed),
        (200, true),
        "{:?}",
        again.body
    );
    // The same sale under a new webhook-id: recognised as a duplicate.
    let id2 = unique("msg");
    let dup = send_event(&stack, &id2, ts, &signed(&shop, &id2, ts, &body), &body).await;
    assert_eq!(dup.body["status"], "duplicate", "{:?}", dup.body);
    let pool = shop.api.quota().await;
    assert_eq!(
        (pool["available"].as_i64(), pool["sold"].as_i64()),
        (Some(2), Some(3)),
        "{pool}"
    );
    assert_eq!(customer_quota(&shop, &customer).await["available"], 3);

    // Stamp for the customer: the customer's quota pays.
    let original = sample_pdf(1, [0, 0, 595, 842], None);
    let document = shop.api.upload(&original).await;
    let accepted = shop
        .api
        .post(
            "/v1/stamps",
            &json!({"document_id": document, "page": 1, "x": 400, "y": 40, "customer_id": customer}),
            Some(&unique("sk")),
        )
        .await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    let job_id = accepted.body["job_id"].as_str().unwrap().to_string();
    let job = shop.api.wait_job(&job_id).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["customer_id"], customer.as_str());
    let stamped = shop.api.download(&job).await;
    assert!(stamped.starts_with(&original));
    let customer_balance = customer_quota(&shop, &customer).await;
    assert_eq!(
        (
            customer_balance["available"].as_i64(),
            customer_balance["spent"].as_i64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(shop.api.quota().await["spent"], 0, "the pool did not pay");

    // The endpoint hears of it: two failures, then success, one webhook-id.
    let deliveries = eventually(
        "three deliveries of stamp.completed",
        Duration::from_secs(60),
        || async {
            let got = of_type(&receiver, "stamp.completed");
            (got.len() >= 3).then_some(got)
        },
    )
    .await;
    let webhook_id = deliveries[0].headers["webhook-id"].clone();
    assert!(webhook_id.starts_with("msg_"));
    for delivery in &deliveries {
        assert_eq!(
            delivery.headers["webhook-id"], webhook_id,
            "stable across retries"
        );
        let ts = &delivery.headers["webhook-timestamp"];
        let expected = spec_signature(&shop.secret, &webhook_id, ts, &delivery.body);
        let given = delivery.headers["webhook-signature"].clone();
        assert_eq!(
            given,
            format!("v1,{expected}"),
            "signature checks out independently"
        );
        assert!((now() - ts.parse::<i64>().unwrap()).abs() < 300);
    }
    assert_eq!(
        deliveries.iter().map(|d| d.answered).collect::<Vec<_>>()[..3],
        [500, 503, 204]
    );
    let event: serde_json::Value = serde_json::from_slice(&deliveries[2].body).unwrap();
    assert_eq!(event["type"], "stamp.completed");
    assert_eq!(event["data"]["job_id"], job_id.as_str());
    assert_eq!(event["data"]["serial"], job["serial"]);
    assert_eq!(event["data"]["sha256"], job["sha256"]);
    // Accepted once: no further deliveries of this event.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(of_type(&receiver, "stamp.completed").len(), 3);

    // The pool's purchase was announced too, and a refund of what is left.
    let paid = of_type(&receiver, "order.paid");
    let paid: serde_json::Value = serde_json::from_slice(&paid.last().unwrap().body).unwrap();
    assert_eq!(
        (
            paid["data"]["quantity"].as_i64(),
            paid["data"]["status"].as_str()
        ),
        (Some(5), Some("paid"))
    );
    let order_id = paid["data"]["order_id"].as_str().unwrap().to_string();
    let refund = shop
        .api
        .post(&format!("/v1/orders/{order_id}/refund"), &json!({}), None)
        .await;
    assert_eq!(
        (refund.status, refund.body["quantity"].as_i64()),
        (201, Some(2)),
        "{:?}",
        refund.body
    );
    let refunded = eventually("refund.completed", Duration::from_secs(60), || async {
        of_type(&receiver, "refund.completed")
            .into_iter()
            .find(|d| d.answered == 204)
    })
    .await;
    let refunded: serde_json::Value = serde_json::from_slice(&refunded.body).unwrap();
    assert_eq!(refunded["data"]["refund_id"], refund.body["refund_id"]);

    assert_audit_of(&stack, &shop.api.account).await;
    assert_audit_of(&stack, &format!("customer:{customer}")).await;
}

#[tokio::test]
async fn forged_stale_and_foreign_requests_change_nothing() {
    let stack = Stack::load();
    let shop = create_reseller(&stack, None);
    let rival = create_reseller(&stack, None);
    shop.api.buy(&stack, 4).await;
    let customer = shop.api.post("/v1/customers", &json!({}), None).await.body["customer_id"]
        .as_str()
        .unwrap()
        .to_string();
    let body = sale(&shop, &customer, 2, &unique("sale"));
    let ts = now();
    let id = unique("msg");

    // Signed with the rival's secret, or not at all, or changed after signing.
    let forged = send_event(&stack, &id, ts, &signed(&rival, &id, ts, &body), &body).await;
    assert_eq!(
        (forged.status, forged.code()),
        (401, "WEBHOOK_SIGNATURE_INVALID")
    );
    let empty = send_event(&stack, &id, ts, "v1,", &body).await;
    assert_eq!(
        (empty.status, empty.code()),
        (401, "WEBHOOK_SIGNATURE_INVALID")
    );
    let mut changed = body.clone();
    changed["data"]["quantity"] = json!(4);
    let tampered = send_event(&stack, &id, ts, &signed(&shop, &id, ts, &body), &changed).await;
    assert_eq!(tampered.status, 401);
    // Correctly signed but 10 minutes old (a replay), or from the future.
    for skew in [-600, 600] {
        let old = send_event(
            &stack,
            &id,
            ts + skew,
            &signed(&shop, &id, ts + skew, &body),
            &body,
        )
        .await;
        assert_eq!(
            (old.status, old.code()),
            (401, "WEBHOOK_TIMESTAMP_OUT_OF_RANGE"),
            "{skew}"
        );
    }
    // The rival signs a sale to the shop's customer from its own pool: 404.
    let poach = sale(&rival, &customer, 1, &unique("sale"));
    let poached = send_event(&stack, &id, ts, &signed(&rival, &id, ts, &poach), &poach).await;
    assert_eq!(
        (poached.status, poached.code()),
        (404, "CUSTOMER_NOT_FOUND")
    );
    assert_eq!(customer_quota(&shop, &customer).await["purchased"], 0);
    assert_eq!(shop.api.quota().await["available"], 4);

    // The rival cannot see or use the shop's customer or jobs.
    assert_eq!(
        rival
            .api
            .get(&format!("/v1/customers/{customer}"))
            .await
            .status,
        404
    );
    let ok = send_event(&stack, &id, ts, &signed(&shop, &id, ts, &body), &body).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    let document = shop
        .api
        .upload(&sample_pdf(1, [0, 0, 595, 842], None))
        .await;
    let request =
        json!({"document_id": document, "page": 1, "x": 10, "y": 10, "customer_id": customer});
    let by_rival = rival
        .api
        .post("/v1/stamps", &request, Some(&unique("sk")))
        .await;
    assert_eq!(by_rival.status, 404, "{:?}", by_rival.body);
    let accepted = shop
        .api
        .post("/v1/stamps", &request, Some(&unique("sk")))
        .await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    let job_id = accepted.body["job_id"].as_str().unwrap();
    assert_eq!(
        rival.api.get(&format!("/v1/stamps/{job_id}")).await.code(),
        "JOB_NOT_FOUND"
    );
    let portal_user = Portal::new(&stack).await;
    assert_eq!(
        portal_user
            .get(&format!("/v1/stamps/{job_id}"))
            .await
            .status,
        404
    );
    assert_eq!(
        portal_user
            .post("/v1/stamps", &request, Some(&unique("sk")))
            .await
            .code(),
        "CUSTOMER_NOT_FOUND"
    );
    assert_eq!(shop.api.wait_job(job_id).await["status"], "done");

    // A revoked key is refused; a new one works.
    let issued = admin(&["reseller", "issue-key", "--reseller", &shop.id]);
    let fresh = Portal::with_credential(
        &stack,
        &shop.api.account,
        issued["api_key"].as_str().unwrap(),
    );
    assert_eq!(fresh.quota().await["sold"], 2);
    let first_key = {
        let listed = stack
            .dynamodb()
            .await
            .query()
            .table_name(stack.get("METERAI_TABLE_NAME"))
            .key_condition_expression("pk = :pk AND begins_with(sk, :key)")
            .expression_attribute_values(":pk", meterai::store::s(format!("RESELLER#{}", shop.id)))
            .expression_attribute_values(":key", meterai::store::s("KEY#"))
            .send()
            .await
            .unwrap();
        let ids: Vec<String> = listed
            .items()
            .iter()
            .map(|i| i["key_id"].as_s().unwrap().clone())
            .collect();
        ids.into_iter()
            .find(|k| k != issued["key_id"].as_str().unwrap())
            .unwrap()
    };
    let ttl: u64 = stack
        .get("METERAI_AUTHORIZER_CACHE_SECONDS")
        .parse()
        .expect("the authorizer's TTL is a number");
    let revoked = std::time::Instant::now();
    admin(&[
        "reseller",
        "revoke-key",
        "--reseller",
        &shop.id,
        "--key",
        &first_key,
    ]);
    // API Gateway keeps the authorizer's answer for its TTL: the revoked
    // key stops working within it (the documented bound), not later. The
    // bound is on when a request is sent, not on how long it then takes, so
    // each attempt is judged alone (a shed one is sent again, not retried
    // inside the client where its send time would be lost).
    let mut probe = shop.api.clone();
    probe.patient = false;
    loop {
        let sent = revoked.elapsed();
        let answer = probe.get("/v1/quota").await;
        if answer.code() == "INVALID_API_KEY" {
            break;
        }
        if answer.status != 429 {
            assert_eq!(answer.status, 200, "{:?}", answer.body);
            assert!(
                sent <= std::time::Duration::from_secs(ttl + 1),
                "the revoked key still worked {sent:?} after its revocation (TTL {ttl} s)"
            );
        }
        tokio::time::sleep(e2e::jittered(std::time::Duration::from_millis(500))).await;
    }
    assert_eq!(fresh.get("/v1/quota").await.status, 200);

    assert_audit_of(&stack, &shop.api.account).await;
    assert_audit_of(&stack, &format!("customer:{customer}")).await;
    let _ = shop.name;
}

#[tokio::test]
async fn a_gone_endpoint_is_disabled_and_its_events_replay_after_repair() {
    let stack = Stack::load();
    let gone = Receiver::start(vec![410]).await;
    let shop = create_reseller(&stack, Some(&gone.url));
    shop.api.buy(&stack, 1).await;
    let document = shop
        .api
        .upload(&sample_pdf(1, [0, 0, 595, 842], None))
        .await;
    let accepted = shop.api.stamp(&document, 1, 10.0, 10.0).await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    let job_id = accepted.body["job_id"].as_str().unwrap().to_string();
    assert_eq!(shop.api.wait_job(&job_id).await["status"], "done");
    eventually("the 410 answer", Duration::from_secs(60), || async {
        (!gone.received().is_empty()).then_some(())
    })
    .await;

    // A new endpoint, re-enabled by the admin; the parked event is replayed.
    let fixed = Receiver::start(vec![200]).await;
    admin(&[
        "reseller",
        "set-webhook",
        "--reseller",
        &shop.id,
        "--url",
        &fixed.url,
    ]);
    // Both parked events (the order.paid that met the 410, and the
    // stamp.completed queued while the endpoint was disabled) come back.
    // Other tests' parked events may share the dead-letter queue: replay
    // until ours arrive.
    let (paid, completed) = eventually(
        "the parked events to replay",
        Duration::from_secs(90),
        || async {
            admin(&["replay-webhooks"]);
            tokio::time::sleep(Duration::from_secs(1)).await;
            let paid = of_type(&fixed, "order.paid");
            let completed = of_type(&fixed, "stamp.completed");
            (!paid.is_empty() && !completed.is_empty()).then_some((paid, completed))
        },
    )
    .await;
    let event: serde_json::Value = serde_json::from_slice(&completed[0].body).unwrap();
    assert_eq!(event["data"]["job_id"], job_id.as_str());
    // The gone endpoint was called once per event at most (never retried).
    let gone_ids: Vec<String> = gone
        .received()
        .iter()
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    let mut distinct = gone_ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), gone_ids.len(), "{gone_ids:?}");
    // Whichever event met the 410 first (order.paid or stamp.completed: they
    // race), it is delivered again after the repair with the same webhook-id.
    let fixed_ids: Vec<String> = fixed
        .received()
        .iter()
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    assert!(!paid.is_empty());
    assert!(
        gone_ids.iter().all(|id| fixed_ids.contains(id)),
        "the replayed events keep their webhook-ids: {gone_ids:?} vs {fixed_ids:?}"
    );
}

/// Every customer route answers anyone but a reseller with a 4xx and a JSON
/// body, never a 5xx: a portal user, a made-up API key, a garbage bearer
/// token and no credential at all.
#[tokio::test]
async fn the_customer_routes_refuse_every_other_caller_with_a_4xx() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    let forged_key = Portal::with_credential(&stack, "none", "mk_forged_0000000000000000");
    let garbage = Portal::with_credential(&stack, "none", "not.a.token");
    let routes = [
        (
            reqwest::Method::POST,
            "/v1/customers",
            Some(br#"{"reference":"x"}"#.to_vec()),
        ),
        (reqwest::Method::GET, "/v1/customers", None),
        (
            reqwest::Method::GET,
            "/v1/customers/cus_01J00000000000000000000000",
            None,
        ),
    ];
    for (method, path, body) in &routes {
        for (who, caller) in [
            ("portal user", &user),
            ("forged key", &forged_key),
            ("garbage token", &garbage),
        ] {
            let answer = caller
                .send(
                    method.clone(),
                    path,
                    body.clone(),
                    &[("idempotency-key", "k-1")],
                )
                .await;
            assert!(
                (400..500).contains(&answer.status) && answer.body.is_object(),
                "{who} {method} {path}: {} {}",
                answer.status,
                answer.body
            );
        }
        let mut anonymous = stack
            .http()
            .request(method.clone(), format!("{}{path}", stack.api_url()));
        if let Some(body) = body {
            anonymous = anonymous
                .header("content-type", "application/json")
                .body(body.clone());
        }
        let response = anonymous.send().await.expect("API answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        assert!(
            (400..500).contains(&status)
                && serde_json::from_str::<serde_json::Value>(&text).is_ok(),
            "no credential {method} {path}: {status} {text}"
        );
    }
    // The portal user is told the routes are not theirs, with a stable code.
    let answer = user.get("/v1/customers").await;
    assert_eq!(
        (answer.status, answer.code()),
        (404, "FORBIDDEN_FOR_CALLER")
    );
}

/// The webhook secret is never in the table in clear: the reseller's item
/// holds a KMS ciphertext that opens only under that reseller's encryption
/// context. A rotation hands out a new secret; events signed with the old
/// one are refused from then on, and with the new one accepted.
#[tokio::test]
async fn the_webhook_secret_is_stored_sealed_and_rotates() {
    let stack = Stack::load();
    let shop = create_reseller(&stack, None);
    let rival = create_reseller(&stack, None);
    let item = stack
        .dynamodb()
        .await
        .get_item()
        .table_name(stack.get("METERAI_TABLE_NAME"))
        .set_key(Some(meterai::keys::reseller(&shop.id).map()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the reseller's item");
    assert!(!item.contains_key("webhook_secret"), "{:?}", item.keys());
    let sealed = item["webhook_secret_sealed"]
        .as_b()
        .unwrap()
        .as_ref()
        .to_vec();
    let secret_key = base64::engine::general_purpose::STANDARD
        .decode(shop.secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let in_clear = |what: &[u8]| sealed.windows(what.len()).any(|w| w == what);
    assert!(!in_clear(shop.secret.as_bytes()) && !in_clear(&secret_key));
    for value in item.values() {
        if let Ok(text) = value.as_s() {
            assert!(!text.contains(&shop.secret), "a clear secret in {text}");
        }
    }

    // It opens under its own reseller's context, not under another's.
    let kms = stack.clients().await.kms;
    let open = |reseller: String| {
        kms.decrypt()
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(sealed.clone()))
            .encryption_context("purpose", "webhook-secret")
            .encryption_context("reseller", reseller)
            .send()
    };
    let opened = open(shop.id.clone()).await.unwrap();
    assert_eq!(
        opened.plaintext.unwrap().as_ref(),
        shop.secret.as_bytes(),
        "the sealed secret is the one handed out"
    );
    assert!(open(rival.id.clone()).await.is_err());

    // A reseller made before sealing (its secret in clear) keeps working
    // through a deployment, and seal-secrets seals the same value.
    let dynamodb = stack.dynamodb().await;
    dynamodb
        .update_item()
        .table_name(stack.get("METERAI_TABLE_NAME"))
        .set_key(Some(meterai::keys::reseller(&rival.id).map()))
        .update_expression("SET webhook_secret = :clear REMOVE webhook_secret_sealed")
        .expression_attribute_values(
            ":clear",
            aws_sdk_dynamodb::types::AttributeValue::S(rival.secret.clone()),
        )
        .send()
        .await
        .unwrap();
    let rival_customer = rival.api.post("/v1/customers", &json!({}), None).await.body
        ["customer_id"]
        .as_str()
        .unwrap()
        .to_string();
    rival.api.buy(&stack, 2).await;
    let mut sealed_counts = Vec::new();
    for _ in 0..2 {
        let body = sale(&rival, &rival_customer, 1, &unique("sale"));
        let (id, ts) = (unique("msg"), now());
        let sold = send_event(&stack, &id, ts, &signed(&rival, &id, ts, &body), &body).await;
        assert_eq!(sold.status, 200, "{:?}", sold.body);
        let sealed_now = admin(&["reseller", "seal-secrets"]);
        sealed_counts.push(sealed_now["sealed"].as_i64().unwrap());
    }
    assert!(
        sealed_counts[0] >= 1 && sealed_counts[1] == 0,
        "sealed once: {sealed_counts:?}"
    );
    let item = dynamodb
        .get_item()
        .table_name(stack.get("METERAI_TABLE_NAME"))
        .set_key(Some(meterai::keys::reseller(&rival.id).map()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(!item.contains_key("webhook_secret") && item.contains_key("webhook_secret_sealed"));
    assert_eq!(
        customer_quota(&rival, &rival_customer).await["available"],
        2
    );

    // Rotation: the old secret stops working, the new one works.
    let rotated = admin(&[
        "reseller",
        "set-webhook",
        "--reseller",
        &shop.id,
        "--rotate-secret",
    ]);
    let new_secret = rotated["webhook_secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, shop.secret);
    let customer = shop.api.post("/v1/customers", &json!({}), None).await.body["customer_id"]
        .as_str()
        .unwrap()
        .to_string();
    shop.api.buy(&stack, 1).await;
    let body = sale(&shop, &customer, 1, &unique("sale"));
    let (id, ts) = (unique("msg"), now());
    let old = send_event(&stack, &id, ts, &signed(&shop, &id, ts, &body), &body).await;
    assert_eq!((old.status, old.code()), (401, "WEBHOOK_SIGNATURE_INVALID"));
    let renewed = Reseller {
        secret: new_secret,
        id: shop.id.clone(),
        name: shop.name.clone(),
        api: Portal::with_credential(&stack, "unused", "none"),
    };
    let new = send_event(&stack, &id, ts, &signed(&renewed, &id, ts, &body), &body).await;
    assert_eq!(new.status, 200, "{:?}", new.body);
    assert_eq!(customer_quota(&shop, &customer).await["available"], 1);
}
