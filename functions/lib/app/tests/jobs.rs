//! Stamping's use cases on the in-memory ports: the job lifecycle (accept,
//! duplicate delivery, a crash between storing and recording, permanent
//! failure, dead letter), the quota they hold, the serials they bind, and
//! who may see a job. The real document is stamped and signed (a local key).

mod common;

use futures::future::join_all;
use meterai_app::ports::Documents;
use meterai_app::stamping::{
    self, Actor, DeadMessage, Fault, StampPorts, StampRequest, StampSettings,
};
use meterai_app::Outcome;
use meterai_core::error::{codes, ErrorKind};
use meterai_core::events::EventType;
use meterai_core::jobs::Placement;
use meterai_core::quota::Balance;
use meterai_core::{AccountId, JobStatus};
use meterai_memory::{
    ManualClock, MemoryDocuments, MemoryJobs, MemoryOutbox, MemoryQueue, SerialState, Store,
};
use meterai_pdf::signing::LocalSigner;
use meterai_pdf::stamp::pdf::sample_pdf;
use sha2::{Digest, Sha256};

const NOW: i64 = 1_795_400_000_000;

struct World {
    store: Store,
    jobs: MemoryJobs,
    queue: MemoryQueue,
    documents: MemoryDocuments,
    outbox: MemoryOutbox,
    clock: ManualClock,
    settings: StampSettings,
    signer: LocalSigner,
}

impl World {
    fn new() -> Self {
        let store = Store::new();
        Self {
            jobs: store.jobs(),
            store,
            queue: MemoryQueue::default(),
            documents: MemoryDocuments::default(),
            outbox: MemoryOutbox::default(),
            clock: ManualClock::at(NOW),
            settings: common::settings(),
            signer: common::signer(),
        }
    }

    fn ports(&self) -> StampPorts<'_> {
        StampPorts {
            jobs: &self.jobs,
            queue: &self.queue,
            documents: &self.documents,
            outbox: &self.outbox,
            clock: &self.clock,
        }
    }

    async fn credit(&self, account: &AccountId, quantity: i64) {
        common::credit(&self.store, account, quantity).await;
    }

    /// Uploads `bytes` as `owner` and returns the stamp request for it.
    fn upload(&self, owner: &AccountId, bytes: Vec<u8>) -> StampRequest {
        let document_id = format!("doc_{}", meterai_core::ids::nonce());
        let key = meterai_app::ports::Documents::upload_key(&self.documents, owner, &document_id);
        self.documents.put(&key, bytes);
        StampRequest {
            document_id,
            placement: Placement {
                page: 1,
                x: 400.0,
                y: 50.0,
                width: 100.0,
                height: 100.0,
            },
            reason: None,
            client_reference: None,
            customer_id: None,
        }
    }

    /// A request made once (a fresh idempotency key).
    async fn accept(
        &self,
        actor: &Actor,
        request: &StampRequest,
    ) -> meterai_core::Result<stamping::Accepted> {
        self.accept_as(actor, request, &meterai_core::ids::nonce())
            .await
    }

    /// A request identified by `seed` (made again with the same seed).
    async fn accept_as(
        &self,
        actor: &Actor,
        request: &StampRequest,
        seed: &str,
    ) -> meterai_core::Result<stamping::Accepted> {
        stamping::accept(&self.ports(), &self.settings, actor, request, seed).await
    }

    /// The worker takes the next message and works on it.
    async fn work_next(&self) -> Outcome {
        let job_id = self.queue.receive().expect("a message is queued");
        self.work(&job_id).await
    }

    async fn work(&self, job_id: &str) -> Outcome {
        stamping::work(&self.ports(), &self.settings, &self.signer, job_id).await
    }

    async fn job(&self, job_id: &str) -> meterai_core::jobs::Job {
        meterai_app::ports::Jobs::load(&self.jobs, job_id)
            .await
            .unwrap()
            .expect("the job exists")
    }

    /// The invariant: the balance is the sum of its ledger, and it adds up.
    async fn assert_audit(&self, account: &AccountId) {
        let report = self.store.audit(account).await;
        assert!(report.problems.is_empty(), "{report:?}");
    }
}

fn portal(name: &str) -> AccountId {
    AccountId::parse(name).unwrap()
}

fn balance(purchased: i64, available: i64, reserved: i64, spent: i64) -> Balance {
    Balance {
        purchased,
        available,
        reserved,
        spent,
        ..Balance::default()
    }
}

#[tokio::test]
async fn an_accepted_job_is_stamped_stored_and_only_then_spent() {
    let w = World::new();
    let user = portal("user-1");
    w.credit(&user, 2).await;
    let original = sample_pdf(1, [0, 0, 595, 842], None);
    let request = w.upload(&user, original.clone());

    let accepted = w.accept(&Actor::portal(&user), &request).await.unwrap();
    assert_eq!(accepted.status, JobStatus::Queued);
    assert_eq!(accepted.queue_position, 0);
    assert_eq!(w.store.balance(&user).await, balance(2, 1, 1, 0));
    let serial = w.job(&accepted.job_id).await.serial;
    assert_eq!(accepted.serial, serial.to_string());
    assert_eq!(
        w.store.serial(&serial).await.unwrap().state,
        SerialState::Reserved
    );
    // While it waits, reading it tells how busy the queue is (itself included).
    let waiting = stamping::get(&w.ports(), &w.settings, &user, &accepted.job_id)
        .await
        .unwrap();
    assert_eq!(waiting.queue_position, Some(1));

    assert_eq!(w.work_next().await, Outcome::Done);
    let job = w.job(&accepted.job_id).await;
    assert_eq!(job.status, JobStatus::Done);
    assert_eq!(job.attempts, 1);
    let stored = w
        .documents
        .get(job.stamped_key.as_deref().unwrap())
        .unwrap();
    assert!(
        stored.starts_with(&original),
        "an incremental update keeps the original"
    );
    let sha = hex::encode(Sha256::digest(&stored));
    assert_eq!(job.sha256.as_deref(), Some(sha.as_str()));
    let bound = w.store.serial(&serial).await.unwrap();
    assert_eq!(
        (bound.state, bound.sha256.as_deref(), bound.job_id.as_str()),
        (SerialState::Bound, Some(sha.as_str()), job.job_id.as_str())
    );
    assert!(meterai_pdf::verify::find_serials(&stored)
        .0
        .contains(&serial));
    assert_eq!(w.store.balance(&user).await, balance(2, 1, 0, 1));
    w.assert_audit(&user).await;

    let view = stamping::get(&w.ports(), &w.settings, &user, &job.job_id)
        .await
        .unwrap();
    assert_eq!(view.status, JobStatus::Done);
    assert_eq!(view.queue_position, None, "only a queued job has one");
    assert!(view.download_url.unwrap().contains(&job.job_id));
}

#[tokio::test]
async fn a_waiting_job_says_when_to_ask_again_from_the_queue_and_the_measured_drain() {
    let w = World::new();
    let user = portal("user-1");
    w.credit(&user, 25).await;
    let original = sample_pdf(1, [0, 0, 595, 842], None);
    let mut jobs = Vec::new();
    for _ in 0..25 {
        let request = w.upload(&user, original.clone());
        jobs.push(
            w.accept(&Actor::portal(&user), &request)
                .await
                .unwrap()
                .job_id,
        );
    }
    let read = |id: &str| {
        let (w, user, id) = (&w, &user, id.to_string());
        async move {
            stamping::get(&w.ports(), &w.settings, user, &id)
                .await
                .unwrap()
        }
    };
    // Nothing has drained yet: a tenth of a second per job ahead.
    let first = read(&jobs[24]).await;
    assert_eq!(
        (first.queue_position, first.poll_after_seconds),
        (Some(25), Some(2))
    );

    // 20 end within one minute; the next minute, 5 wait at 20 a minute:
    // a 15 s wait, read again in 8 s.
    let minute = NOW - NOW.rem_euclid(60_000) + 60_000;
    w.clock.set(minute + 1_000);
    for _ in 0..20 {
        assert_eq!(w.work_next().await, Outcome::Done);
    }
    w.clock.set(minute + 61_000);
    let waiting = read(&jobs[24]).await;
    assert_eq!(
        (waiting.queue_position, waiting.poll_after_seconds),
        (Some(5), Some(8))
    );
    // A finished job has nothing more to wait for.
    let done = read(&jobs[0]).await;
    assert_eq!(
        (done.status, done.poll_after_seconds),
        (JobStatus::Done, None)
    );
    // A minute later with nothing ended (a stalled queue): back to the rough rule.
    w.clock.set(minute + 121_000);
    assert_eq!(read(&jobs[24]).await.poll_after_seconds, Some(1));
}

#[tokio::test]
async fn an_accept_promises_when_the_job_will_be_final_from_the_queue_it_joins() {
    use meterai_core::jobs::{promised_within_ms, PROMISE_FLOOR_MS};
    use meterai_core::time::rfc3339;
    let w = World::new();
    let user = portal("user-1");
    w.credit(&user, 30).await;
    let original = sample_pdf(1, [0, 0, 595, 842], None);
    let accept = |request| {
        let (w, user) = (&w, &user);
        async move { w.accept(&Actor::portal(user), &request).await.unwrap() }
    };
    // An empty queue: the floor.
    let first = accept(w.upload(&user, original.clone())).await;
    assert_eq!(first.done_by, Some(rfc3339(NOW + PROMISE_FLOOR_MS)));
    // 20 more wait; 20 of the 21 end in the next minute: the 22nd joins
    // with 1 ahead at 20 a minute and is promised the floor plus twice 3 s.
    for _ in 0..20 {
        accept(w.upload(&user, original.clone())).await;
    }
    let minute = NOW - NOW.rem_euclid(60_000) + 60_000;
    w.clock.set(minute + 1_000);
    for _ in 0..20 {
        assert_eq!(w.work_next().await, Outcome::Done);
    }
    w.clock.set(minute + 61_000);
    let request = w.upload(&user, original.clone());
    let late = w
        .accept_as(&Actor::portal(&user), &request, "late")
        .await
        .unwrap();
    let promised = minute + 61_000 + promised_within_ms(1, Some(20));
    assert_eq!(late.done_by, Some(rfc3339(promised)));
    assert_eq!(promised - (minute + 61_000), PROMISE_FLOOR_MS + 6_000);
    // The promise is the job's: a read and a repeat of the request show it.
    let view = stamping::get(&w.ports(), &w.settings, &user, &late.job_id)
        .await
        .unwrap();
    assert_eq!(view.done_by, late.done_by);
    w.clock.set(minute + 90_000);
    let repeat = w
        .accept_as(&Actor::portal(&user), &request, "late")
        .await
        .unwrap();
    assert_eq!((repeat.job_id, repeat.done_by), (late.job_id, late.done_by));
}

#[tokio::test]
async fn without_quota_nothing_is_written_or_queued() {
    let w = World::new();
    let user = portal("user-1");
    let request = w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None));
    let err = w.accept(&Actor::portal(&user), &request).await.unwrap_err();
    assert_eq!(err.code(), codes::INSUFFICIENT_QUOTA);
    assert!(w.queue.is_empty());
    assert!(w.store.serials().await.is_empty());
    assert_eq!(w.store.balance(&user).await, Balance::default());
}

#[tokio::test]
async fn a_missing_empty_large_or_foreign_upload_holds_no_stamp() {
    let mut w = World::new();
    w.settings.limits.max_bytes = 10_000;
    let user = portal("user-1");
    w.credit(&user, 1).await;
    let actor = Actor::portal(&user);

    let mut missing = w.upload(&user, Vec::new());
    missing.document_id = format!("doc_{}", meterai_core::ids::nonce());
    let empty = w.upload(&user, Vec::new());
    let text = w.upload(&user, b"hello, not a pdf".to_vec());
    let large = w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None).repeat(20));
    // Another user's upload is not there for this one.
    let theirs = w.upload(&portal("user-2"), sample_pdf(1, [0, 0, 595, 842], None));
    for (request, code) in [
        (&missing, codes::DOCUMENT_NOT_FOUND),
        (&empty, codes::NOT_A_PDF),
        (&text, codes::NOT_A_PDF),
        (&large, codes::DOCUMENT_TOO_LARGE),
        (&theirs, codes::DOCUMENT_NOT_FOUND),
    ] {
        let err = w.accept(&actor, request).await.unwrap_err();
        assert_eq!(err.code(), code, "{request:?}");
    }
    assert!(w.queue.is_empty());
    assert_eq!(w.store.balance(&user).await, balance(1, 1, 0, 0));
}

#[tokio::test]
async fn concurrent_accepts_reserve_no_more_than_is_available() {
    let w = World::new();
    let user = portal("user-1");
    w.credit(&user, 3).await;
    let actor = Actor::portal(&user);
    let requests: Vec<StampRequest> = (0..12)
        .map(|_| w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None)))
        .collect();
    let results = join_all(requests.iter().map(|r| w.accept(&actor, r))).await;
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(accepted, 3);
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| e.code() == codes::INSUFFICIENT_QUOTA));
    assert_eq!(w.queue.len(), 3);
    assert_eq!(w.store.balance(&user).await, balance(3, 0, 3, 0));
    for _ in 0..3 {
        assert_eq!(w.work_next().await, Outcome::Done);
    }
    assert_eq!(w.store.balance(&user).await, balance(3, 0, 0, 3));
    let serials = w.store.serials().await;
    assert_eq!(serials.len(), 3);
    assert!(serials.iter().all(|s| s.state == SerialState::Bound));
    w.assert_audit(&user).await;
}

#[tokio::test]
async fn a_job_the_queue_refused_waits_for_the_retry_or_the_schedule() {
    let w = World::new();
    let user = portal("user-1");
    w.credit(&user, 2).await;
    let actor = Actor::portal(&user);
    // Refused: the client is told to retry; the job is recorded, queued.
    let request = w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None));
    w.queue.set_unavailable(true);
    let err = w.accept_as(&actor, &request, "key-1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(w.store.balance(&user).await, balance(2, 1, 1, 0));
    // A retry while the queue is still down is told the same, and reserves
    // nothing more.
    assert!(w.accept_as(&actor, &request, "key-1").await.is_err());
    assert_eq!(w.store.balance(&user).await, balance(2, 1, 1, 0));
    // Back up: the retry queues that very job.
    w.queue.set_unavailable(false);
    let retried = w.accept_as(&actor, &request, "key-1").await.unwrap();
    assert_eq!(retried.job_id, meterai_core::jobs::job_id_for("key-1"));
    assert_eq!(w.work_next().await, Outcome::Done);
    assert_eq!(w.store.balance(&user).await, balance(2, 1, 0, 1));
    // A client that never retries: the schedule sends it once it is quiet.
    let other = w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None));
    w.queue.set_unavailable(true);
    assert!(w.accept_as(&actor, &other, "key-2").await.is_err());
    w.queue.set_unavailable(false);
    w.clock.advance(meterai_core::jobs::RESEND_AFTER_MS + 1);
    let run = stamping::resend_unfinished(&w.ports(), 10).await.unwrap();
    assert_eq!(run.resent, 1);
    assert_eq!(w.work_next().await, Outcome::Done);
    assert_eq!(w.store.balance(&user).await, balance(2, 0, 0, 2));
    w.assert_audit(&user).await;
}

#[tokio::test]
async fn a_message_delivered_twice_is_recorded_and_spent_once() {
    let w = World::new();
    let user = portal("user-1");
    w.credit(&user, 1).await;
    let request = w.upload(&user, sample_pdf(2, [0, 0, 595, 842], None));
    let accepted = w.accept(&Actor::portal(&user), &request).await.unwrap();

    // Two workers get the same message at once (SQS is at-least-once) ...
    let outcomes = join_all([w.work(&accepted.job_id), w.work(&accepted.job_id)]).await;
    assert_eq!(
        outcomes.iter().filter(|o| **o == Outcome::Done).count(),
        1,
        "{outcomes:?}"
    );
    assert!(outcomes
        .iter()
        .all(|o| matches!(o, Outcome::Done | Outcome::Duplicate)));
    // ... and it comes once more, later.
    assert_eq!(w.work(&accepted.job_id).await, Outcome::Duplicate);

    let job = w.job(&accepted.job_id).await;
    assert_eq!(job.status, JobStatus::Done);
    let stored = w
        .documents
        .get(job.stamped_key.as_deref().unwrap())
        .unwrap();
    let bound = w.store.serial(&job.serial).await.unwrap();
    assert_eq!(
        bound.sha256.as_deref(),
        Some(hex::encode(Sha256::digest(&stored)).as_str()),
        "the serial names the file that is stored"
    );
    assert_eq!(w.store.balance(&user).await, balance(1, 0, 0, 1));
    assert_eq!(
        w.store
            .ledger_keys(&user)
            .await
            .iter()
            .filter(|k| k.starts_with("spend#"))
            .count(),
        1
    );
    w.assert_audit(&user).await;
}

#[tokio::test]
async fn a_worker_that_dies_between_storing_and_recording_is_finished_by_the_next_delivery() {
    let w = World::new();
    let user = portal("user-1");
    w.credit(&user, 1).await;
    let request = w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None));
    let accepted = w.accept(&Actor::portal(&user), &request).await.unwrap();

    w.store.crash_next_completes(1).await;
    assert!(matches!(w.work(&accepted.job_id).await, Outcome::Retry(_)));
    let job = w.job(&accepted.job_id).await;
    let prefix = format!("stamped/{}/{}", job.account, job.job_id);
    assert_eq!(w.documents.keys(&prefix).len(), 1, "the file was stored");
    assert_eq!(job.status, JobStatus::Processing, "but not recorded");
    assert_eq!(
        w.store.balance(&user).await,
        balance(1, 0, 1, 0),
        "the stamp stays reserved"
    );

    // The message comes back: the job is stamped again and recorded once.
    assert_eq!(w.work(&accepted.job_id).await, Outcome::Done);
    let job = w.job(&accepted.job_id).await;
    assert_eq!((job.status, job.attempts), (JobStatus::Done, 2));
    let key = job.stamped_key.clone().unwrap();
    assert!(w.documents.keys(&prefix).contains(&key));
    assert_eq!(
        w.documents.writes(&key),
        1,
        "each attempt's file has its own key"
    );
    let stored = w.documents.get(&key).unwrap();
    assert_eq!(
        w.store.serial(&job.serial).await.unwrap().sha256,
        Some(hex::encode(Sha256::digest(&stored))),
        "the serial is bound to the file the job points to"
    );
    assert_eq!(w.store.balance(&user).await, balance(1, 0, 0, 1));
    w.assert_audit(&user).await;
}

#[tokio::test]
async fn the_local_stage_crash_switch_fails_only_the_first_attempt() {
    let mut w = World::new();
    w.settings.fault_injection = true;
    let user = portal("user-1");
    w.credit(&user, 2).await;
    let mut chaos = w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None));
    chaos.client_reference = Some(Fault::CrashAfterStore.reference().into());
    let plain = w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None));
    let chaos = w.accept(&Actor::portal(&user), &chaos).await.unwrap();
    let plain = w.accept(&Actor::portal(&user), &plain).await.unwrap();
    assert!(matches!(w.work(&chaos.job_id).await, Outcome::Retry(_)));
    assert_eq!(w.work(&plain.job_id).await, Outcome::Done);
    assert_eq!(w.work(&chaos.job_id).await, Outcome::Done);
    assert_eq!(w.job(&chaos.job_id).await.attempts, 2);
    assert_eq!(w.store.balance(&user).await, balance(2, 0, 0, 2));
}

/// Every fault the local stage can inject strikes the first attempt only,
/// and the job still ends done with one stamp spent: a crash before the
/// store, after it, after the record; a key that refuses; a queue that
/// refuses the accept's message (the client's retry sends it).
#[tokio::test]
async fn every_injected_fault_strikes_once_and_the_job_still_ends_done() {
    for fault in Fault::ALL {
        let mut w = World::new();
        w.settings.fault_injection = true;
        let user = portal("user-1");
        w.credit(&user, 1).await;
        let mut request = w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None));
        request.client_reference = Some(fault.reference().into());
        let actor = Actor::portal(&user);
        let job_id = if fault == Fault::QueueRefuses {
            let refused = w.accept_as(&actor, &request, "seed").await.unwrap_err();
            assert_eq!(refused.code(), "DEPENDENCY_UNAVAILABLE", "{fault:?}");
            assert!(w.queue.receive().is_none(), "nothing was queued");
            w.accept_as(&actor, &request, "seed").await.unwrap().job_id
        } else {
            let job_id = w.accept(&actor, &request).await.unwrap().job_id;
            assert!(
                matches!(w.work(&job_id).await, Outcome::Retry(_)),
                "{fault:?}"
            );
            job_id
        };
        let again = w.work(&job_id).await;
        let expected = if fault == Fault::CrashAfterRecord {
            Outcome::Duplicate
        } else {
            Outcome::Done
        };
        assert_eq!(again, expected, "{fault:?}");
        assert_eq!(w.job(&job_id).await.status, JobStatus::Done, "{fault:?}");
        assert_eq!(
            w.store.balance(&user).await,
            balance(1, 0, 0, 1),
            "{fault:?}"
        );
        w.assert_audit(&user).await;
        // Off, the same reference is just a reference.
        let mut plain = World::new();
        plain.settings.fault_injection = false;
        plain.credit(&user, 1).await;
        let mut request = plain.upload(&user, sample_pdf(1, [0, 0, 595, 842], None));
        request.client_reference = Some(fault.reference().into());
        let job_id = plain.accept(&actor, &request).await.unwrap().job_id;
        assert_eq!(plain.work(&job_id).await, Outcome::Done, "{fault:?}");
    }
}

#[tokio::test]
async fn a_file_that_cannot_be_stamped_fails_its_job_and_returns_the_stamp() {
    let w = World::new();
    let user = portal("user-1");
    w.credit(&user, 3).await;
    let actor = Actor::portal(&user);
    // Looks like a PDF at accept time, is not one.
    let broken = w.upload(&user, b"%PDF-1.7\nthis is not a document".to_vec());
    // A page the file does not have.
    let mut no_page = w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None));
    no_page.placement.page = 9;
    // Deleted between accept and work.
    let gone = w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None));

    let broken = w.accept(&actor, &broken).await.unwrap();
    let no_page = w.accept(&actor, &no_page).await.unwrap();
    let gone_job = w.accept(&actor, &gone).await.unwrap();
    w.documents
        .remove(&w.job(&gone_job.job_id).await.source_key);
    assert_eq!(w.store.balance(&user).await, balance(3, 0, 3, 0));

    for accepted in [&broken, &no_page, &gone_job] {
        assert_eq!(w.work(&accepted.job_id).await, Outcome::Done);
        let job = w.job(&accepted.job_id).await;
        assert_eq!(job.status, JobStatus::Failed, "{job:?}");
        assert_eq!(
            w.store.serial(&job.serial).await.unwrap().state,
            SerialState::Void
        );
        // Redelivered, a failed job stays failed and returns nothing twice.
        assert_eq!(w.work(&accepted.job_id).await, Outcome::Duplicate);
    }
    assert_eq!(
        w.job(&gone_job.job_id).await.error_code.as_deref(),
        Some("DOCUMENT_GONE")
    );
    assert_eq!(w.store.balance(&user).await, balance(3, 3, 0, 0));
    w.assert_audit(&user).await;
}

#[tokio::test]
async fn the_worker_stamps_the_upload_that_was_accepted_or_none() {
    let w = World::new();
    let user = portal("user-1");
    w.credit(&user, 2).await;
    // Replaced by another PDF of the same size after the accept: the
    // applicant's stamp must not land on a document nobody checked.
    let upload = w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None));
    let accepted = w.accept(&Actor::portal(&user), &upload).await.unwrap();
    let key = w.job(&accepted.job_id).await.source_key;
    let mut other = w.documents.get(&key).unwrap();
    let at = other.len() - 20;
    other[at] ^= 1;
    w.documents.store(&key, other, None).await.unwrap();
    assert_eq!(w.work(&accepted.job_id).await, Outcome::Done);
    let job = w.job(&accepted.job_id).await;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    assert_eq!(job.error_code.as_deref(), Some("DOCUMENT_CHANGED"));
    assert_eq!(w.documents.bytes_read(), 0, "the body was read");
    assert_eq!(w.store.balance(&user).await, balance(2, 2, 0, 0));
    // The same bytes put again are the same version: stamped.
    let upload = w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None));
    let accepted = w.accept(&Actor::portal(&user), &upload).await.unwrap();
    let key = w.job(&accepted.job_id).await.source_key;
    w.documents.put(&key, sample_pdf(1, [0, 0, 595, 842], None));
    assert_eq!(w.work(&accepted.job_id).await, Outcome::Done);
    assert_eq!(w.job(&accepted.job_id).await.status, JobStatus::Done);
    w.assert_audit(&user).await;
}

#[tokio::test]
async fn an_upload_swapped_after_accept_for_one_over_the_limit_is_never_read() {
    let mut w = World::new();
    w.settings.limits.max_bytes = 50_000;
    let user = portal("user-1");
    w.credit(&user, 1).await;
    let upload = w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None));
    let accepted = w.accept(&Actor::portal(&user), &upload).await.unwrap();
    // The presigned PUT is used again after the accept, with a larger file.
    let key = w.job(&accepted.job_id).await.source_key;
    let mut larger = sample_pdf(1, [0, 0, 595, 842], None);
    larger.resize(50_001, b' ');
    w.documents.store(&key, larger, None).await.unwrap();

    assert_eq!(w.work(&accepted.job_id).await, Outcome::Done);
    let job = w.job(&accepted.job_id).await;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    // Another version as well: S3 checks `If-Match` before anything else.
    assert_eq!(job.error_code.as_deref(), Some("DOCUMENT_CHANGED"));
    assert_eq!(w.documents.bytes_read(), 0, "the body was read");
    assert_eq!(w.store.balance(&user).await, balance(1, 1, 0, 0));
    w.assert_audit(&user).await;
}

#[tokio::test]
async fn a_dead_letter_fails_its_job_once_and_every_one_is_recorded() {
    let w = World::new();
    let user = portal("user-1");
    w.credit(&user, 2).await;
    let lost = w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None));
    let done = w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None));
    let lost = w.accept(&Actor::portal(&user), &lost).await.unwrap();
    let done = w.accept(&Actor::portal(&user), &done).await.unwrap();
    assert_eq!(w.work(&done.job_id).await, Outcome::Done);

    let dead = |message_id: &'static str, job: Result<&'static str, String>| DeadMessage {
        message_id,
        job,
        body: "{}",
        receive_count: 5,
    };
    let lost_id: &'static str = Box::leak(lost.job_id.clone().into_boxed_str());
    let done_id: &'static str = Box::leak(done.job_id.clone().into_boxed_str());
    let ports = w.ports();
    let outcomes = [
        stamping::reconcile_dead_letter(&ports, &dead("m1", Ok(lost_id))).await,
        // The same dead letter delivered again.
        stamping::reconcile_dead_letter(&ports, &dead("m1", Ok(lost_id))).await,
        // A job that was done before its message died.
        stamping::reconcile_dead_letter(&ports, &dead("m2", Ok(done_id))).await,
        stamping::reconcile_dead_letter(&ports, &dead("m3", Err("not json".into()))).await,
    ];
    let outcomes: Vec<String> = outcomes.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        outcomes,
        [
            "job_failed",
            "job_already_final_or_unknown",
            "job_already_final_or_unknown",
            "unparseable: not json"
        ]
    );
    let lost_job = w.job(&lost.job_id).await;
    assert_eq!(lost_job.status, JobStatus::Failed);
    assert_eq!(lost_job.error_code.as_deref(), Some("DELIVERY_FAILED"));
    assert_eq!(w.job(&done.job_id).await.status, JobStatus::Done);
    assert_eq!(w.store.balance(&user).await, balance(2, 1, 0, 1));
    // One record per dead letter: the repeat of m1 rewrote its record.
    let records = w.store.dead_letters().await;
    assert_eq!(records.len(), 3);
    let by_id = |id: &str| records.iter().find(|r| r.message_id == id).unwrap();
    assert_eq!(by_id("m1").outcome, "job_already_final_or_unknown");
    assert_eq!(by_id("m3").job_id, None);
    assert_eq!(by_id("m2").receive_count, 5);
    w.assert_audit(&user).await;
}

#[tokio::test]
async fn a_reseller_hears_of_each_job_once_and_sees_only_its_own() {
    let w = World::new();
    let pool = meterai_core::resellers::pool_account("r1");
    let customer = meterai_core::resellers::customer_account("c1");
    w.credit(&customer, 2).await;
    let actor = Actor {
        owner: pool.clone(),
        payer: customer.clone(),
        channel: "Toko Meterai".into(),
        reseller_id: Some("r1".into()),
    };
    let mut good = w.upload(&pool, sample_pdf(1, [0, 0, 595, 842], None));
    good.customer_id = Some("c1".into());
    let mut bad = w.upload(&pool, b"%PDF-1.7 nothing else".to_vec());
    bad.customer_id = Some("c1".into());
    let good = w.accept(&actor, &good).await.unwrap();
    let bad = w.accept(&actor, &bad).await.unwrap();
    for _ in 0..2 {
        w.work(&good.job_id).await;
        w.work(&bad.job_id).await;
    }
    let events = w.outbox.events();
    assert_eq!(
        events
            .iter()
            .map(|e| (e.kind, e.data["job_id"].as_str().unwrap().to_string()))
            .collect::<Vec<_>>(),
        [
            (EventType::StampCompleted, good.job_id.clone()),
            (EventType::StampFailed, bad.job_id.clone()),
        ]
    );
    assert!(events.iter().all(|e| e.account == pool));
    assert_eq!(events[0].data["customer_id"], "c1");
    // The customer's quota paid; the pool's is untouched.
    assert_eq!(w.store.balance(&customer).await, balance(2, 1, 0, 1));
    assert_eq!(w.store.balance(&pool).await, Balance::default());

    // The jobs are the pool's to see, no one else's.
    let listed = stamping::list(&w.jobs, &pool, 10, None).await.unwrap();
    assert_eq!(listed.items.len(), 2);
    for stranger in [portal("user-1"), customer.clone()] {
        let err = stamping::get(&w.ports(), &w.settings, &stranger, &good.job_id)
            .await
            .unwrap_err();
        assert_eq!(err.code(), codes::JOB_NOT_FOUND);
        assert!(stamping::list(&w.jobs, &stranger, 10, None)
            .await
            .unwrap()
            .items
            .is_empty());
    }
    // A portal user's job has no events at all.
    let user = portal("user-1");
    w.credit(&user, 1).await;
    let mine = w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None));
    let mine = w.accept(&Actor::portal(&user), &mine).await.unwrap();
    assert_eq!(w.work(&mine.job_id).await, Outcome::Done);
    assert_eq!(w.outbox.events().len(), 2);
}

#[tokio::test]
async fn a_job_list_pages_newest_first() {
    let w = World::new();
    let user = portal("user-1");
    w.credit(&user, 5).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let request = w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None));
        ids.push(
            w.accept(&Actor::portal(&user), &request)
                .await
                .unwrap()
                .job_id,
        );
        w.clock.advance(1_000);
    }
    let first = stamping::list(&w.jobs, &user, 2, None).await.unwrap();
    let second = stamping::list(&w.jobs, &user, 2, first.next_cursor.as_deref())
        .await
        .unwrap();
    let third = stamping::list(&w.jobs, &user, 2, second.next_cursor.as_deref())
        .await
        .unwrap();
    let listed: Vec<String> = [first.items, second.items, third.items]
        .concat()
        .into_iter()
        .map(|j| j.job_id)
        .collect();
    ids.reverse();
    assert_eq!(listed, ids);
    assert_eq!(third.next_cursor, None);
}

#[tokio::test]
async fn the_stamped_file_downloads_under_the_users_name_and_the_user_is_told() {
    let w = World::new();
    let user = portal("user-named");
    w.credit(&user, 1).await;
    let pdf = sample_pdf(1, [0, 0, 595, 842], None);
    let size = pdf.len() as u64;
    let ticket = stamping::new_upload(&w.ports(), &w.settings, &user, "surat-lamaran.pdf", size)
        .await
        .unwrap();
    // The URL is good for that many bytes only.
    assert!(ticket
        .upload_url
        .ends_with(&format!("content-length={size}")));
    let key = meterai_app::ports::Documents::upload_key(&w.documents, &user, &ticket.document_id);
    w.documents.put(&key, pdf);
    let mut request = w.upload(&user, Vec::new());
    request.document_id = ticket.document_id.clone();
    let accepted = w.accept(&Actor::portal(&user), &request).await.unwrap();
    assert_eq!(w.work_next().await, Outcome::Done);
    let job = w.job(&accepted.job_id).await;
    let stored = job.stamped_key.expect("a done job has its file");
    assert_eq!(
        w.documents.download_name(&stored).as_deref(),
        Some("surat-lamaran-meterai.pdf")
    );
    // A portal user is told by e-mail (a reseller would get the webhook).
    let mails = w.outbox.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(
        mails[0].kind,
        meterai_core::events::EventType::StampCompleted
    );
}

#[tokio::test]
async fn a_repeated_request_finds_its_job_and_never_reserves_twice() {
    let w = World::new();
    let user = portal("user-1");
    w.credit(&user, 2).await;
    let actor = Actor::portal(&user);
    let request = w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None));
    let first = w.accept_as(&actor, &request, "key-1").await.unwrap();
    assert_eq!(w.queue.len(), 1);
    // The first answer was lost (or the function died after its
    // transaction): the retry answers with the same job and queues it again.
    let again = w.accept_as(&actor, &request, "key-1").await.unwrap();
    assert_eq!(
        (&again.job_id, &again.serial),
        (&first.job_id, &first.serial)
    );
    assert_eq!(w.queue.len(), 2);
    assert_eq!(w.store.balance(&user).await, balance(2, 1, 1, 0));
    assert_eq!(w.work_next().await, Outcome::Done);
    assert_eq!(w.work_next().await, Outcome::Duplicate);
    // Done: a repeat still answers with it, and queues nothing.
    let done = w.accept_as(&actor, &request, "key-1").await.unwrap();
    assert_eq!(
        (done.job_id.as_str(), done.status),
        (first.job_id.as_str(), JobStatus::Done)
    );
    assert_eq!(w.queue.len(), 0);
    // Even with no stamp left to reserve, the repeat is not "insufficient".
    let other = w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None));
    w.accept_as(&actor, &other, "key-2").await.unwrap();
    assert_eq!(w.store.balance(&user).await, balance(2, 0, 1, 1));
    let repeat = w.accept_as(&actor, &other, "key-2").await.unwrap();
    assert_eq!(repeat.status, JobStatus::Queued);
    let third = w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None));
    let err = w.accept_as(&actor, &third, "key-3").await.unwrap_err();
    assert_eq!(err.code(), codes::INSUFFICIENT_QUOTA);
    // The upload expired (kept a day): a repeat still answers with the job.
    let key = w.job(&first.job_id).await.source_key;
    w.documents.remove(&key);
    let later = w.accept_as(&actor, &request, "key-1").await.unwrap();
    assert_eq!(later.job_id, first.job_id);
    // A seed that names another owner's job is never answered with it (the
    // edge puts the caller's account in every seed, so this takes a hash
    // collision).
    let stranger = portal("user-2");
    w.credit(&stranger, 1).await;
    let theirs = w.upload(&stranger, sample_pdf(1, [0, 0, 595, 842], None));
    let err = w
        .accept_as(&Actor::portal(&stranger), &theirs, "key-1")
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::CONTENTION);
    assert_eq!(w.store.balance(&stranger).await, balance(1, 1, 0, 0));
    w.assert_audit(&user).await;
    w.assert_audit(&stranger).await;
}

#[tokio::test]
async fn a_job_whose_message_was_lost_is_sent_again_by_the_schedule() {
    let w = World::new();
    let user = portal("user-1");
    w.credit(&user, 2).await;
    // Two jobs accepted whose messages never reached the queue (the accept
    // died between its transaction and the send).
    let mut lost = Vec::new();
    for _ in 0..2 {
        let request = w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None));
        lost.push(
            w.accept(&Actor::portal(&user), &request)
                .await
                .unwrap()
                .job_id,
        );
        w.queue.receive();
    }
    let ports = w.ports();
    let run = |limit| stamping::resend_unfinished(&ports, limit);
    // Not quiet long enough yet: a queue can be long at a deadline.
    w.clock.advance(meterai_core::jobs::RESEND_AFTER_MS - 1);
    assert_eq!(run(10).await.unwrap().resent, 0);
    w.clock.advance(2);
    assert_eq!(run(1).await.unwrap().resent, 1, "at most the limit");
    assert_eq!(run(10).await.unwrap().resent, 1, "the other one");
    assert_eq!(
        run(10).await.unwrap().resent,
        0,
        "sent again once per quiet spell"
    );
    assert_eq!(w.queue.len(), 2);
    assert_eq!(w.work_next().await, Outcome::Done);
    // The other stays reserved until its message is worked; a later run
    // sends it again if that message is lost as well.
    w.queue.receive();
    w.clock.advance(meterai_core::jobs::RESEND_AFTER_MS + 1);
    assert_eq!(run(10).await.unwrap().resent, 1);
    assert_eq!(w.work_next().await, Outcome::Done);
    for job_id in &lost {
        assert_eq!(w.job(job_id).await.status, JobStatus::Done);
    }
    w.clock.advance(meterai_core::jobs::RESEND_AFTER_MS + 1);
    assert_eq!(
        run(10).await.unwrap().resent,
        0,
        "finished jobs are not sent"
    );
    assert_eq!(w.store.balance(&user).await, balance(2, 0, 0, 2));
    w.assert_audit(&user).await;
}

#[tokio::test]
async fn a_runaway_stamping_keeps_the_next_job_off_the_cpu_and_in_the_queue() {
    let w = World::new();
    let user = portal("user-1");
    w.credit(&user, 1).await;
    let request = w.upload(&user, sample_pdf(1, [0, 0, 595, 842], None));
    let accepted = w.accept(&Actor::portal(&user), &request).await.unwrap();
    // A stamping that ran over its timeout still holds the slot.
    let runaway = w
        .settings
        .slot
        .take(std::time::Duration::ZERO)
        .await
        .expect("the slot is free");
    let outcome = w.work(&accepted.job_id).await;
    assert!(matches!(outcome, Outcome::Retry(_)), "{outcome:?}");
    let job = w.job(&accepted.job_id).await;
    assert_eq!(
        (job.status, job.attempts),
        (JobStatus::Queued, 0),
        "not an attempt"
    );
    // Its thread ends: the message, delivered again, is stamped.
    drop(runaway);
    assert_eq!(w.work(&accepted.job_id).await, Outcome::Done);
    assert_eq!(w.store.balance(&user).await, balance(1, 0, 0, 1));
    w.assert_audit(&user).await;
}
