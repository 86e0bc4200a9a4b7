//! The chaos run against the deployed local stack: money and stamps under
//! every fault the stack can be given from outside, and then the books.
//!
//!     target/release/meterai-chaos [--jobs 300] [--users 10] [--resellers 2] [--customers 3]
//!                                  [--drain-seconds 300] [--out .build/chaos]
//!
//! Portal users and resellers' customers buy and stamp while:
//! - every payment notification is sent three times at once, then an older
//!   `pending` one after it, and one order per buyer gets no notification at
//!   all (its buyer reading the order is what finds it paid);
//! - each buyer refunds a small paid order while its stamp requests run;
//! - resellers' sale events are sent twice at once under one `webhook-id`
//!   and again under another, and their endpoints fail each event's first
//!   delivery;
//! - every stamp request is sent twice at once with one Idempotency-Key;
//! - one job in four carries an injected fault (the local stage's switch):
//!   the worker dying before the store, after it, after the record, the
//!   signing key refusing, the queue refusing the accept's message (the
//!   client's retry sends it);
//! - one job in eight gets a duplicate message on the jobs queue, and
//!   malformed messages are put there too.
//!
//! Then, once every job is final: each account's audit holds with nothing
//! reserved; each paid order is credited once (purchased is what was paid
//! for, sold what the sales said); every job is done; no serial serves two
//! jobs, each is bound to its job, and the stored document (read back and
//! hashed) is the one registered; every `stamp.completed` and `order.paid`
//! event reached its reseller with a valid signature.
//! Writes `report.json` to `--out`, prints it, and exits 1 on any broken
//! rule. Refuses to run against a stack that is not on the emulator.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::{admin, make_users, notify, payment, unique, Portal, Receiver, Stack};
use futures::stream::{self, StreamExt};
use meterai_core::webhooks::Secret;
use meterai_pdf::stamp::pdf::sample_pdf;
use serde_json::json;

/// The faults the local stage can inject, by their `client_reference`.
fn faults() -> Vec<&'static str> {
    meterai::stamping::Fault::ALL
        .iter()
        .map(|f| f.reference())
        .collect()
}

/// Faults whose strike the job's record shows (an attempt lost).
fn costs_an_attempt(fault: &str) -> bool {
    use meterai::stamping::Fault;
    [
        Fault::CrashBeforeStore,
        Fault::CrashAfterStore,
        Fault::SigningUnavailable,
    ]
    .iter()
    .any(|f| f.reference() == fault)
}

struct Options {
    jobs: usize,
    users: usize,
    resellers: usize,
    customers: usize,
    drain_seconds: u64,
    out: String,
}

fn options() -> Options {
    let args = e2e::Args::from_env();
    let num = |name: &str, default: f64, max: f64| args.num(name, default, max).max(1.0) as usize;
    Options {
        jobs: num("--jobs", 300.0, 5000.0),
        users: num("--users", 10.0, 200.0),
        resellers: num("--resellers", 2.0, 20.0),
        customers: num("--customers", 3.0, 50.0),
        drain_seconds: num("--drain-seconds", 300.0, 1800.0) as u64,
        out: args.get("--out").unwrap_or_else(|| ".build/chaos".into()),
    }
}

/// What happened, counted; and what broke.
#[derive(Default)]
struct Book {
    counts: BTreeMap<String, i64>,
    problems: Vec<String>,
}

type Shared = Arc<Mutex<Book>>;

fn count(book: &Shared, what: &str, by: i64) {
    *book
        .lock()
        .unwrap()
        .counts
        .entry(what.to_string())
        .or_default() += by;
}

fn problem(book: &Shared, what: String) {
    eprintln!("chaos: {what}");
    book.lock().unwrap().problems.push(what);
}

/// Someone who pays: a portal user or a reseller's pool.
struct Buyer {
    api: Portal,
    /// The quota account its purchases credit.
    account: String,
    /// Stamps paid for, by order.
    paid: i64,
    /// The small order it refunds while its jobs run.
    refundable: Option<String>,
}

struct Reseller {
    id: String,
    secret: String,
    receiver: Receiver,
    customers: Vec<String>,
}

/// One stamp request to make.
struct Planned {
    api: Portal,
    document_id: String,
    customer_id: Option<String>,
    fault: Option<&'static str>,
    duplicate_message: bool,
}

/// An accepted job.
struct Accepted {
    job_id: String,
    reseller: bool,
    fault: Option<&'static str>,
}

/// Pays for `order` and sends its notification three times at once, then an
/// older `pending` one; or, `lost`, sends none and reads the order until the
/// read finds it paid. Every answer must be a 200.
async fn pay(stack: &Stack, buyer: &Portal, order: &serde_json::Value, lost: bool, book: &Shared) {
    let order_id = order["order_id"].as_str().unwrap_or_default().to_string();
    let settled = payment(stack, order, "settlement").await;
    if lost {
        count(book, "notifications lost", 1);
        let until = Instant::now() + Duration::from_secs(90);
        loop {
            let read = buyer.get(&format!("/v1/orders/{order_id}")).await;
            if read.body["status"] == "paid" {
                count(book, "orders found paid by a read", 1);
                return;
            }
            if Instant::now() > until {
                problem(
                    book,
                    format!("order {order_id} was never found paid: {:?}", read.body),
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
    }
    let sent = futures::future::join_all((0..3).map(|_| notify(stack, &settled))).await;
    let total = order["total"].as_i64().unwrap_or_default();
    let stale = stack
        .midtrans()
        .notification(&order_id, "pending", total, &unique("tx"));
    let stale = notify(stack, &serde_json::to_value(stale).unwrap()).await;
    count(book, "notifications sent", 4);
    for answer in sent.iter().chain([&stale]) {
        if answer.status != 200 {
            problem(
                book,
                format!(
                    "notification for {order_id}: {} {:?}",
                    answer.status, answer.body
                ),
            );
        }
    }
}

/// Orders `quantity` stamps (sending the request again while it is shed).
async fn order(buyer: &Portal, quantity: i64, book: &Shared) -> Option<serde_json::Value> {
    let key = unique("order");
    let body = json!({ "quantity": quantity });
    let created = buyer.post("/v1/orders", &body, Some(&key)).await;
    if created.status != 201 {
        problem(
            book,
            format!("order of {quantity}: {} {:?}", created.status, created.body),
        );
        return None;
    }
    Some(created.body)
}

/// A buyer's purchases, `stamps` in all: a large order paid by replayed
/// notifications, one of 2 whose notification is lost, and one stamp to
/// refund later (while a stamp request also asks for the last stamp).
async fn buy(stack: &Stack, buyer: &mut Buyer, stamps: i64, book: &Shared) {
    let plan = [((stamps - 3).max(1), false), (2, true), (1, false)];
    for (i, (quantity, lost)) in plan.into_iter().enumerate() {
        let Some(created) = order(&buyer.api, quantity, book).await else {
            continue;
        };
        pay(stack, &buyer.api, &created, lost, book).await;
        buyer.paid += quantity;
        if i == 2 {
            buyer.refundable = created["order_id"].as_str().map(str::to_string);
        }
    }
}

/// A signed sale event from a reseller's shop.
async fn send_sale(
    stack: &Stack,
    reseller: &Reseller,
    webhook_id: &str,
    body: &serde_json::Value,
) -> e2e::Answer {
    let secret = Secret::parse(&reseller.secret).expect("a whsec_ secret");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let signature = secret.sign(webhook_id, now, body.to_string().as_bytes());
    Portal::with_credential(stack, "nobody", "none")
        .send(
            reqwest::Method::POST,
            "/v1/resellers/events",
            Some(body.to_string().into_bytes()),
            &[
                ("webhook-id", webhook_id),
                ("webhook-timestamp", &now.to_string()),
                ("webhook-signature", &signature),
            ],
        )
        .await
}

/// Sells `quantity` to `customer`: twice at once under one webhook-id, then
/// again under another id with the same sale id. Applied once.
async fn sell(stack: &Stack, reseller: &Reseller, customer: &str, quantity: i64, book: &Shared) {
    let body = json!({"type": "sale.completed", "reseller_id": reseller.id,
        "data": {"customer_id": customer, "quantity": quantity, "sale_id": unique("sale")}});
    let id = unique("msg");
    let (a, b) = tokio::join!(
        send_sale(stack, reseller, &id, &body),
        send_sale(stack, reseller, &id, &body)
    );
    let c = send_sale(stack, reseller, &unique("msg"), &body).await;
    count(book, "sale events sent", 3);
    for answer in [a, b, c] {
        // A concurrent twin may be told the first is still in progress.
        if answer.status != 200 && answer.status != 409 {
            problem(
                book,
                format!("sale event: {} {:?}", answer.status, answer.body),
            );
        }
    }
}

/// Sends one stamp request twice at once with one key, and again (same key)
/// while it is shed, in progress or refused by the queue. The job id both
/// answers name, and whether the queue refused it once (a 503).
async fn request_stamp(planned: &Planned, book: &Shared) -> Option<(String, bool)> {
    let key = unique("chaos");
    // Sheds are counted and sent again here, not inside the client.
    let mut api = planned.api.clone();
    api.patient = false;
    let mut refused = false;
    let mut body = json!({"document_id": planned.document_id, "page": 1, "x": 300, "y": 300});
    if let Some(customer) = &planned.customer_id {
        body["customer_id"] = json!(customer);
    }
    if let Some(fault) = planned.fault {
        body["client_reference"] = json!(fault);
    }
    let mut ids = HashSet::new();
    // What one answer says: accepted (its job), no stamp left (stop), or
    // not yet (in progress, shed, or the queue refused: send again).
    let mut read = |answer: &e2e::Answer, refused: &mut bool| -> bool {
        match answer.status {
            200 | 202 => {
                let job_id = answer.body["job_id"].as_str().unwrap_or_default();
                ids.insert(job_id.to_string());
            }
            // The refund took the last stamp.
            402 => {
                count(book, "stamp requests refused for quota", 1);
                return false;
            }
            409 | 429 => {}
            503 if answer.code() == "DEPENDENCY_UNAVAILABLE" => *refused = true,
            503 => {}
            _ => problem(
                book,
                format!("stamp request: {} {:?}", answer.status, answer.body),
            ),
        }
        true
    };
    let (first, second) = tokio::join!(
        api.post("/v1/stamps", &body, Some(&key)),
        api.post("/v1/stamps", &body, Some(&key))
    );
    count(book, "stamp requests sent", 2);
    let mut answered = false;
    for answer in [first, second] {
        if !read(&answer, &mut refused) {
            return None;
        }
        answered |= answer.status == 200 || answer.status == 202;
    }
    // A retry with the same key until it is answered (for up to a minute,
    // after the pause the answer asks for, or a growing one).
    let give_up = Instant::now() + Duration::from_secs(60);
    let mut pause = Duration::from_millis(300);
    let mut last = String::new();
    while !answered && Instant::now() < give_up {
        tokio::time::sleep(pause).await;
        let again = api.post("/v1/stamps", &body, Some(&key)).await;
        count(book, "stamp requests sent again", 1);
        last = format!("{} {}", again.status, again.code());
        pause = again
            .retry_after
            .map_or((pause * 2).min(Duration::from_secs(3)), |s| {
                Duration::from_secs(s.min(5))
            });
        if !read(&again, &mut refused) {
            return None;
        }
        answered = again.status == 200 || again.status == 202;
    }
    if refused {
        count(book, "stamp requests answered 503", 1);
    }
    match ids.len() {
        1 => ids.into_iter().next().map(|id| (id, refused)),
        0 => {
            problem(
                book,
                format!("a stamp request was never accepted (last answer {last})"),
            );
            None
        }
        _ => {
            problem(
                book,
                format!("one idempotency key made several jobs: {ids:?}"),
            );
            None
        }
    }
}

/// The job's item, read strongly.
async fn job_item(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    job_id: &str,
) -> Option<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    dynamodb
        .get_item()
        .table_name(table)
        .set_key(Some(meterai::keys::job(job_id).map()))
        .consistent_read(true)
        .send()
        .await
        .ok()
        .and_then(|out| out.item)
}

fn text(item: &HashMap<String, aws_sdk_dynamodb::types::AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let options = options();
    let stack = Stack::load();
    if stack.endpoint().is_none() {
        eprintln!("meterai-chaos runs against the emulator only (faults are injected there)");
        std::process::exit(2);
    }
    let started = Instant::now();
    let book: Shared = Arc::default();
    let table = stack.get("METERAI_TABLE_NAME").to_string();
    let dynamodb = stack.dynamodb().await;
    let sqs = stack.sqs().await;

    // ---- who takes part
    let users = make_users(&stack, options.users).await;
    count(&book, "portal users", users.len() as i64);
    let mut resellers = Vec::new();
    let mut pools = Vec::new();
    for _ in 0..options.resellers {
        // Each event's first delivery fails; its retry is answered.
        let receiver = Receiver::start(vec![500, 200]).await;
        let created = admin(&[
            "reseller",
            "create",
            "--name",
            &unique("chaos-shop"),
            "--webhook-url",
            &receiver.url,
        ]);
        let id = created["reseller_id"].as_str().unwrap().to_string();
        let key = created["api_key"].as_str().unwrap().to_string();
        let account = format!("reseller:{id}");
        pools.push(Buyer {
            api: Portal::with_credential(&stack, &account, &key),
            account,
            paid: 0,
            refundable: None,
        });
        resellers.push(Reseller {
            id,
            secret: created["webhook_secret"].as_str().unwrap().to_string(),
            receiver,
            customers: Vec::new(),
        });
    }
    let mut buyers: Vec<Buyer> = users
        .into_iter()
        .map(|api| Buyer {
            account: api.account.clone(),
            api,
            paid: 0,
            refundable: None,
        })
        .collect();
    let stampers = buyers.len() + options.resellers * options.customers;
    // At least 4 each (the three orders), every one of them used.
    let per_account = options.jobs.div_ceil(stampers).max(4) as i64;

    // ---- money: buy (replayed, stale and lost notifications)
    let per_pool = per_account * options.customers as i64;
    stream::iter(
        buyers
            .iter_mut()
            .map(|b| (b, per_account))
            .chain(pools.iter_mut().map(|b| (b, per_pool))),
    )
    .for_each_concurrent(8, |(buyer, stamps)| {
        let (stack, book) = (&stack, &book);
        async move { buy(stack, buyer, stamps, book).await }
    })
    .await;
    println!("chaos: bought ({:.0} s)", started.elapsed().as_secs_f64());

    // ---- resellers: customers and replayed sales
    for (reseller, pool) in resellers.iter_mut().zip(&pools) {
        for _ in 0..options.customers {
            let made = pool.api.post("/v1/customers", &json!({}), None).await;
            match made.body["customer_id"].as_str() {
                Some(id) if made.status == 201 => reseller.customers.push(id.to_string()),
                _ => problem(&book, format!("customer: {} {:?}", made.status, made.body)),
            }
        }
        for customer in &reseller.customers {
            sell(&stack, reseller, customer, per_account, &book).await;
        }
    }
    println!("chaos: sold ({:.0} s)", started.elapsed().as_secs_f64());

    // ---- the stamp requests
    let pdf = sample_pdf(2, [0, 0, 595, 842], None);
    let mut planned = Vec::new();
    for buyer in &buyers {
        let document_id = buyer.api.upload(&pdf).await;
        for _ in 0..per_account {
            planned.push((
                buyer.api.clone(),
                buyer.account.clone(),
                document_id.clone(),
                None,
            ));
        }
    }
    for (reseller, pool) in resellers.iter().zip(&pools) {
        let document_id = pool.api.upload(&pdf).await;
        for customer in &reseller.customers {
            for _ in 0..per_account {
                planned.push((
                    pool.api.clone(),
                    format!("customer:{customer}"),
                    document_id.clone(),
                    Some(customer.clone()),
                ));
            }
        }
    }
    let faults = faults();
    let planned: Vec<Planned> = planned
        .into_iter()
        .enumerate()
        .map(|(i, (api, _account, document_id, customer_id))| Planned {
            api,
            document_id,
            customer_id,
            fault: (i % 4 == 0).then(|| faults[(i / 4) % faults.len()]),
            duplicate_message: i % 8 == 3,
        })
        .collect();
    for fault in planned.iter().filter_map(|p| p.fault) {
        count(&book, &format!("fault {fault}"), 1);
    }

    // Malformed messages on the jobs queue: they end in its dead-letter
    // queue and change nothing.
    let jobs_queue = stack.get("METERAI_JOBS_QUEUE_URL").to_string();
    for body in [
        "not json",
        r#"{"job_id": 5}"#,
        r#"{"job_id": "job_00000000000000000000000000"}"#,
    ] {
        let sent = sqs
            .send_message()
            .queue_url(&jobs_queue)
            .message_body(body)
            .send()
            .await;
        match sent {
            Ok(_) => count(&book, "malformed messages", 1),
            Err(e) => problem(&book, format!("could not send a malformed message: {e}")),
        }
    }

    // Refunds while the requests run.
    let refunds = buyers.iter().map(|buyer| {
        let book = &book;
        async move {
            let Some(order_id) = &buyer.refundable else {
                return;
            };
            let answer = buyer
                .api
                .post(&format!("/v1/orders/{order_id}/refund"), &json!({}), None)
                .await;
            match answer.status {
                200 | 201 => count(book, "refunds made", 1),
                // Every stamp was already reserved: nothing left to refund.
                409 | 422 => count(book, "refunds refused", 1),
                _ => problem(book, format!("refund: {} {:?}", answer.status, answer.body)),
            }
        }
    });
    let requests = stream::iter(planned.iter())
        .map(|p| {
            let (book, sqs, jobs_queue) = (&book, &sqs, &jobs_queue);
            async move {
                let (job_id, refused) = request_stamp(p, book).await?;
                if p.fault == Some("chaos:queue-refuses") && !refused {
                    problem(book, format!("job {job_id}: the queue never refused it"));
                }
                if p.duplicate_message {
                    let body = json!({ "job_id": job_id }).to_string();
                    match sqs
                        .send_message()
                        .queue_url(jobs_queue)
                        .message_body(body)
                        .send()
                        .await
                    {
                        Ok(_) => count(book, "duplicate job messages", 1),
                        Err(e) => problem(book, format!("duplicate message: {e}")),
                    }
                }
                Some(Accepted {
                    job_id,
                    fault: p.fault,
                    reseller: p.customer_id.is_some(),
                })
            }
        })
        .buffer_unordered(12)
        .filter_map(|a| async move { a })
        .collect::<Vec<_>>();
    let (accepted, _) = tokio::join!(requests, futures::future::join_all(refunds));
    count(&book, "jobs accepted", accepted.len() as i64);
    println!(
        "chaos: {} jobs accepted ({:.0} s)",
        accepted.len(),
        started.elapsed().as_secs_f64()
    );

    // ---- drain: every accepted job final
    let until = Instant::now() + Duration::from_secs(options.drain_seconds);
    let mut open: Vec<&Accepted> = accepted.iter().collect();
    let mut items = HashMap::new();
    while !open.is_empty() && Instant::now() < until {
        let mut still = Vec::new();
        for job in open {
            match job_item(&dynamodb, &table, &job.job_id).await {
                Some(item) if matches!(text(&item, "status").as_str(), "done" | "failed") => {
                    items.insert(job.job_id.clone(), item);
                }
                _ => still.push(job),
            }
        }
        open = still;
        if !open.is_empty() {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    for job in &open {
        problem(
            &book,
            format!("job {} is not final after the drain", job.job_id),
        );
    }
    println!("chaos: drained ({:.0} s)", started.elapsed().as_secs_f64());

    // ---- the books
    let mut serials = HashSet::new();
    let mut stored = Vec::new();
    for job in &accepted {
        let Some(item) = items.get(&job.job_id) else {
            continue;
        };
        let status = text(item, "status");
        if status != "done" {
            count(
                &book,
                &format!("jobs failed {}", text(item, "error_code")),
                1,
            );
            problem(
                &book,
                format!("job {} failed: {}", job.job_id, text(item, "error_message")),
            );
            continue;
        }
        count(&book, "jobs done", 1);
        // A fault in the worker costs the job one attempt.
        let attempts = item
            .get("attempts")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(0);
        // The queue's refusal is seen at the request (its 503); a crash
        // after the record leaves a final job, whose returning message is
        // no attempt: that one is injected but not seen from outside.
        match job.fault {
            Some(fault) if costs_an_attempt(fault) && attempts < 2 => problem(
                &book,
                format!("job {} met no {fault} ({attempts} attempts)", job.job_id),
            ),
            Some(fault) if costs_an_attempt(fault) || fault.ends_with("queue-refuses") => {
                count(&book, &format!("fault seen {fault}"), 1)
            }
            Some(fault) => count(&book, &format!("fault injected, unseen {fault}"), 1),
            None => {}
        }
        let serial = text(item, "serial");
        let stamped = text(item, "stamped_key");
        if !serials.insert(serial.clone()) {
            problem(&book, format!("serial {serial} serves two jobs"));
        }
        stored.push((job.job_id.clone(), stamped, text(item, "sha256")));
        let record = dynamodb
            .get_item()
            .table_name(&table)
            .set_key(Some(meterai::keys::serial(&serial).map()))
            .consistent_read(true)
            .send()
            .await
            .ok()
            .and_then(|out| out.item);
        let bound = record.as_ref().is_some_and(|r| {
            text(r, "status") == "bound"
                && text(r, "job_id") == job.job_id
                && text(r, "sha256") == text(item, "sha256")
        });
        if !bound {
            problem(
                &book,
                format!(
                    "serial {serial} is not bound to job {}'s document",
                    job.job_id
                ),
            );
        }
    }

    // Each stored document is the file its serial is registered for.
    let clients = stack.clients().await;
    let bucket = stack.get("METERAI_BUCKET_NAME").to_string();
    let mismatched: Vec<String> = stream::iter(stored)
        .map(|(job_id, key, registered)| {
            let (s3, bucket) = (&clients.s3, &bucket);
            async move {
                let body = match s3.get_object().bucket(bucket).key(&key).send().await {
                    Ok(object) => object.body.collect().await.ok().map(|b| b.into_bytes()),
                    Err(_) => None,
                };
                match body {
                    Some(bytes) if meterai_core::ids::sha256_hex(&bytes) == registered => None,
                    Some(_) => Some(format!(
                        "job {job_id}'s stored document is not the one registered"
                    )),
                    None => Some(format!("job {job_id}'s stored document cannot be read")),
                }
            }
        })
        .buffer_unordered(16)
        .filter_map(|m| async move { m })
        .collect()
        .await;
    count(
        &book,
        "stored documents read and hashed",
        accepted.len() as i64 - mismatched.len() as i64,
    );
    for m in mismatched {
        problem(&book, m);
    }

    // Each account: the audit holds, nothing reserved, purchases credited once.
    let mut expected: Vec<(String, Option<i64>)> = buyers
        .iter()
        .chain(&pools)
        .map(|b| (b.account.clone(), Some(b.paid)))
        .collect();
    for reseller in &resellers {
        for customer in &reseller.customers {
            expected.push((format!("customer:{customer}"), None));
        }
    }
    for (account, paid) in &expected {
        let id = meterai_core::AccountId::parse(account).expect("an account id");
        let report = match meterai::quota::audit(&clients, &table, &id).await {
            Ok(report) => report,
            Err(e) => {
                problem(&book, format!("audit of {account}: {e}"));
                continue;
            }
        };
        count(&book, "accounts audited", 1);
        if !report.holds() {
            problem(&book, format!("audit of {account} fails: {report:?}"));
        }
        let balance = report.balance;
        if balance.reserved != 0 {
            problem(
                &book,
                format!("{account} still has {} reserved", balance.reserved),
            );
        }
        // Every stamp bought was stamped or refunded: none is left over.
        if balance.available != 0 {
            problem(
                &book,
                format!("{account} has {} stamps left over", balance.available),
            );
        }
        if let Some(paid) = paid {
            if balance.purchased != *paid {
                problem(
                    &book,
                    format!(
                        "{account} paid for {paid} and was credited {}",
                        balance.purchased
                    ),
                );
            }
        } else if balance.purchased != per_account {
            problem(
                &book,
                format!(
                    "{account} was sold {per_account} and received {}",
                    balance.purchased
                ),
            );
        }
    }

    // Every reseller event delivered, signed with its reseller's secret.
    let reseller_jobs = accepted.iter().filter(|j| j.reseller).count();
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let mut delivered = 0;
        let mut by_type: BTreeMap<String, HashSet<String>> = BTreeMap::new();
        let mut bad = Vec::new();
        for reseller in &resellers {
            let secret = Secret::parse(&reseller.secret).unwrap();
            let mut ids = HashSet::new();
            for received in reseller.receiver.received() {
                let headers = meterai_core::webhooks::Headers {
                    id: received.headers.get("webhook-id").map(String::as_str),
                    timestamp: received
                        .headers
                        .get("webhook-timestamp")
                        .map(String::as_str),
                    signature: received
                        .headers
                        .get("webhook-signature")
                        .map(String::as_str),
                };
                // Its signature, judged at its own time (the check runs
                // after the run, past the replay window).
                let sent_at = headers
                    .timestamp
                    .and_then(|t| t.parse::<i64>().ok())
                    .unwrap_or_default();
                if meterai_core::webhooks::verify(&secret, &headers, &received.body, sent_at)
                    .is_err()
                {
                    bad.push(format!(
                        "a delivery to {} is not signed with its secret",
                        reseller.id
                    ));
                }
                let kind = serde_json::from_slice::<serde_json::Value>(&received.body)
                    .ok()
                    .and_then(|v| v["type"].as_str().map(str::to_string))
                    .unwrap_or_default();
                let id = received
                    .headers
                    .get("webhook-id")
                    .cloned()
                    .unwrap_or_default();
                if (200..300).contains(&received.answered) {
                    by_type.entry(kind.clone()).or_default().insert(id);
                }
                let completed = kind == "stamp.completed";
                if completed && (200..300).contains(&received.answered) {
                    ids.insert(
                        received
                            .headers
                            .get("webhook-id")
                            .cloned()
                            .unwrap_or_default(),
                    );
                }
            }
            delivered += ids.len();
        }
        if delivered >= reseller_jobs || Instant::now() > until {
            for (kind, ids) in &by_type {
                count(&book, &format!("events delivered {kind}"), ids.len() as i64);
            }
            // Each pool's three paid orders were told to its reseller.
            let paid_told = by_type.get("order.paid").map_or(0, HashSet::len);
            if paid_told != 3 * resellers.len() {
                problem(
                    &book,
                    format!(
                        "{paid_told} order.paid events delivered for {} pool orders",
                        3 * resellers.len()
                    ),
                );
            }
            if delivered != reseller_jobs {
                problem(&book, format!("{delivered} stamp.completed events delivered for {reseller_jobs} reseller jobs"));
            }
            for b in bad.into_iter().take(5) {
                problem(&book, b);
            }
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    // ---- the report
    let book = book.lock().unwrap();
    let report = json!({
        "jobs_planned": planned.len(),
        "accounts": expected.len(),
        "seconds": started.elapsed().as_secs_f64().round(),
        "counts": book.counts,
        "problems": book.problems,
    });
    std::fs::create_dir_all(&options.out).ok();
    std::fs::write(
        format!("{}/report.json", options.out),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .ok();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    if !book.problems.is_empty() {
        eprintln!("chaos: {} problems", book.problems.len());
        std::process::exit(1);
    }
    println!("chaos: every job final, every audit exact, nothing reserved, every paid order credited once, every serial bound once, every event delivered");
}
