//! The money side's use cases on the in-memory ports: exactly-once credit,
//! refunds racing each other and reservations, the refund rules.

use futures::future::join_all;
use meterai_app::orders::{self, RefundOutcome};
use meterai_app::payments::{self, PaymentOutcome, PaymentPorts};
use meterai_core::error::codes;
use meterai_core::orders::{OrderRules, OrderStatus};
use meterai_core::payments::{Midtrans, MidtransNotification};
use meterai_core::quota::{Movement, MovementKind};
use meterai_core::AccountId;
use meterai_memory::{ManualClock, MemoryGateway, MemoryOutbox, MemoryPaymentLog, Rejected, Store};

const SERVER_KEY: &str = "SB-Mid-server-test";
const NOW: i64 = 1_795_400_000_000;
const MINUTE: i64 = 60_000;
const LIMITS: payments::ReconcileLimits = payments::ReconcileLimits {
    grace_ms: 5 * MINUTE,
    batch: 100,
    concurrency: 4,
    budget_ms: 45_000,
};

struct World {
    store: Store,
    log: MemoryPaymentLog,
    outbox: MemoryOutbox,
    clock: ManualClock,
    rules: OrderRules,
    gateway: MemoryGateway,
}

impl World {
    fn new() -> Self {
        Self {
            store: Store::new(),
            log: MemoryPaymentLog::default(),
            outbox: MemoryOutbox::default(),
            clock: ManualClock::at(NOW),
            rules: OrderRules::default(),
            gateway: MemoryGateway::default(),
        }
    }

    fn ports<'a>(&'a self, orders: &'a meterai_memory::MemoryOrders) -> PaymentPorts<'a> {
        PaymentPorts {
            orders,
            log: &self.log,
            outbox: &self.outbox,
            clock: &self.clock,
            gateway: &self.gateway,
        }
    }

    async fn reconcile(&self) -> payments::ReconcileReport {
        self.reconcile_with(LIMITS).await
    }

    async fn reconcile_with(&self, limits: payments::ReconcileLimits) -> payments::ReconcileReport {
        let orders = self.store.orders();
        payments::reconcile(&self.ports(&orders), limits)
            .await
            .unwrap()
    }

    async fn notify(&self, note: &MidtransNotification) -> meterai_core::Result<payments::Receipt> {
        let orders = self.store.orders();
        payments::handle_notification(
            &self.ports(&orders),
            &Midtrans::new(SERVER_KEY),
            &serde_json::to_vec(note).unwrap(),
        )
        .await
    }

    async fn order(&self, account: &AccountId, quantity: i64) -> meterai_core::orders::Order {
        orders::create(
            &self.store.orders(),
            &self.gateway,
            &self.clock,
            &self.rules,
            account,
            quantity,
        )
        .await
        .unwrap()
    }

    async fn paid_order(&self, account: &AccountId, quantity: i64) -> String {
        let order = self.order(account, quantity).await;
        self.gateway.set(&order.order_id, "settlement", order.total);
        let note = gateway().notification(&order.order_id, "settlement", order.total, "tx-1");
        assert_eq!(
            self.notify(&note).await.unwrap().result,
            PaymentOutcome::Credited
        );
        order.order_id
    }

    async fn refund(
        &self,
        account: &AccountId,
        order_id: &str,
        requested: Option<i64>,
    ) -> meterai_core::Result<RefundOutcome> {
        orders::refund(
            &self.store.orders(),
            &self.outbox,
            &self.clock,
            &self.rules,
            account,
            order_id,
            requested,
        )
        .await
    }

    async fn assert_audit(&self, account: &AccountId) {
        let report = self.store.audit(account).await;
        assert!(report.holds(), "{report:?}");
    }
}

fn gateway() -> Midtrans {
    Midtrans::new(SERVER_KEY)
}

fn account(name: &str) -> AccountId {
    AccountId::parse(name).unwrap()
}

#[tokio::test]
async fn twenty_duplicated_and_reordered_notifications_credit_once() {
    let world = World::new();
    let buyer = account("acct-dup");
    let order = world.order(&buyer, 3).await;
    world
        .gateway
        .set(&order.order_id, "settlement", order.total);
    let g = gateway();
    // Pending first and last, settlements in between, all at once: each is
    // only a reason to ask the gateway, which says "settlement".
    let mut notes = vec![g.notification(&order.order_id, "pending", order.total, "tx-1")];
    for i in 0..18 {
        notes.push(g.notification(
            &order.order_id,
            "settlement",
            order.total,
            &format!("tx-{i}"),
        ));
    }
    notes.push(g.notification(&order.order_id, "pending", order.total, "tx-1"));
    let answers = join_all(notes.iter().map(|n| world.notify(n))).await;
    let credited = answers
        .iter()
        .filter(|a| a.as_ref().unwrap().result == PaymentOutcome::Credited)
        .count();
    assert_eq!(credited, 1, "{answers:?}");
    let balance = world.store.balance(&buyer).await;
    assert_eq!((balance.purchased, balance.available), (3, 3));
    assert_eq!(
        world.store.ledger_keys(&buyer).await,
        vec![format!("credit#{}", order.order_id)]
    );
    assert_eq!(
        world.log.records().len(),
        20,
        "every notification is recorded"
    );
    world.assert_audit(&buyer).await;
}

#[tokio::test]
async fn a_tampered_or_mismatched_notification_credits_nothing_and_is_recorded() {
    let world = World::new();
    let buyer = account("acct-tamper");
    let order = world.order(&buyer, 2).await;
    // An amount changed after signing, or another key's signature: refused.
    let mut forged = gateway().notification(&order.order_id, "settlement", order.total, "tx");
    forged.gross_amount = "1.00".into();
    let err = world.notify(&forged).await.unwrap_err();
    assert_eq!(err.code(), codes::INVALID_SIGNATURE);
    let other_key =
        Midtrans::new("another-key").notification(&order.order_id, "settlement", order.total, "tx");
    assert_eq!(
        world.notify(&other_key).await.unwrap_err().code(),
        codes::INVALID_SIGNATURE
    );
    // A pending notification edited to say settlement: its signature still
    // checks out (transaction_status is not signed), but the gateway says
    // pending, and that is what counts.
    world.gateway.set(&order.order_id, "pending", order.total);
    let mut edited = gateway().notification(&order.order_id, "pending", order.total, "tx");
    edited.transaction_status = "settlement".into();
    assert_eq!(
        world.notify(&edited).await.unwrap().result,
        PaymentOutcome::Unchanged
    );
    // Paid, but for another amount, or in another currency: nothing credited.
    world
        .gateway
        .set(&order.order_id, "settlement", order.total - 1);
    let paid = gateway().notification(&order.order_id, "settlement", order.total, "tx");
    assert_eq!(
        world.notify(&paid).await.unwrap_err().code(),
        codes::AMOUNT_MISMATCH
    );
    world
        .gateway
        .set(&order.order_id, "settlement", order.total);
    let mut dollars = world.gateway.status_of(&order.order_id).expect("set above");
    dollars.currency = Some("USD".into());
    world.gateway.set_answer(&order.order_id, dollars);
    assert_eq!(
        world.notify(&paid).await.unwrap_err().code(),
        codes::AMOUNT_MISMATCH
    );
    assert_eq!(world.store.balance(&buyer).await.purchased, 0);
    let records = world.log.records();
    let outcomes: Vec<_> = records
        .iter()
        .map(|r| (r.outcome.as_str(), r.signature_valid))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("INVALID_SIGNATURE", false),
            ("INVALID_SIGNATURE", false),
            ("unchanged", true),
            ("AMOUNT_MISMATCH", true),
            ("AMOUNT_MISMATCH", true)
        ]
    );
    assert!(records.iter().all(|r| r.order_id == order.order_id));
    world.assert_audit(&buyer).await;
}

#[tokio::test]
async fn money_for_a_closed_order_is_still_credited_and_a_paid_order_is_never_closed() {
    let world = World::new();
    let buyer = account("acct-late");
    let order = world.order(&buyer, 1).await;
    let g = gateway();
    world.gateway.set(&order.order_id, "expire", order.total);
    let expire = g.notification(&order.order_id, "expire", order.total, "tx");
    assert_eq!(
        world.notify(&expire).await.unwrap().result,
        PaymentOutcome::Closed
    );
    world.clock.advance(world.rules.payment_window_ms + 1);
    world
        .gateway
        .set(&order.order_id, "settlement", order.total);
    let paid = g.notification(&order.order_id, "settlement", order.total, "tx");
    assert_eq!(
        world.notify(&paid).await.unwrap().result,
        PaymentOutcome::Credited
    );
    // Paid, then denied at the gateway (a reversal): recorded, never closed.
    world.gateway.set(&order.order_id, "deny", order.total);
    let deny = g.notification(&order.order_id, "deny", order.total, "tx");
    assert_eq!(
        world.notify(&deny).await.unwrap().result,
        PaymentOutcome::ReversalRecorded
    );
    let stored = orders::get(
        &world.store.orders(),
        &world.gateway,
        &world.clock,
        &buyer,
        &order.order_id,
    )
    .await
    .unwrap();
    assert_eq!(stored.status_at(world.clock_now()), OrderStatus::Paid);
    assert_eq!(world.store.balance(&buyer).await.available, 1);
    world.assert_audit(&buyer).await;
}

impl World {
    fn clock_now(&self) -> i64 {
        use meterai_app::ports::Clock;
        self.clock.now_ms()
    }
}

#[tokio::test]
async fn an_order_is_seen_by_its_owner_only_and_quantities_are_bounded() {
    let world = World::new();
    let owner = account("acct-owner");
    let order = world.order(&owner, 2).await;
    let orders_port = world.store.orders();
    assert_eq!(
        orders::get(
            &orders_port,
            &world.gateway,
            &world.clock,
            &owner,
            &order.order_id
        )
        .await
        .unwrap(),
        order
    );
    let stranger = orders::get(
        &orders_port,
        &world.gateway,
        &world.clock,
        &account("acct-stranger"),
        &order.order_id,
    )
    .await;
    assert_eq!(stranger.unwrap_err().code(), codes::ORDER_NOT_FOUND);
    assert_eq!(
        orders::get(
            &orders_port,
            &world.gateway,
            &world.clock,
            &owner,
            "ord_../x"
        )
        .await
        .unwrap_err()
        .code(),
        codes::ORDER_NOT_FOUND
    );
    for bad in [0, -1, world.rules.max_quantity + 1] {
        let err = orders::create(
            &orders_port,
            &world.gateway,
            &world.clock,
            &world.rules,
            &owner,
            bad,
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), codes::INVALID_QUANTITY, "{bad}");
    }
    let second = world.order(&owner, 1).await;
    let page = orders::list(&orders_port, &owner, 1, None).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let rest = orders::list(&orders_port, &owner, 10, page.next_cursor.as_deref())
        .await
        .unwrap();
    let mut seen: Vec<_> = page
        .items
        .iter()
        .chain(&rest.items)
        .map(|o| o.order_id.clone())
        .collect();
    seen.sort();
    let mut both = vec![order.order_id, second.order_id];
    both.sort();
    assert_eq!(seen, both);
    assert_eq!(rest.next_cursor, None);
}

#[tokio::test]
async fn twenty_concurrent_refunds_of_one_order_refund_once() {
    let world = World::new();
    let buyer = account("acct-refund");
    let order_id = world.paid_order(&buyer, 5).await;
    let answers = join_all((0..20).map(|_| world.refund(&buyer, &order_id, None))).await;
    let created: Vec<_> = answers
        .iter()
        .filter_map(|a| match a.as_ref().unwrap() {
            RefundOutcome::Created(r) => Some(r.clone()),
            RefundOutcome::Existing(_) => None,
        })
        .collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    assert_eq!((created[0].quantity, created[0].amount), (5, 50_000));
    for a in &answers {
        assert_eq!(
            a.as_ref().unwrap().refund().refund_id,
            created[0].refund_id,
            "every answer names the one refund"
        );
    }
    let balance = world.store.balance(&buyer).await;
    assert_eq!((balance.available, balance.refunded), (0, 5));
    world.assert_audit(&buyer).await;
}

#[tokio::test]
async fn refunds_racing_reservations_never_refund_a_reserved_stamp() {
    let world = World::new();
    let buyer = account("acct-race");
    let order_id = world.paid_order(&buyer, 6).await;
    let reserve = join_all((0..6).map(|i| {
        let store = world.store.clone();
        let buyer = buyer.clone();
        async move {
            store
                .apply(&Movement::new(
                    &buyer,
                    MovementKind::Reserve,
                    1,
                    format!("job_{i}"),
                ))
                .await
        }
    }));
    let refunds = join_all((0..4).map(|_| world.refund(&buyer, &order_id, None)));
    let (reserved, refunded) = tokio::join!(reserve, refunds);
    let reserved_ok = reserved.iter().filter(|r| r.is_ok()).count() as i64;
    assert!(reserved
        .iter()
        .all(|r| matches!(r, Ok(()) | Err(Rejected::Insufficient))));
    let refunded_total: i64 = refunded
        .iter()
        .filter_map(|r| match r {
            Ok(RefundOutcome::Created(refund)) => Some(refund.quantity),
            _ => None,
        })
        .sum();
    for r in &refunded {
        if let Err(e) = r {
            assert!(
                e.is_client_error() && e.code() != codes::CONTENTION,
                "{e:?}"
            );
        }
    }
    let balance = world.store.balance(&buyer).await;
    assert_eq!(
        reserved_ok + refunded_total,
        6,
        "every stamp is reserved or refunded, none both"
    );
    assert_eq!(
        (balance.reserved, balance.refunded, balance.available),
        (reserved_ok, refunded_total, 0)
    );
    world.assert_audit(&buyer).await;
}

#[tokio::test]
async fn refund_requests_that_cannot_be_met_are_refused_with_their_codes() {
    let world = World::new();
    let buyer = account("acct-rules");
    let pending = world.order(&buyer, 2).await;
    let code = |r: meterai_core::Result<RefundOutcome>| r.unwrap_err().code();
    assert_eq!(
        code(world.refund(&buyer, &pending.order_id, None).await),
        codes::ORDER_NOT_PAID
    );
    let order_id = world.paid_order(&buyer, 2).await;
    assert_eq!(
        code(world.refund(&buyer, &order_id, Some(3)).await),
        codes::REFUND_EXCEEDS_UNUSED
    );
    assert_eq!(
        code(world.refund(&account("acct-other"), &order_id, None).await),
        codes::ORDER_NOT_FOUND
    );
    let first = world.refund(&buyer, &order_id, Some(1)).await.unwrap();
    assert!(matches!(first, RefundOutcome::Created(ref r) if r.quantity == 1));
    let rest = world.refund(&buyer, &order_id, None).await.unwrap();
    assert!(matches!(rest, RefundOutcome::Created(ref r) if r.quantity == 1 && r.seq == 2));
    // Nothing left: the latest refund again, harmlessly.
    let again = world.refund(&buyer, &order_id, None).await.unwrap();
    assert_eq!(again, RefundOutcome::Existing(rest.refund().clone()));
    let other = world.paid_order(&buyer, 1).await;
    world.clock.advance(world.rules.refund_window_ms + 1);
    assert_eq!(
        code(world.refund(&buyer, &other, None).await),
        codes::REFUND_WINDOW_CLOSED
    );
    world.assert_audit(&buyer).await;
}

#[tokio::test]
async fn a_resellers_pool_hears_of_its_payment_and_refund_once() {
    let world = World::new();
    let pool = account("reseller:rsl_01JC0000000000000000000000");
    let order = world.order(&pool, 2).await;
    world
        .gateway
        .set(&order.order_id, "settlement", order.total);
    let note = gateway().notification(&order.order_id, "settlement", order.total, "tx");
    world.notify(&note).await.unwrap();
    world.notify(&note).await.unwrap();
    world.refund(&pool, &order.order_id, None).await.unwrap();
    world.refund(&pool, &order.order_id, None).await.unwrap();
    let kinds: Vec<_> = world
        .outbox
        .events()
        .iter()
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(kinds, vec!["order.paid", "refund.completed"]);
    // A portal user's purchase makes no event, and a receipt e-mail, once.
    let order_id = world.paid_order(&account("acct-portal"), 1).await;
    assert_eq!(world.outbox.events().len(), 2);
    let receipt = gateway().notification(&order_id, "settlement", 10_000, "tx");
    world.notify(&receipt).await.unwrap();
    let mails = world.outbox.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].account.as_str(), "acct-portal");
    assert_eq!(mails[0].data["payment_method"], "qris");
    assert!(mails[0].data["paid_at"].is_string());
}

#[tokio::test]
async fn a_lost_notification_is_made_good_by_the_reconciler_exactly_once() {
    let world = World::new();
    let buyer = account("acct-lost");
    let order = world.order(&buyer, 3).await;
    // Paid at the gateway; the notification never arrives.
    world
        .gateway
        .set(&order.order_id, "settlement", order.total);
    // Too young to be checked yet.
    assert_eq!(world.reconcile().await.checked, 0);
    // An order paid by its notification meanwhile is found settled and forgotten.
    let notified = world.paid_order(&account("acct-notified"), 1).await;
    world.clock.advance(5 * 60_000 + 1);
    let first = world.reconcile().await;
    assert_eq!(
        (first.checked, first.credited, first.settled_before),
        (1, 1, 1),
        "{first:?} ({notified} was settled before)"
    );
    assert_eq!(world.store.balance(&buyer).await.available, 3);
    // Settled, it is no longer listed; a late notification credits nothing more.
    assert_eq!(
        world.reconcile().await,
        payments::ReconcileReport::default()
    );
    let late = gateway().notification(&order.order_id, "settlement", order.total, "tx");
    assert_eq!(
        world.notify(&late).await.unwrap().result,
        PaymentOutcome::AlreadyCredited
    );
    assert_eq!(world.store.balance(&buyer).await.purchased, 3);
    world.assert_audit(&buyer).await;
}

#[tokio::test]
async fn a_gateway_outage_leaves_the_order_pending_until_a_later_check() {
    let world = World::new();
    let buyer = account("acct-outage");
    world.gateway.set_unavailable(true);
    // The order exists without a payment page; reading it opens one later.
    let order = world.order(&buyer, 2).await;
    assert_eq!(order.payment, None);
    world
        .gateway
        .set(&order.order_id, "settlement", order.total);
    let note = gateway().notification(&order.order_id, "settlement", order.total, "tx");
    let err = world.notify(&note).await.unwrap_err();
    assert_eq!(err.kind(), meterai_core::ErrorKind::Unavailable);
    world.clock.advance(5 * 60_000 + 1);
    let during = world.reconcile().await;
    assert_eq!((during.checked, during.failed), (1, 1), "{during:?}");
    assert_eq!(world.store.balance(&buyer).await.purchased, 0);
    world.gateway.set_unavailable(false);
    // A failed check sends the order to the back of the line, like any other.
    assert_eq!(world.reconcile().await.checked, 0);
    world.clock.advance(5 * 60_000 + 1);
    let after = world.reconcile().await;
    assert_eq!(after.credited, 1, "{after:?}");
    let read = orders::get(
        &world.store.orders(),
        &world.gateway,
        &world.clock,
        &buyer,
        &order.order_id,
    )
    .await
    .unwrap();
    assert_eq!(read.status, OrderStatus::Paid);
    assert_eq!(read.payment, None, "a paid order opens no payment page");
    world.assert_audit(&buyer).await;
}

#[tokio::test]
async fn an_order_opens_its_payment_page_once() {
    let world = World::new();
    let buyer = account("acct-page");
    world.gateway.set_unavailable(true);
    let order = world.order(&buyer, 1).await;
    assert_eq!(order.payment, None);
    world.gateway.set_unavailable(false);
    let orders_port = world.store.orders();
    let get = || {
        orders::get(
            &orders_port,
            &world.gateway,
            &world.clock,
            &buyer,
            &order.order_id,
        )
    };
    let first = get().await.unwrap();
    let link = first.payment.clone().expect("opened on read");
    assert_eq!(get().await.unwrap().payment, Some(link));
    assert_eq!(world.gateway.opened(), 1, "a page is opened once and kept");
    let fresh = world.order(&buyer, 1).await;
    assert!(fresh.payment.is_some());
}

#[tokio::test]
async fn gateway_refunds_and_chargebacks_are_recorded_and_change_no_quota() {
    let world = World::new();
    let buyer = account("acct-chargeback");
    let order_id = world.paid_order(&buyer, 2).await;
    for status in ["chargeback", "refund", "partial_refund"] {
        world.gateway.set(&order_id, status, 20_000);
        let note = gateway().notification(&order_id, status, 20_000, "tx");
        assert_eq!(
            world.notify(&note).await.unwrap().result,
            PaymentOutcome::ReversalRecorded,
            "{status}"
        );
    }
    let balance = world.store.balance(&buyer).await;
    assert_eq!((balance.purchased, balance.available), (2, 2));
    let outcomes: Vec<_> = world
        .log
        .records()
        .iter()
        .map(|r| r.outcome.clone())
        .collect();
    assert_eq!(
        outcomes,
        vec![
            "credited",
            "reversal_recorded",
            "reversal_recorded",
            "reversal_recorded"
        ]
    );
    world.assert_audit(&buyer).await;
}

#[tokio::test]
async fn abandoned_orders_cannot_starve_a_paid_one() {
    let world = World::new();
    let buyer = account("acct-crowd");
    // A batch's worth of orders nobody pays, older than the one that is paid.
    for _ in 0..LIMITS.batch {
        world.order(&account("acct-idle"), 1).await;
    }
    world.clock.advance(MINUTE);
    let paid = world.order(&buyer, 2).await;
    world.gateway.set(&paid.order_id, "settlement", paid.total);
    world.clock.advance(LIMITS.grace_ms + MINUTE);
    // The first run takes the older hundred; each goes to the back of the line.
    let first = world.reconcile().await;
    assert_eq!(
        (first.checked, first.still_pending),
        (100, 100),
        "{first:?}"
    );
    assert_eq!(world.store.balance(&buyer).await.available, 0);
    world.clock.advance(MINUTE);
    let second = world.reconcile().await;
    assert_eq!(second.credited, 1, "the paid order's turn came: {second:?}");
    assert_eq!(world.store.balance(&buyer).await.available, 2);
    world.assert_audit(&buyer).await;
}

#[tokio::test]
async fn old_pending_orders_are_asked_about_less_often() {
    let world = World::new();
    let order = world.order(&account("acct-va"), 1).await;
    // The buyer chose a virtual account and has not paid it yet.
    world.gateway.set(&order.order_id, "pending", order.total);
    world.clock.advance(LIMITS.grace_ms + 1);
    assert_eq!(world.reconcile().await.still_pending, 1);
    // Young: asked again one grace later.
    world.clock.advance(LIMITS.grace_ms + 1);
    assert_eq!(world.reconcile().await.still_pending, 1);
    // Two hours old: not again until ten more minutes have passed.
    world.clock.advance(2 * 60 * MINUTE);
    assert_eq!(world.reconcile().await.still_pending, 1);
    world.clock.advance(LIMITS.grace_ms + 1);
    assert_eq!(world.reconcile().await.checked, 0);
    world.clock.advance(10 * MINUTE);
    assert_eq!(world.reconcile().await.still_pending, 1);
}

#[tokio::test]
async fn an_order_never_taken_to_the_gateway_is_closed_once_its_page_is_gone() {
    let world = World::new();
    let buyer = account("acct-abandon");
    let order = world.order(&buyer, 1).await;
    // The gateway knows no transaction (404) for the whole window: pending.
    world.clock.advance(LIMITS.grace_ms + 1);
    assert_eq!(world.reconcile().await.still_pending, 1);
    world.clock.set(order.pay_by_ms + 2 * MINUTE);
    assert_eq!(
        world.reconcile().await.still_pending,
        1,
        "the page may still be open just past the deadline"
    );
    world
        .clock
        .set(order.pay_by_ms + 20 * MINUTE + 3 * 60 * MINUTE);
    let report = world.reconcile().await;
    assert_eq!(report.closed, 1, "{report:?}");
    let stored = world.store.orders();
    let closed = meterai_app::ports::Orders::load(&stored, &order.order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(closed.status, OrderStatus::Expired);
    // Forgotten: never asked about again.
    world.clock.advance(24 * 60 * MINUTE);
    assert_eq!(
        world.reconcile().await,
        payments::ReconcileReport::default()
    );
    // Money that still arrives is credited: money never vanishes.
    world
        .gateway
        .set(&order.order_id, "settlement", order.total);
    let late = gateway().notification(&order.order_id, "settlement", order.total, "tx");
    assert_eq!(
        world.notify(&late).await.unwrap().result,
        PaymentOutcome::Credited
    );
    world.assert_audit(&buyer).await;
}

#[tokio::test]
async fn a_run_out_of_time_leaves_the_rest_for_the_next() {
    let world = World::new();
    for _ in 0..3 {
        world.order(&account("acct-late"), 1).await;
    }
    world.clock.advance(LIMITS.grace_ms + 1);
    let spent = payments::ReconcileLimits {
        budget_ms: -1,
        ..LIMITS
    };
    let report = world.reconcile_with(spent).await;
    assert_eq!(
        (report.checked, report.left_for_next_run),
        (0, 3),
        "{report:?}"
    );
    assert_eq!(world.reconcile().await.checked, 3, "nothing was lost");
}

#[tokio::test]
async fn a_payment_page_the_table_hiccups_on_is_kept_on_a_retry_and_given_to_the_buyer() {
    let world = World::new();
    let buyer = account("acct-hiccup");
    world.store.fail_next_attaches(2).await;
    let order = world.order(&buyer, 1).await;
    let link = order.payment.clone().expect("the buyer gets the page");
    let stored = meterai_app::ports::Orders::load(&world.store.orders(), &order.order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.payment, Some(link), "kept on the third try");
    // Never kept at all: the buyer still has the page from this answer.
    world.store.fail_next_attaches(3).await;
    let unkept = world.order(&buyer, 1).await;
    assert!(unkept.payment.is_some());
    assert_eq!(world.gateway.opened(), 2);
}

#[tokio::test]
async fn reading_a_pending_order_asks_the_gateway_at_most_every_thirty_seconds() {
    let world = World::new();
    let buyer = account("acct-reader");
    let orders_port = world.store.orders();
    let read = |id: String, who: AccountId| {
        let ports = world.ports(&orders_port);
        async move { payments::read_order(&ports, &who, &id).await }
    };
    // Paid at the gateway; its notification is lost. The buyer, back from
    // the payment page, reads the order: paid, credited.
    let paid = world.order(&buyer, 3).await;
    world.gateway.set(&paid.order_id, "settlement", paid.total);
    let seen = read(paid.order_id.clone(), buyer.clone()).await.unwrap();
    assert_eq!(seen.status, OrderStatus::Paid);
    assert_eq!(world.store.balance(&buyer).await.available, 3);
    // Another account reads nothing, and triggers nothing.
    let checks = world.log.records().len();
    let err = read(paid.order_id.clone(), account("acct-other"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::ORDER_NOT_FOUND);
    // Still pending at the gateway: asked once, then not again for 30 s.
    let waiting = world.order(&buyer, 1).await;
    world
        .gateway
        .set(&waiting.order_id, "pending", waiting.total);
    for _ in 0..5 {
        let seen = read(waiting.order_id.clone(), buyer.clone()).await.unwrap();
        assert_eq!(seen.status, OrderStatus::Pending);
    }
    assert_eq!(world.log.records().len(), checks + 1);
    world.clock.advance(payments::READ_CHECK_EVERY_MS);
    read(waiting.order_id.clone(), buyer.clone()).await.unwrap();
    assert_eq!(world.log.records().len(), checks + 2);
    // A gateway outage: the order is shown as read, no error.
    world.gateway.set_unavailable(true);
    world.clock.advance(payments::READ_CHECK_EVERY_MS);
    let seen = read(waiting.order_id.clone(), buyer.clone()).await.unwrap();
    assert_eq!(seen.status, OrderStatus::Pending);
    world.assert_audit(&buyer).await;
}
