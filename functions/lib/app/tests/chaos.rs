//! A chaos run of the stamping side on the in-memory ports: 5,000 jobs of 40
//! accounts, accepted and worked while the queue refuses sends, deliveries
//! are duplicated, the worker dies at every step (before it starts, after it
//! stored the file and before it recorded it, after it recorded it and
//! before the message was acknowledged), the signing key is throttled,
//! messages are lost between the accept and the queue, uploads are replaced
//! after their accept, messages reach the dead-letter queue, and accepts are
//! retried with the same key. Then: every job final, every account's audit
//! exact with nothing reserved, every serial bound to exactly one stored
//! file or void, and the counts. Deterministic (fixed seed).

mod common;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

use meterai_app::stamping::{self, Actor, DeadMessage, StampPorts, StampRequest};
use meterai_app::Outcome;
use meterai_core::jobs::Placement;
use meterai_core::{AccountId, JobStatus};
use meterai_memory::{
    ManualClock, MemoryDocuments, MemoryJobs, MemoryOutbox, MemoryQueue, SerialState, Store,
};
use meterai_pdf::signing::{Chain, LocalSigner, Signer, SigningError};
use meterai_pdf::stamp::pdf::sample_pdf;

const JOBS: usize = 5_000;
const ACCOUNTS: usize = 40;
/// Deliveries of one message before it goes to the dead-letter queue.
const MAX_RECEIVES: u32 = 3;

/// A signing key that is throttled on some calls, as KMS is under load.
struct Throttled {
    inner: LocalSigner,
    calls: AtomicU64,
    every: u64,
}

impl Signer for Throttled {
    fn chain(&self) -> &Chain {
        self.inner.chain()
    }
    async fn sign(&self, signed_attributes: &[u8]) -> Result<Vec<u8>, SigningError> {
        if self
            .calls
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(self.every)
        {
            return Err(SigningError::Unavailable("ThrottlingException".into()));
        }
        self.inner.sign(signed_attributes).await
    }
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[derive(Debug, Default)]
struct Counts {
    accepted: usize,
    refused_by_queue: usize,
    retried_accepts: usize,
    lost_messages: usize,
    swapped: usize,
    duplicated: usize,
    died_before_start: usize,
    died_after_store: usize,
    died_before_ack: usize,
    throttled: usize,
    dead_lettered: usize,
    resent_by_schedule: usize,
    done: usize,
    failed: usize,
}

#[tokio::test]
async fn five_thousand_jobs_through_every_failure_lose_nothing() {
    let store = Store::new();
    let jobs: MemoryJobs = store.jobs();
    let queue = MemoryQueue::default();
    let documents = MemoryDocuments::default();
    let outbox = MemoryOutbox::default();
    let clock = ManualClock::at(1_795_400_000_000);
    let settings = common::settings();
    let signer = Throttled {
        inner: common::signer(),
        calls: AtomicU64::new(1),
        every: 9,
    };
    let ports = StampPorts {
        jobs: &jobs,
        queue: &queue,
        documents: &documents,
        outbox: &outbox,
        clock: &clock,
    };
    let mut rng = Rng(0xc4a0_5eed);
    let mut counts = Counts::default();
    let pdf = sample_pdf(1, [0, 0, 595, 842], None);

    // 40 accounts with 110 to 150 stamps each: some run out (refused, not lost).
    let accounts: Vec<AccountId> = (0..ACCOUNTS)
        .map(|i| AccountId::parse(&format!("user-{i}")).unwrap())
        .collect();
    for account in &accounts {
        common::credit(&store, account, 110 + rng.below(41) as i64).await;
    }

    let mut worker = Worker {
        ports: &ports,
        settings: &settings,
        signer: &signer,
        store: &store,
        deliveries: VecDeque::new(),
        receives: HashMap::new(),
    };
    let mut accepted_ids = HashSet::new();

    for n in 0..JOBS {
        let account = &accounts[rng.below(ACCOUNTS as u64) as usize];
        let (request, key) = upload(&documents, account, &pdf);
        let seed = format!("{account}|stamps|key-{n}");
        let refuse = rng.below(20) == 0;
        queue.set_unavailable(refuse);
        let mut answer =
            stamping::accept(&ports, &settings, &Actor::portal(account), &request, &seed).await;
        queue.set_unavailable(false);
        if refuse {
            assert!(answer.is_err(), "the queue refused; so must the accept");
            counts.refused_by_queue += 1;
        }
        // The client retries with the same key: after a refusal, and at
        // times after a success whose answer it never got.
        if answer.is_err() || rng.below(25) == 0 {
            counts.retried_accepts += 1;
            answer =
                stamping::accept(&ports, &settings, &Actor::portal(account), &request, &seed).await;
        }
        let Ok(accepted) = answer else { continue };
        counts.accepted += 1;
        // Some uploads are replaced after the accept (the job must fail and
        // return its stamp, never stamp the new file).
        if rng.below(50) == 0 {
            counts.swapped += 1;
            documents.put(&key, b"%PDF-1.7 not the accepted file".to_vec());
        }
        accepted_ids.insert(accepted.job_id.clone());
        // Move what the queue holds to the worker's deliveries; at times the
        // message is lost on the way (the accept's send never happened).
        while let Some(id) = queue.receive() {
            if rng.below(50) == 0 {
                counts.lost_messages += 1;
                continue;
            }
            worker.deliveries.push_back(id);
        }
        // The worker keeps up with about one message per accept.
        for _ in 0..1 + rng.below(2) {
            worker.work_one(&mut rng, &mut counts).await;
        }
    }

    // Drain: the worker, and the schedule for the messages that were lost.
    for round in 0.. {
        loop {
            while let Some(id) = queue.receive() {
                worker.deliveries.push_back(id);
            }
            if worker.deliveries.is_empty() {
                break;
            }
            worker.work_one(&mut rng, &mut counts).await;
        }
        clock.advance(meterai_core::jobs::RESEND_AFTER_MS + 1);
        let resent = stamping::resend_unfinished(&ports, 10_000)
            .await
            .unwrap()
            .resent;
        counts.resent_by_schedule += resent;
        if resent == 0 {
            break;
        }
        assert!(round < 10, "the schedule keeps finding unfinished jobs");
    }

    // Every accepted job is final, each one once.
    for id in &accepted_ids {
        let job = meterai_app::ports::Jobs::load(&jobs, id)
            .await
            .unwrap()
            .unwrap();
        match job.status {
            JobStatus::Done => counts.done += 1,
            JobStatus::Failed => counts.failed += 1,
            other => panic!("job {id} ended {other:?}"),
        }
    }
    // Every account adds up, with nothing reserved.
    for account in &accounts {
        let report = store.audit(account).await;
        assert!(report.problems.is_empty(), "{account}: {report:?}");
        assert_eq!(store.balance(account).await.reserved, 0, "{account}");
    }
    // Every bound serial names one done job and the file it stored.
    let mut bound = 0;
    for entry in store.serials().await {
        let job = meterai_app::ports::Jobs::load(&jobs, &entry.job_id)
            .await
            .unwrap()
            .unwrap();
        match entry.state {
            SerialState::Bound => {
                bound += 1;
                assert_eq!(job.status, JobStatus::Done);
                let stored = documents.get(job.stamped_key.as_deref().unwrap()).unwrap();
                let sha = meterai_core::ids::sha256_hex(&stored);
                assert_eq!(entry.sha256.as_deref(), Some(sha.as_str()));
                assert_eq!(job.sha256.as_deref(), Some(sha.as_str()));
            }
            SerialState::Void => assert_eq!(job.status, JobStatus::Failed),
            SerialState::Reserved => panic!("serial of job {} still reserved", entry.job_id),
        }
    }
    assert_eq!(bound, counts.done, "one bound serial per done job");
    println!("chaos: {counts:#?}");
    assert!(counts.accepted > 4_000, "{counts:?}");
    assert!(counts.done > 3_500, "{counts:?}");
    for (what, n) in [
        ("refused by the queue", counts.refused_by_queue),
        ("lost", counts.lost_messages),
        ("duplicated", counts.duplicated),
        ("died before start", counts.died_before_start),
        ("died after store", counts.died_after_store),
        ("died before ack", counts.died_before_ack),
        ("throttled", counts.throttled),
        ("resent", counts.resent_by_schedule),
        ("swapped", counts.swapped),
        ("dead-lettered", counts.dead_lettered),
        ("failed", counts.failed),
    ] {
        assert!(n > 0, "no {what}: the run did not exercise it");
    }
}

/// Uploads `pdf` as `account` and returns the stamp request for it and the
/// upload's key.
fn upload(documents: &MemoryDocuments, account: &AccountId, pdf: &[u8]) -> (StampRequest, String) {
    let document_id = format!("doc_{}", meterai_core::ids::nonce());
    let key = meterai_app::ports::Documents::upload_key(documents, account, &document_id);
    documents.put(&key, pdf.to_vec());
    let request = StampRequest {
        document_id,
        placement: Placement {
            page: 1,
            x: 400.0,
            y: 40.0,
            width: 100.0,
            height: 100.0,
        },
        reason: None,
        client_reference: None,
        customer_id: None,
    };
    (request, key)
}

/// The worker's side: the deliveries SQS would make, and how often each
/// message was received.
struct Worker<'a> {
    ports: &'a StampPorts<'a>,
    settings: &'a stamping::StampSettings,
    signer: &'a Throttled,
    store: &'a Store,
    deliveries: VecDeque<String>,
    receives: HashMap<String, u32>,
}

impl Worker<'_> {
    /// Takes one delivery, with whatever goes wrong this time.
    async fn work_one(&mut self, rng: &mut Rng, counts: &mut Counts) {
        let (ports, settings, signer, store) = (self.ports, self.settings, self.signer, self.store);
        let deliveries = &mut self.deliveries;
        let receives = &mut self.receives;
        let Some(id) = deliveries.pop_front() else {
            return;
        };
        let received = receives.entry(id.clone()).or_default();
        *received += 1;
        if *received > MAX_RECEIVES {
            // To the DLQ: its reconciler fails the job and returns the stamp.
            counts.dead_lettered += 1;
            let dead = DeadMessage {
                message_id: &format!("m-{id}-{received}"),
                job: Ok(&id),
                body: "{}",
                receive_count: i64::from(*received),
            };
            stamping::reconcile_dead_letter(ports, &dead).await.unwrap();
            return;
        }
        // SQS delivers at least once: sometimes twice.
        if rng.below(15) == 0 {
            counts.duplicated += 1;
            deliveries.push_back(id.clone());
        }
        match rng.below(30) {
            // Died before it started: the message comes back.
            0 => {
                counts.died_before_start += 1;
                deliveries.push_back(id);
                return;
            }
            // Dies after storing the file, before recording it.
            1 => {
                counts.died_after_store += 1;
                store.crash_next_completes(1).await;
            }
            _ => {}
        }
        let before = signer.calls.load(Ordering::Relaxed);
        let outcome = stamping::work(ports, settings, signer, &id).await;
        let throttled =
            (before..signer.calls.load(Ordering::Relaxed)).any(|c| c.is_multiple_of(signer.every));
        if throttled {
            counts.throttled += 1;
        }
        store.crash_next_completes(0).await;
        match outcome {
            Outcome::Done | Outcome::Duplicate => {
                // Recorded, then died before the message was deleted.
                if rng.below(30) == 0 {
                    counts.died_before_ack += 1;
                    deliveries.push_back(id);
                }
            }
            Outcome::Retry(_) => deliveries.push_back(id),
            Outcome::Poison(reason) => panic!("job {id} poison: {reason}"),
        }
    }
}

/// The money side under the same kind of run: 90 orders of 30 accounts, of
/// which 80 are paid; each paid order's notification arrives up to four
/// times, out of order, or never (the schedule then asks the gateway);
/// refunds of random sizes and stamp accepts race the credits. Then every
/// paid order is credited exactly once (purchased is the sum of the paid
/// orders), no unpaid one is, and every account's audit is exact with
/// nothing reserved once the jobs are worked.
#[tokio::test]
async fn replayed_and_lost_notifications_racing_refunds_and_stamps_credit_once() {
    use meterai_app::orders;
    use meterai_app::payments::{self, PaymentPorts, ReconcileLimits};
    use meterai_core::orders::{OrderRules, OrderStatus};
    use meterai_core::payments::Midtrans;
    use meterai_memory::{MemoryGateway, MemoryPaymentLog};

    const MINUTE: i64 = 60_000;
    let store = Store::new();
    let order_store = store.orders();
    let jobs: MemoryJobs = store.jobs();
    let (queue, documents, outbox) = (
        MemoryQueue::default(),
        MemoryDocuments::default(),
        MemoryOutbox::default(),
    );
    let (log, gateway) = (MemoryPaymentLog::default(), MemoryGateway::default());
    let clock = ManualClock::at(1_795_400_000_000);
    let rules = OrderRules::default();
    let midtrans = Midtrans::new("SB-Mid-server-chaos");
    let pay = PaymentPorts {
        orders: &order_store,
        log: &log,
        outbox: &outbox,
        clock: &clock,
        gateway: &gateway,
    };
    let stamp_ports = StampPorts {
        jobs: &jobs,
        queue: &queue,
        documents: &documents,
        outbox: &outbox,
        clock: &clock,
    };
    let settings = common::settings();
    let signer = Throttled {
        inner: common::signer(),
        calls: AtomicU64::new(1),
        every: u64::MAX,
    };
    let mut rng = Rng(0x0d0e_5eed);
    let accounts: Vec<AccountId> = (0..30)
        .map(|i| AccountId::parse(&format!("buyer-{i}")).unwrap())
        .collect();

    // 90 orders; 80 paid at the gateway.
    let mut paid: HashMap<AccountId, i64> = HashMap::new();
    let mut events = Vec::new();
    let mut orders_made = Vec::new();
    for i in 0..90 {
        let account = accounts[i % accounts.len()].clone();
        let quantity = 1 + rng.below(8) as i64;
        let order = orders::create(&order_store, &gateway, &clock, &rules, &account, quantity)
            .await
            .unwrap();
        if i % 9 != 0 {
            gateway.set(&order.order_id, "settlement", order.total);
            *paid.entry(account.clone()).or_default() += quantity;
            // 0 to 4 notifications (0: lost; the schedule must find it).
            let note = midtrans.notification(&order.order_id, "settlement", order.total, "tx");
            for _ in 0..rng.below(5) {
                events.push(serde_json::to_vec(&note).unwrap());
            }
        }
        orders_made.push((account, order));
    }
    // Deliver the notifications out of order, racing refunds and accepts.
    for k in (1..events.len()).rev() {
        events.swap(k, rng.below(k as u64 + 1) as usize);
    }
    let pdf = sample_pdf(1, [0, 0, 595, 842], None);
    let (mut refunds, mut accepts) = (0, 0);
    for (n, event) in events.iter().enumerate() {
        payments::handle_notification(&pay, &midtrans, event)
            .await
            .unwrap();
        let (account, order) = &orders_made[rng.below(orders_made.len() as u64) as usize];
        match rng.below(3) {
            0 => {
                let asked = (rng.below(3) > 0).then(|| 1 + rng.below(3) as i64);
                let refunded = orders::refund(
                    &order_store,
                    &outbox,
                    &clock,
                    &rules,
                    account,
                    &order.order_id,
                    asked,
                )
                .await;
                refunds += usize::from(refunded.is_ok());
            }
            _ => {
                let (request, _) = upload(&documents, account, &pdf);
                let seed = format!("{account}|money|{n}");
                let accepted = stamping::accept(
                    &stamp_ports,
                    &settings,
                    &Actor::portal(account),
                    &request,
                    &seed,
                )
                .await;
                accepts += usize::from(accepted.is_ok());
            }
        }
    }
    // The schedule: the orders whose notification never came are asked about.
    clock.advance(10 * MINUTE);
    let limits = ReconcileLimits {
        grace_ms: 5 * MINUTE,
        batch: 1_000,
        concurrency: 4,
        budget_ms: 45_000,
    };
    payments::reconcile(&pay, limits).await.unwrap();
    // The worker finishes every job.
    while let Some(id) = queue.receive() {
        let outcome = stamping::work(&stamp_ports, &settings, &signer, &id).await;
        assert!(
            matches!(outcome, Outcome::Done | Outcome::Duplicate),
            "{outcome:?}"
        );
    }

    for (account, order) in &orders_made {
        let now = meterai_app::ports::Orders::load(&order_store, &order.order_id)
            .await
            .unwrap()
            .unwrap();
        let expected_paid = gateway_paid(&gateway, &order.order_id);
        assert_eq!(
            now.status == OrderStatus::Paid,
            expected_paid,
            "{account} {now:?}"
        );
    }
    for account in &accounts {
        let balance = store.balance(account).await;
        assert_eq!(
            balance.purchased,
            paid.get(account).copied().unwrap_or(0),
            "{account}: credited once"
        );
        assert_eq!(balance.reserved, 0, "{account}");
        let report = store.audit(account).await;
        assert!(report.problems.is_empty(), "{account}: {report:?}");
    }
    println!(
        "money chaos: {} notifications, {refunds} refunds, {accepts} stamps",
        events.len()
    );
    assert!(refunds > 0 && accepts > 0 && events.len() > 80);
}

/// Whether the in-memory gateway says the order was paid.
fn gateway_paid(gateway: &meterai_memory::MemoryGateway, order_id: &str) -> bool {
    gateway
        .status_of(order_id)
        .is_some_and(|s| s.transaction_status.as_deref() == Some("settlement"))
}
