//! Idempotency keys on the in-memory port: a request runs once per key, its
//! answer (a client error's too) is replayed, another request under the same
//! key is refused, concurrent repeats do not run twice, our failures are not
//! stored, a dead request's lock is taken over, and keys are per account.

use std::sync::atomic::{AtomicUsize, Ordering};

use futures::future::join_all;
use meterai_app::idempotency::{self, LOCK_MS, RECORD_TTL_MS};
use meterai_app::ports::{KeyScope, StoredResponse};
use meterai_core::error::codes;
use meterai_core::{AccountId, Error};
use meterai_memory::{ManualClock, MemoryIdempotencyKeys};

const NOW: i64 = 1_795_400_000_000;

struct World {
    keys: MemoryIdempotencyKeys,
    clock: ManualClock,
    runs: AtomicUsize,
}

fn answer_of(e: &Error) -> StoredResponse {
    StoredResponse {
        status: 400,
        body: e.code().to_string(),
    }
}

impl World {
    fn new() -> Self {
        Self {
            keys: MemoryIdempotencyKeys::default(),
            clock: ManualClock::at(NOW),
            runs: AtomicUsize::new(0),
        }
    }

    /// Runs a request under `key`; the operation counts its runs and answers `result`.
    async fn call(
        &self,
        account: &AccountId,
        key: &str,
        hash: &str,
        result: meterai_core::Result<StoredResponse>,
    ) -> meterai_core::Result<(StoredResponse, bool)> {
        let scope = KeyScope {
            account,
            scope: "orders",
            key,
            hash,
        };
        let operation = async {
            let n = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
            // Yield so that concurrent repeats really overlap this run.
            tokio::task::yield_now().await;
            result.map(|r| StoredResponse {
                status: r.status,
                body: format!("{}#{n}", r.body),
            })
        };
        idempotency::once(&self.keys, &self.clock, &scope, answer_of, operation).await
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
}

fn created() -> meterai_core::Result<StoredResponse> {
    Ok(StoredResponse {
        status: 201,
        body: "order".into(),
    })
}

fn user(name: &str) -> AccountId {
    AccountId::parse(name).unwrap()
}

#[tokio::test]
async fn a_repeat_gets_the_first_answer_without_running_again() {
    let w = World::new();
    let (first, replayed) = w.call(&user("u1"), "k1", "h1", created()).await.unwrap();
    assert_eq!(
        (first.status, first.body.as_str(), replayed),
        (201, "order#1", false)
    );
    for _ in 0..3 {
        let (again, replayed) = w.call(&user("u1"), "k1", "h1", created()).await.unwrap();
        assert_eq!((again, replayed), (first.clone(), true));
    }
    assert_eq!(w.runs(), 1);
}

#[tokio::test]
async fn the_same_key_with_another_request_is_refused() {
    let w = World::new();
    w.call(&user("u1"), "k1", "h1", created()).await.unwrap();
    let err = w
        .call(&user("u1"), "k1", "h2", created())
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::IDEMPOTENCY_KEY_REUSED);
    assert_eq!(w.runs(), 1);
}

#[tokio::test]
async fn concurrent_repeats_run_once() {
    let w = World::new();
    let account = user("u1");
    let results = join_all((0..20).map(|_| w.call(&account, "k1", "h1", created()))).await;
    assert_eq!(w.runs(), 1);
    let ran: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|(_, replayed)| !replayed)
        .collect();
    assert_eq!(ran.len(), 1);
    for result in &results {
        match result {
            Ok((response, _)) => assert_eq!(response.body, "order#1"),
            Err(e) => assert_eq!(e.code(), codes::IDEMPOTENCY_IN_PROGRESS),
        }
    }
}

#[tokio::test]
async fn a_client_error_is_stored_and_replayed() {
    let w = World::new();
    let refused = || {
        Err(Error::quota_exhausted(
            codes::INSUFFICIENT_QUOTA,
            "no stamp is available",
        ))
    };
    let (first, _) = w.call(&user("u1"), "k1", "h1", refused()).await.unwrap();
    assert_eq!(first.body, codes::INSUFFICIENT_QUOTA);
    // Even if it would succeed now, the repeat gets the stored answer.
    let (again, replayed) = w.call(&user("u1"), "k1", "h1", created()).await.unwrap();
    assert_eq!((again, replayed), (first, true));
    assert_eq!(w.runs(), 1);
}

#[tokio::test]
async fn our_failures_and_contention_are_not_stored() {
    let w = World::new();
    let err = w
        .call(
            &user("u1"),
            "k1",
            "h1",
            Err(Error::table("the table timed out")),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::DEPENDENCY_UNAVAILABLE);
    let err = w
        .call(
            &user("u1"),
            "k1",
            "h1",
            Err(Error::conflict(codes::CONTENTION, "retry")),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::CONTENTION);
    let (answer, replayed) = w.call(&user("u1"), "k1", "h1", created()).await.unwrap();
    assert_eq!((answer.body.as_str(), replayed), ("order#3", false));
}

#[tokio::test]
async fn a_dead_requests_lock_is_taken_over_only_by_the_same_request_after_it_expires() {
    let w = World::new();
    let account = user("u1");
    // A request claims the key and its function dies: the claim stays.
    let scope = KeyScope {
        account: &account,
        scope: "orders",
        key: "k1",
        hash: "h1",
    };
    let dead = idempotency::once(&w.keys, &w.clock, &scope, answer_of, async {
        std::future::pending::<meterai_core::Result<StoredResponse>>().await
    });
    let timed_out = tokio::time::timeout(std::time::Duration::from_millis(10), dead).await;
    assert!(timed_out.is_err(), "the first request never finishes");

    let err = w.call(&account, "k1", "h1", created()).await.unwrap_err();
    assert_eq!(err.code(), codes::IDEMPOTENCY_IN_PROGRESS);
    w.clock.advance(LOCK_MS + 1);
    let err = w.call(&account, "k1", "h2", created()).await.unwrap_err();
    assert_eq!(
        err.code(),
        codes::IDEMPOTENCY_KEY_REUSED,
        "another request may not take it"
    );
    let (answer, replayed) = w.call(&account, "k1", "h1", created()).await.unwrap();
    assert_eq!((answer.body.as_str(), replayed), ("order#1", false));
}

/// A slow request whose lock another attempt took over, and which then
/// fails, gives back nothing: the other attempt's stored answer stays, and a
/// retry gets it instead of running a third time.
#[tokio::test]
async fn a_slow_attempt_that_fails_after_a_takeover_keeps_the_others_answer() {
    let w = World::new();
    let account = user("u1");
    let scope = KeyScope {
        account: &account,
        scope: "orders",
        key: "k1",
        hash: "h1",
    };
    let (let_it_fail, failing) = tokio::sync::oneshot::channel::<()>();
    let slow = idempotency::once(&w.keys, &w.clock, &scope, answer_of, async {
        let _ = failing.await;
        Err(meterai_core::Error::table("timed out"))
    });
    let other = async {
        // Once the slow one holds the key, past its lock.
        tokio::task::yield_now().await;
        w.clock.advance(LOCK_MS + 1);
        let taken = w.call(&account, "k1", "h1", created()).await.unwrap();
        let _ = let_it_fail.send(());
        taken
    };
    let (slow, taken) = tokio::join!(slow, other);
    assert_eq!(slow.unwrap_err().code(), "DEPENDENCY_UNAVAILABLE");
    assert_eq!((taken.0.body.as_str(), taken.1), ("order#1", false));
    let (again, replayed) = w.call(&account, "k1", "h1", created()).await.unwrap();
    assert_eq!((again.body.as_str(), replayed), ("order#1", true));
    assert_eq!(w.runs(), 1);
}

#[tokio::test]
async fn keys_are_per_account_and_expire_after_a_day() {
    let w = World::new();
    let (mine, _) = w.call(&user("u1"), "k1", "h1", created()).await.unwrap();
    let (theirs, replayed) = w.call(&user("u2"), "k1", "h1", created()).await.unwrap();
    assert!(!replayed, "another account's key is not mine");
    assert_ne!(mine.body, theirs.body);
    // Expiry is kept in whole seconds: a millisecond past the day is not yet past it.
    w.clock.advance(RECORD_TTL_MS + 1);
    let err = w
        .call(&user("u1"), "k1", "h2", created())
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::IDEMPOTENCY_KEY_REUSED);
    w.clock.advance(1_000);
    let (later, replayed) = w.call(&user("u1"), "k1", "h2", created()).await.unwrap();
    assert!(!replayed);
    assert_eq!(later.body, "order#3");
    assert_eq!(w.runs(), 3);
}
