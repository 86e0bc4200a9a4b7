//! An operator's quota correction on the in-memory ports: a ledger movement
//! applied once per ticket, never beyond what is available, always audited.
//! The audit of changed accounts: a broken balance is found, a moving one is
//! not mistaken for broken.

use futures::future::join_all;
use std::time::Duration;

use meterai_app::quota::{audit_account, audit_accounts, correct, AuditLimits, Audited};
use meterai_core::error::codes;
use meterai_core::quota::{Balance, Correction, Movement, MovementKind};
use meterai_core::AccountId;
use meterai_memory::{ManualClock, Store};

const NOW: i64 = 1_795_400_000_000;

fn account() -> AccountId {
    AccountId::parse("user-7").unwrap()
}

async fn bought(store: &Store, stamps: i64) {
    let credit = Movement::new(&account(), MovementKind::Credit, stamps, "ord_1");
    store.apply(&credit).await.unwrap();
}

fn correction(delta: i64, ticket: &str) -> Correction {
    Correction::new(
        &account(),
        delta,
        ticket,
        "paid order 1 was credited short",
        "dewi",
    )
    .unwrap()
}

#[tokio::test]
async fn a_grant_is_a_ledger_movement_with_its_reason_and_operator() {
    let store = Store::new();
    bought(&store, 3).await;
    let corrections = store.quota();
    let done = correct(&corrections, &ManualClock::at(NOW), correction(2, "CS-101"))
        .await
        .unwrap();
    assert!(done.audit.holds(), "{:?}", done.audit.problems);
    assert_eq!(
        (done.audit.balance.purchased, done.audit.balance.available),
        (5, 5)
    );
    assert_eq!(done.audit.entries, 2);
    assert!(store
        .ledger_keys(&account())
        .await
        .contains(&"grant#CS-101".to_string()));
    assert_eq!(
        corrections.note(&account(), "grant#CS-101").await,
        Some(("paid order 1 was credited short".into(), "dewi".into()))
    );
}

#[tokio::test]
async fn a_ticket_applies_once() {
    let store = Store::new();
    bought(&store, 3).await;
    let corrections = store.quota();
    let clock = ManualClock::at(NOW);
    correct(&corrections, &clock, correction(2, "CS-102"))
        .await
        .unwrap();
    let again = correct(&corrections, &clock, correction(2, "CS-102"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), codes::CORRECTION_EXISTS);
    // The same ticket the other way is another movement (`withdraw#CS-102`):
    // undoing a mistaken grant is itself written down.
    let undone = correct(&corrections, &clock, correction(-2, "CS-102"))
        .await
        .unwrap();
    assert_eq!(undone.audit.balance.available, 3);
    assert!(undone.audit.holds());
    // Raced: ten operators type the same ticket at once; one applies.
    let raced =
        join_all((0..10).map(|_| correct(&corrections, &clock, correction(1, "CS-103")))).await;
    assert_eq!(raced.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(raced
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| e.code() == codes::CORRECTION_EXISTS));
    assert_eq!(store.balance(&account()).await.available, 4);
}

#[tokio::test]
async fn a_withdrawal_takes_only_available_stamps() {
    let store = Store::new();
    bought(&store, 5).await;
    // One stamp is reserved by a job in flight: never taken back by hand.
    let reserve = Movement::new(&account(), MovementKind::Reserve, 1, "job_1");
    store.apply(&reserve).await.unwrap();
    let corrections = store.quota();
    let clock = ManualClock::at(NOW);
    let too_many = correct(&corrections, &clock, correction(-5, "CS-201"))
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), codes::INSUFFICIENT_QUOTA);
    assert_eq!(store.balance(&account()).await.available, 4);
    // Eight withdrawals of one stamp race for the four available.
    let raced = join_all(
        (0..8).map(|i| correct(&corrections, &clock, correction(-1, &format!("CS-3{i}")))),
    )
    .await;
    assert_eq!(raced.iter().filter(|r| r.is_ok()).count(), 4);
    let balance = store.balance(&account()).await;
    assert_eq!(
        (balance.purchased, balance.available, balance.reserved),
        (1, 0, 1)
    );
    let audit = store.audit(&account()).await;
    assert!(audit.holds(), "{:?}", audit.problems);
}

const LIMITS: AuditLimits = AuditLimits {
    attempts: 3,
    pause: Duration::ZERO,
    max_entries: 1_000,
};

#[tokio::test]
async fn the_audit_finds_a_balance_changed_outside_the_ledger() {
    let store = Store::new();
    bought(&store, 4).await;
    let quota = store.quota();
    assert_eq!(
        audit_account(&quota, &account(), LIMITS).await.unwrap(),
        Audited::Holds
    );
    // A stamp appears from nowhere: consistent counters, but no ledger entry.
    store
        .corrupt_balance(
            &account(),
            Balance {
                purchased: 1,
                available: 1,
                ..Balance::default()
            },
        )
        .await;
    let Audited::Broken(report) = audit_account(&quota, &account(), LIMITS).await.unwrap() else {
        panic!("drift not found")
    };
    assert!(
        report.problems[0].contains("differs from the ledger"),
        "{:?}",
        report.problems
    );
    // Too long a ledger to sum: the counters alone are checked, and these add up.
    let short = AuditLimits {
        max_entries: 0,
        ..LIMITS
    };
    assert_eq!(
        audit_account(&quota, &account(), short).await.unwrap(),
        Audited::BalanceHolds
    );
    // Counters that do not add up are broken even then.
    store
        .corrupt_balance(
            &account(),
            Balance {
                available: 1,
                ..Balance::default()
            },
        )
        .await;
    assert!(matches!(
        audit_account(&quota, &account(), short).await.unwrap(),
        Audited::Broken(_)
    ));
}

#[tokio::test]
async fn a_moving_account_is_busy_not_broken() {
    let store = Store::new();
    bought(&store, 4).await;
    let quota = store.quota();
    // Every balance read sees another movement: no attempt is still.
    quota.moving_for(6);
    assert_eq!(
        audit_account(&quota, &account(), LIMITS).await.unwrap(),
        Audited::Busy
    );
    // One still attempt that holds is enough.
    quota.moving_for(2);
    assert_eq!(
        audit_account(&quota, &account(), LIMITS).await.unwrap(),
        Audited::Holds
    );
    let other = AccountId::parse("user-8").unwrap();
    let run = audit_accounts(&quota, &[account(), other], LIMITS)
        .await
        .unwrap();
    assert_eq!((run.audited, run.busy, run.broken.len()), (2, 0, 0));
}
