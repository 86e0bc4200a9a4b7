//! meterai-memory: the ports of `meterai-app`, in memory.
//!
//! One [`Store`] holds what the DynamoDB table holds (balances, ledger
//! entries, orders, refunds, jobs, serials) behind one lock; each port method is one
//! transaction on it: every condition is checked first, then every change is
//! made, or none (as `TransactWriteItems` does). A ledger entry's key is its
//! movement's cause, so the same movement never applies twice. Each call
//! yields to the scheduler first, so use cases running at once interleave.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use meterai_app::idempotency;
use meterai_app::ports::{
    AcceptRejected, Attempt, Claimed, Clock, CorrectionRejected, Corrections, Credited, Customers,
    DeadLetter, Delivery, Documents, Endpoint, Events, Gateway, IdempotencyKeys, JobQueue, Jobs,
    KeyScope, Orders, Outbox, PaymentLog, PaymentRecord, PendingMark, QuotaReads, RefundLost,
    Registry, SaleRejected, StoredResponse, UploadHead, WebhookClient,
};
use meterai_core::error::codes;
use meterai_core::events::{event_id, Event, EventStatus, EventType};
use meterai_core::jobs::Job;
use meterai_core::orders::{Order, OrderStatus, PaymentLink, Refund};
use meterai_core::payments::GatewayStatus;
use meterai_core::quota::{
    audit_entries, AuditReport, Balance, Correction, Movement, MovementKind, Page,
};
use meterai_core::resellers::{Customer, Sale};
use meterai_core::serial::SerialRecord;
use meterai_core::{AccountId, Error, JobStatus, Result, Serial};

/// Why a movement did not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// The source counter holds fewer stamps than the movement needs.
    Insufficient,
    /// The same movement was applied before (its ledger entry exists).
    AlreadyApplied,
}

#[derive(Debug, Default)]
struct State {
    balances: HashMap<AccountId, Balance>,
    /// (account, `{kind}#{reference}`) -> the entry's change to the balance.
    ledger: BTreeMap<(AccountId, String), Balance>,
    orders: HashMap<String, Order>,
    refunds: HashMap<(String, i64), Refund>,
    jobs: HashMap<String, Job>,
    serials: HashMap<Serial, SerialEntry>,
    /// By message id: a repeat overwrites, as the table's put does.
    dead_letters: BTreeMap<String, DeadLetter>,
    customers: HashMap<String, Customer>,
    /// A correction's ledger entry -> (reason, operator).
    correction_notes: HashMap<(AccountId, String), (String, String)>,
    /// Orders listed as awaiting payment: order id -> its mark's time (the
    /// table keeps one marker item per order, keyed by that time).
    pending_marks: HashMap<String, i64>,
    /// `complete` calls still to fail before changing anything (a worker
    /// that dies between storing the file and recording it).
    crash_completes: usize,
    /// Jobs ended per minute (minute number since the epoch -> count).
    finished_per_minute: HashMap<i64, u64>,
    /// When each order was last checked on a read (`claim_read_check`).
    read_checks: HashMap<String, i64>,
    /// `attach_payment` calls still to fail (a table that hiccups).
    failing_attaches: usize,
    /// When an unfinished job's message was last sent again (the table
    /// keeps it on the job's unfinished marker, which ends with the job).
    resent: HashMap<String, i64>,
}

/// What a serial number is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialState {
    /// Claimed by a job that has not finished.
    Reserved,
    /// Bound to a stamped file.
    Bound,
    /// Its job failed; it names no document.
    Void,
}

/// A serial number's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialEntry {
    pub job_id: String,
    pub state: SerialState,
    pub page: u32,
    pub channel: String,
    /// The stamped file's SHA-256 and when it was bound.
    pub sha256: Option<String>,
    pub stamped_ms: Option<i64>,
}

impl State {
    /// The conditions of a movement: its source holds enough, its ledger key
    /// is new (reported in that order, as the table's transaction lists them).
    fn check(&self, movement: &Movement) -> std::result::Result<(), Rejected> {
        let balance = self
            .balances
            .get(&movement.account)
            .copied()
            .unwrap_or_default();
        let held = match movement.kind.source() {
            None => None,
            Some("available") => Some(balance.available),
            Some("reserved") => Some(balance.reserved),
            Some(other) => unreachable!("no counter {other} is a source"),
        };
        if held.is_some_and(|held| held < movement.quantity) {
            return Err(Rejected::Insufficient);
        }
        if self
            .ledger
            .contains_key(&(movement.account.clone(), movement.ledger_sk()))
        {
            return Err(Rejected::AlreadyApplied);
        }
        Ok(())
    }

    /// Every ledger entry's change for the account, in key order.
    fn ledger_changes(&self, account: &AccountId) -> Vec<Balance> {
        self.ledger
            .iter()
            .filter(|((owner, _), _)| owner == account)
            .map(|(_, change)| *change)
            .collect()
    }

    /// Applies a movement whose conditions were checked.
    fn apply(&mut self, movement: &Movement) {
        let deltas = movement.kind.deltas(movement.quantity);
        self.balances
            .entry(movement.account.clone())
            .or_default()
            .add(&deltas);
        self.ledger
            .insert((movement.account.clone(), movement.ledger_sk()), deltas);
    }
}

/// The in-memory table. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Store {
    state: Arc<Mutex<State>>,
}

impl Store {
    pub fn new() -> Self {
        Self::default()
    }

    async fn lock(&self) -> MutexGuard<'_, State> {
        tokio::task::yield_now().await;
        self.state
            .lock()
            .expect("no test panics while holding the store")
    }

    /// Applies one movement on its own (a reservation, a release), as one transaction.
    pub async fn apply(&self, movement: &Movement) -> std::result::Result<(), Rejected> {
        let mut state = self.lock().await;
        state.check(movement)?;
        state.apply(movement);
        Ok(())
    }

    pub async fn balance(&self, account: &AccountId) -> Balance {
        self.lock()
            .await
            .balances
            .get(account)
            .copied()
            .unwrap_or_default()
    }

    /// The account's balance against the sum of its ledger.
    pub async fn audit(&self, account: &AccountId) -> AuditReport {
        let state = self.lock().await;
        let balance = state.balances.get(account).copied().unwrap_or_default();
        audit_entries(account.as_str(), balance, &state.ledger_changes(account))
    }

    /// The account's ledger keys (`{kind}#{reference}`), in key order.
    pub async fn ledger_keys(&self, account: &AccountId) -> Vec<String> {
        let state = self.lock().await;
        state
            .ledger
            .keys()
            .filter(|(owner, _)| owner == account)
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// A serial number's record.
    pub async fn serial(&self, serial: &Serial) -> Option<SerialEntry> {
        self.lock().await.serials.get(serial).cloned()
    }

    /// Every serial record.
    pub async fn serials(&self) -> Vec<SerialEntry> {
        self.lock().await.serials.values().cloned().collect()
    }

    /// The dead letters recorded, in order.
    pub async fn dead_letters(&self) -> Vec<DeadLetter> {
        let state = self.lock().await;
        let mut records: Vec<DeadLetter> = state.dead_letters.values().cloned().collect();
        records.sort_by_key(|r| r.recorded_ms);
        records
    }

    /// The next `n` job completions fail before changing anything.
    pub async fn crash_next_completes(&self, n: usize) {
        self.lock().await.crash_completes = n;
    }

    /// The next `n` payment pages fail to be kept.
    pub async fn fail_next_attaches(&self, n: usize) {
        self.lock().await.failing_attaches = n;
    }

    /// The operators' corrections and the audit's reads over this store.
    pub fn quota(&self) -> MemoryQuota {
        MemoryQuota {
            store: self.clone(),
            moving_reads: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        }
    }

    /// Changes a balance without a ledger entry: the corruption the audit
    /// exists to find (a test's doing, never a use case's).
    pub async fn corrupt_balance(&self, account: &AccountId, change: Balance) {
        self.lock()
            .await
            .balances
            .entry(account.clone())
            .or_default()
            .add(&change);
    }

    /// The customers port over this store.
    pub fn customers(&self) -> MemoryCustomers {
        MemoryCustomers {
            store: self.clone(),
        }
    }

    /// The serial registry over this store.
    pub fn registry(&self) -> MemoryRegistry {
        MemoryRegistry {
            store: self.clone(),
        }
    }

    /// The jobs port over this store.
    pub fn jobs(&self) -> MemoryJobs {
        MemoryJobs {
            store: self.clone(),
        }
    }

    /// The orders port over this store.
    pub fn orders(&self) -> MemoryOrders {
        MemoryOrders {
            store: self.clone(),
        }
    }
}

/// One page of a listing, newest first (by creation time, then id), as the
/// table's `gsi1` pages it: `cursor` is the last id of the page before.
fn page_of<T: Clone>(
    mut items: Vec<&T>,
    key: impl Fn(&T) -> (i64, &str),
    limit: i32,
    cursor: Option<&str>,
) -> Result<Page<T>> {
    items.sort_by(|a, b| key(b).cmp(&key(a)));
    let start = match cursor {
        None => 0,
        Some(after) => {
            items
                .iter()
                .position(|item| key(item).1 == after)
                .ok_or_else(|| {
                    Error::invalid(
                        codes::INVALID_CURSOR,
                        "cursor is not valid for this listing",
                    )
                })?
                + 1
        }
    };
    let page: Vec<T> = items
        .iter()
        .skip(start)
        .take(limit.max(0) as usize)
        .map(|item| (*item).clone())
        .collect();
    let next_cursor = (start + page.len() < items.len())
        .then(|| page.last().map(|item| key(item).1.to_string()))
        .flatten();
    Ok(Page {
        items: page,
        next_cursor,
    })
}

/// [`Orders`] in memory.
#[derive(Debug, Clone)]
pub struct MemoryOrders {
    store: Store,
}

#[async_trait]
impl Orders for MemoryOrders {
    async fn create(&self, order: &Order) -> Result<()> {
        let mut state = self.store.lock().await;
        // The table's conditional put fails as any other table error would.
        if state.orders.contains_key(&order.order_id) {
            return Err(Error::table("the new order's id exists"));
        }
        state.orders.insert(order.order_id.clone(), order.clone());
        state
            .pending_marks
            .insert(order.order_id.clone(), order.created_ms);
        Ok(())
    }

    async fn load(&self, order_id: &str) -> Result<Option<Order>> {
        Ok(self.store.lock().await.orders.get(order_id).cloned())
    }

    async fn list(
        &self,
        account: &AccountId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<Order>> {
        let state = self.store.lock().await;
        let mine: Vec<&Order> = state
            .orders
            .values()
            .filter(|o| &o.account == account)
            .collect();
        page_of(mine, |o| (o.created_ms, o.order_id.as_str()), limit, cursor)
    }

    async fn credit(&self, order: &Order, _transaction_id: &str, now_ms: i64) -> Result<Credited> {
        let mut state = self.store.lock().await;
        let movement = Movement::new(
            &order.account,
            MovementKind::Credit,
            order.quantity,
            &order.order_id,
        );
        // Both conditions of the one transaction: not paid yet, not credited yet.
        let unpaid = state
            .orders
            .get(&order.order_id)
            .is_none_or(|o| o.paid_ms.is_none());
        if !unpaid || state.check(&movement).is_err() {
            return Ok(Credited::Before);
        }
        state.apply(&movement);
        let stored = state
            .orders
            .entry(order.order_id.clone())
            .or_insert_with(|| order.clone());
        stored.status = OrderStatus::Paid;
        stored.paid_ms = Some(now_ms);
        Ok(Credited::Now)
    }

    async fn close(&self, order_id: &str, status: OrderStatus, _now_ms: i64) -> Result<bool> {
        let mut state = self.store.lock().await;
        match state.orders.get_mut(order_id) {
            Some(order) if order.status == OrderStatus::Pending && order.paid_ms.is_none() => {
                order.status = status;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn with_balance(
        &self,
        order_id: &str,
        account: &AccountId,
    ) -> Result<(Option<Order>, Balance)> {
        let state = self.store.lock().await;
        Ok((
            state.orders.get(order_id).cloned(),
            state.balances.get(account).copied().unwrap_or_default(),
        ))
    }

    async fn refund(
        &self,
        order: &Order,
        refund: &Refund,
    ) -> Result<std::result::Result<(), RefundLost>> {
        let mut state = self.store.lock().await;
        let Some(stored) = state.orders.get(&order.order_id) else {
            return Ok(Err(RefundLost));
        };
        let movement = Movement::new(
            &refund.account,
            MovementKind::Refund,
            refund.quantity,
            &refund.refund_id,
        );
        let fits = stored.refund_count == refund.seq - 1
            && stored.refunded_quantity + refund.quantity <= stored.quantity
            && !state
                .refunds
                .contains_key(&(order.order_id.clone(), refund.seq))
            && state.check(&movement).is_ok();
        if !fits {
            return Ok(Err(RefundLost));
        }
        state.apply(&movement);
        let stored = state
            .orders
            .get_mut(&order.order_id)
            .expect("checked above");
        stored.refund_count = refund.seq;
        stored.refunded_quantity += refund.quantity;
        state
            .refunds
            .insert((order.order_id.clone(), refund.seq), refund.clone());
        Ok(Ok(()))
    }

    async fn refund_number(&self, order_id: &str, seq: i64) -> Result<Option<Refund>> {
        Ok(self
            .store
            .lock()
            .await
            .refunds
            .get(&(order_id.to_string(), seq))
            .cloned())
    }

    async fn attach_payment(&self, order_id: &str, link: &PaymentLink) -> Result<()> {
        let mut state = self.store.lock().await;
        if state.failing_attaches > 0 {
            state.failing_attaches -= 1;
            return Err(Error::table("injected: the page was not kept"));
        }
        if let Some(order) = state.orders.get_mut(order_id) {
            order.payment = Some(link.clone());
        }
        Ok(())
    }

    async fn pending(&self, quiet_since_ms: i64, limit: usize) -> Result<Vec<PendingMark>> {
        let state = self.store.lock().await;
        let mut listed: Vec<PendingMark> = state
            .pending_marks
            .iter()
            .filter(|(_, since)| **since < quiet_since_ms)
            .map(|(order_id, since)| PendingMark {
                order_id: order_id.clone(),
                since_ms: *since,
            })
            .collect();
        listed.sort_by(|a, b| (a.since_ms, &a.order_id).cmp(&(b.since_ms, &b.order_id)));
        listed.truncate(limit);
        Ok(listed)
    }

    async fn requeue_pending(&self, mark: &PendingMark, since_ms: i64) -> Result<()> {
        let mut state = self.store.lock().await;
        // The table's move is conditional on the old marker: a mark moved or
        // forgotten meanwhile stays as it is.
        if let Some(since) = state.pending_marks.get_mut(&mark.order_id) {
            if *since == mark.since_ms {
                *since = since_ms;
            }
        }
        Ok(())
    }

    async fn claim_read_check(&self, order_id: &str, now_ms: i64, every_ms: i64) -> Result<bool> {
        let mut state = self.store.lock().await;
        let pending = state
            .orders
            .get(order_id)
            .is_some_and(|o| o.status == OrderStatus::Pending && o.paid_ms.is_none());
        let due = state
            .read_checks
            .get(order_id)
            .is_none_or(|last| *last <= now_ms - every_ms);
        if pending && due {
            state.read_checks.insert(order_id.to_string(), now_ms);
        }
        Ok(pending && due)
    }

    async fn forget_pending(&self, mark: &PendingMark) -> Result<()> {
        let mut state = self.store.lock().await;
        if state.pending_marks.get(&mark.order_id) == Some(&mark.since_ms) {
            state.pending_marks.remove(&mark.order_id);
        }
        Ok(())
    }
}

/// [`Gateway`] in memory: the status the gateway would answer for each
/// order (404 until a test says otherwise), and an outage switch.
#[derive(Debug, Clone, Default)]
pub struct MemoryGateway {
    statuses: Arc<Mutex<HashMap<String, GatewayStatus>>>,
    unavailable: Arc<std::sync::atomic::AtomicBool>,
    opened: Arc<std::sync::atomic::AtomicUsize>,
}

impl MemoryGateway {
    /// The gateway now answers `transaction_status` for the order, for
    /// `amount` rupiah (with the status code Midtrans gives it).
    pub fn set(&self, order_id: &str, transaction_status: &str, amount: i64) {
        let status_code = match transaction_status {
            "settlement" | "capture" | "refund" | "partial_refund" | "chargeback" => "200",
            "pending" => "201",
            "expire" => "407",
            _ => "202",
        };
        self.set_answer(
            order_id,
            GatewayStatus {
                status_code: status_code.into(),
                order_id: Some(order_id.to_string()),
                transaction_status: Some(transaction_status.into()),
                fraud_status: Some("accept".into()),
                gross_amount: Some(format!("{amount}.00")),
                currency: Some("IDR".into()),
                transaction_id: Some(format!("tx-{order_id}")),
                payment_type: Some("qris".into()),
            },
        );
    }

    pub fn set_answer(&self, order_id: &str, answer: GatewayStatus) {
        self.statuses
            .lock()
            .unwrap()
            .insert(order_id.to_string(), answer);
    }

    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable
            .store(unavailable, std::sync::atomic::Ordering::SeqCst);
    }

    /// What the gateway answers now for the order, if a test set it.
    pub fn status_of(&self, order_id: &str) -> Option<GatewayStatus> {
        self.statuses.lock().unwrap().get(order_id).cloned()
    }

    /// Payment pages opened so far.
    pub fn opened(&self) -> usize {
        self.opened.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl Gateway for MemoryGateway {
    async fn open_payment(&self, order: &Order) -> Result<PaymentLink> {
        if self.unavailable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::unavailable(
                meterai_core::error::Dependency::PaymentGateway,
                "the gateway does not answer",
            ));
        }
        self.opened
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(PaymentLink {
            token: format!("token-{}", order.order_id),
            redirect_url: format!("https://gateway.test/pay/{}", order.order_id),
        })
    }

    async fn status(&self, order_id: &str) -> Result<GatewayStatus> {
        if self.unavailable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::unavailable(
                meterai_core::error::Dependency::PaymentGateway,
                "the gateway does not answer",
            ));
        }
        Ok(self
            .statuses
            .lock()
            .unwrap()
            .get(order_id)
            .cloned()
            .unwrap_or(GatewayStatus {
                status_code: "404".into(),
                ..GatewayStatus::default()
            }))
    }
}

/// [`PaymentLog`] in memory: every record, in order.
#[derive(Debug, Clone, Default)]
pub struct MemoryPaymentLog {
    records: Arc<Mutex<Vec<PaymentRecord>>>,
}

impl MemoryPaymentLog {
    pub fn records(&self) -> Vec<PaymentRecord> {
        self.records.lock().unwrap().clone()
    }
}

#[async_trait]
impl PaymentLog for MemoryPaymentLog {
    async fn record(&self, record: &PaymentRecord) {
        self.records.lock().unwrap().push(record.clone());
    }
}

/// An event the outbox recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Emitted {
    pub event_id: String,
    pub account: AccountId,
    pub kind: EventType,
    pub data: serde_json::Value,
}

/// [`Outbox`] in memory: one record per event id (as the table's
/// `attribute_not_exists` keeps it), for reseller pools only.
#[derive(Debug, Clone, Default)]
pub struct MemoryOutbox {
    events: Arc<Mutex<Vec<Emitted>>>,
    mails: Arc<Mutex<Vec<Emitted>>>,
}

impl MemoryOutbox {
    /// Reseller events, once per (kind, reference).
    pub fn events(&self) -> Vec<Emitted> {
        self.events.lock().unwrap().clone()
    }

    /// Portal users' e-mails queued, once per (kind, reference).
    pub fn mails(&self) -> Vec<Emitted> {
        self.mails.lock().unwrap().clone()
    }
}

#[async_trait]
impl Outbox for MemoryOutbox {
    async fn emit_for_account(
        &self,
        account: &AccountId,
        kind: EventType,
        reference: &str,
        data: serde_json::Value,
    ) -> Result<()> {
        let id = event_id(kind, reference);
        let pool = account
            .as_str()
            .starts_with(meterai_core::resellers::POOL_PREFIX);
        if !pool && meterai_core::resellers::is_reseller_channel(account.as_str()) {
            return Ok(());
        }
        let mut events = if pool {
            self.events.lock().unwrap()
        } else {
            self.mails.lock().unwrap()
        };
        if !events.iter().any(|e| e.event_id == id) {
            events.push(Emitted {
                event_id: id,
                account: account.clone(),
                kind,
                data,
            });
        }
        Ok(())
    }
}

/// A clock the test sets.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn at(ms: i64) -> Self {
        Self(AtomicI64::new(ms))
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// [`Jobs`] in memory.
#[derive(Debug, Clone)]
pub struct MemoryJobs {
    store: Store,
}

#[async_trait]
impl Jobs for MemoryJobs {
    async fn accept(&self, job: &Job) -> Result<std::result::Result<(), AcceptRejected>> {
        let mut state = self.store.lock().await;
        let movement = Movement::new(&job.account, MovementKind::Reserve, 1, &job.job_id);
        match state.check(&movement) {
            Err(Rejected::Insufficient) => return Ok(Err(AcceptRejected::Insufficient)),
            Err(Rejected::AlreadyApplied) => return Ok(Err(AcceptRejected::Collision)),
            Ok(()) => {}
        }
        if state.jobs.contains_key(&job.job_id) || state.serials.contains_key(&job.serial) {
            return Ok(Err(AcceptRejected::Collision));
        }
        state.apply(&movement);
        state.jobs.insert(job.job_id.clone(), job.clone());
        state.serials.insert(
            job.serial.clone(),
            SerialEntry {
                job_id: job.job_id.clone(),
                state: SerialState::Reserved,
                page: job.placement.page,
                channel: job.channel.clone(),
                sha256: None,
                stamped_ms: None,
            },
        );
        Ok(Ok(()))
    }

    async fn load(&self, job_id: &str) -> Result<Option<Job>> {
        Ok(self.store.lock().await.jobs.get(job_id).cloned())
    }

    async fn unfinished(&self, quiet_since_ms: i64, limit: usize) -> Result<Vec<String>> {
        let state = self.store.lock().await;
        let mut quiet: Vec<&Job> = state
            .jobs
            .values()
            .filter(|j| !j.is_final() && j.created_ms < quiet_since_ms)
            .filter(|j| {
                state
                    .resent
                    .get(&j.job_id)
                    .is_none_or(|&at| at < quiet_since_ms)
            })
            .collect();
        quiet.sort_by_key(|j| (j.created_ms, j.job_id.clone()));
        Ok(quiet
            .into_iter()
            .take(limit)
            .map(|j| j.job_id.clone())
            .collect())
    }

    async fn mark_resent(&self, job: &Job, now_ms: i64) -> Result<()> {
        let mut state = self.store.lock().await;
        if state.jobs.get(&job.job_id).is_some_and(|j| !j.is_final()) {
            state.resent.insert(job.job_id.clone(), now_ms);
        }
        Ok(())
    }

    async fn list(&self, owner: &AccountId, limit: i32, cursor: Option<&str>) -> Result<Page<Job>> {
        let state = self.store.lock().await;
        let mine: Vec<&Job> = state.jobs.values().filter(|j| &j.owner == owner).collect();
        page_of(mine, |j| (j.created_ms, j.job_id.as_str()), limit, cursor)
    }

    async fn start(&self, job_id: &str, _now_ms: i64) -> Result<bool> {
        let mut state = self.store.lock().await;
        match state.jobs.get_mut(job_id) {
            Some(job) if job.status.can_move_to(JobStatus::Processing) => {
                job.status = JobStatus::Processing;
                job.attempts += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn complete(
        &self,
        job: &Job,
        stamped_key: &str,
        sha256: &str,
        now_ms: i64,
    ) -> Result<bool> {
        let mut state = self.store.lock().await;
        if state.crash_completes > 0 {
            state.crash_completes -= 1;
            return Err(Error::table("injected: the worker died before recording"));
        }
        let movement = Movement::new(&job.account, MovementKind::Spend, 1, &job.job_id);
        let processing = state
            .jobs
            .get(&job.job_id)
            .is_some_and(|j| j.status == JobStatus::Processing);
        let serial_reserved = state
            .serials
            .get(&job.serial)
            .is_some_and(|s| s.state == SerialState::Reserved && s.job_id == job.job_id);
        if !processing || !serial_reserved || state.check(&movement).is_err() {
            return Ok(false);
        }
        state.apply(&movement);
        let stored = state.jobs.get_mut(&job.job_id).expect("checked above");
        stored.status = JobStatus::Done;
        stored.stamped_key = Some(stamped_key.to_string());
        stored.sha256 = Some(sha256.to_string());
        stored.finished_ms = Some(now_ms);
        let serial = state.serials.get_mut(&job.serial).expect("checked above");
        serial.state = SerialState::Bound;
        serial.sha256 = Some(sha256.to_string());
        serial.stamped_ms = Some(now_ms);
        Ok(true)
    }

    async fn fail(&self, job: &Job, code: &str, message: &str, now_ms: i64) -> Result<bool> {
        let mut state = self.store.lock().await;
        let movement = Movement::new(&job.account, MovementKind::Release, 1, &job.job_id);
        let may_fail = state
            .jobs
            .get(&job.job_id)
            .is_some_and(|j| j.status.can_move_to(JobStatus::Failed));
        let serial_reserved = state
            .serials
            .get(&job.serial)
            .is_some_and(|s| s.state == SerialState::Reserved);
        if !may_fail || !serial_reserved || state.check(&movement).is_err() {
            return Ok(false);
        }
        state.apply(&movement);
        let stored = state.jobs.get_mut(&job.job_id).expect("checked above");
        stored.status = JobStatus::Failed;
        stored.error_code = Some(code.to_string());
        stored.error_message = Some(message.chars().take(500).collect());
        stored.finished_ms = Some(now_ms);
        state
            .serials
            .get_mut(&job.serial)
            .expect("checked above")
            .state = SerialState::Void;
        Ok(true)
    }

    async fn record_dead_letter(&self, record: &DeadLetter) -> Result<()> {
        self.store
            .lock()
            .await
            .dead_letters
            .insert(record.message_id.clone(), record.clone());
        Ok(())
    }

    async fn count_finished(&self, now_ms: i64) -> Result<()> {
        *self
            .store
            .lock()
            .await
            .finished_per_minute
            .entry(now_ms.div_euclid(60_000))
            .or_default() += 1;
        Ok(())
    }

    async fn drain_per_minute(&self, now_ms: i64) -> Result<u64> {
        let state = self.store.lock().await;
        let minute = now_ms.div_euclid(60_000);
        let count = |m: i64| state.finished_per_minute.get(&m).copied().unwrap_or(0);
        Ok(meterai_core::jobs::drain_per_minute(
            count(minute - 1),
            count(minute),
            now_ms.rem_euclid(60_000),
        ))
    }
}

/// [`JobQueue`] in memory: messages in order; sending can be made to fail.
#[derive(Debug, Clone, Default)]
pub struct MemoryQueue {
    inner: Arc<Mutex<QueueState>>,
}

#[derive(Debug, Default)]
struct QueueState {
    messages: VecDeque<String>,
    unavailable: bool,
}

impl MemoryQueue {
    /// While set, `send` fails as an unreachable queue does.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.inner.lock().unwrap().unavailable = unavailable;
    }
    /// Receives the oldest message (the test plays the worker).
    pub fn receive(&self) -> Option<String> {
        self.inner.lock().unwrap().messages.pop_front()
    }
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().messages.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn send(&self, job_id: &str, _payer: &AccountId) -> Result<()> {
        tokio::task::yield_now().await;
        let mut queue = self.inner.lock().unwrap();
        if queue.unavailable {
            return Err(Error::queue("the queue is unreachable"));
        }
        queue.messages.push_back(job_id.to_string());
        Ok(())
    }

    async fn depth(&self) -> i64 {
        self.len() as i64
    }
}

/// [`Documents`] in memory: objects by key, and how often each was written.
#[derive(Debug, Clone, Default)]
pub struct MemoryDocuments {
    inner: Arc<Mutex<HashMap<String, Object>>>,
    /// Upload names, and the download names stamped files were stored with.
    names: Arc<Mutex<HashMap<String, String>>>,
    /// Bytes of object bodies handed out by `read`, as S3 would bill them.
    bytes_read: Arc<std::sync::atomic::AtomicU64>,
}

/// An object's bytes and how many times they were written.
type Object = (Vec<u8>, usize);

/// An object's version as S3 would name it: a digest of its bytes.
fn version_of(bytes: &[u8]) -> String {
    meterai_core::ids::sha256_hex(bytes)[..32].to_string()
}

impl MemoryDocuments {
    /// How many bytes of object bodies `read` has handed out.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The name `key` downloads as, if it was stored with one.
    pub fn download_name(&self, key: &str) -> Option<String> {
        self.names
            .lock()
            .unwrap()
            .get(&format!("download:{key}"))
            .cloned()
    }

    /// Puts an object as an upload would.
    pub fn put(&self, key: &str, bytes: Vec<u8>) {
        self.inner
            .lock()
            .unwrap()
            .insert(key.to_string(), (bytes, 0));
    }
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.inner.lock().unwrap().get(key).map(|(b, _)| b.clone())
    }
    pub fn remove(&self, key: &str) {
        self.inner.lock().unwrap().remove(key);
    }
    /// The keys under `prefix`, sorted.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .inner
            .lock()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        keys.sort();
        keys
    }
    /// How many times `store` wrote `key`.
    pub fn writes(&self, key: &str) -> usize {
        self.inner.lock().unwrap().get(key).map_or(0, |(_, n)| *n)
    }
}

#[async_trait]
impl Documents for MemoryDocuments {
    fn upload_key(&self, owner: &AccountId, document_id: &str) -> String {
        format!("uploads/{owner}/{document_id}.pdf")
    }

    fn stamped_key(&self, account: &AccountId, job_id: &str, sha256: &str) -> String {
        format!(
            "stamped/{account}/{job_id}-{}.pdf",
            &sha256[..sha256.len().min(16)]
        )
    }

    async fn head(&self, key: &str) -> Result<Option<UploadHead>> {
        tokio::task::yield_now().await;
        Ok(self
            .inner
            .lock()
            .unwrap()
            .get(key)
            .map(|(b, _)| UploadHead {
                size: b.len() as u64,
                head: b[..b.len().min(5)].to_vec(),
                version: Some(version_of(b)),
            }))
    }

    async fn read(
        &self,
        key: &str,
        max_bytes: u64,
        version: Option<&str>,
    ) -> Result<Option<Vec<u8>>> {
        tokio::task::yield_now().await;
        match self.get(key) {
            Some(bytes) => {
                // S3 checks `If-Match` and says the size in its headers:
                // both refuse before the body.
                if version.is_some_and(|v| v != version_of(&bytes)) {
                    return Err(meterai_app::stamping::document_changed());
                }
                meterai_app::stamping::check_pdf_size(bytes.len() as u64, max_bytes as usize)?;
                self.bytes_read
                    .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
                Ok(Some(bytes))
            }
            None => Ok(None),
        }
    }

    async fn store(&self, key: &str, pdf: Vec<u8>, download_name: Option<&str>) -> Result<()> {
        tokio::task::yield_now().await;
        let mut objects = self.inner.lock().unwrap();
        let writes = objects.get(key).map_or(0, |(_, n)| *n);
        objects.insert(key.to_string(), (pdf, writes + 1));
        if let Some(name) = download_name {
            self.names
                .lock()
                .unwrap()
                .insert(format!("download:{key}"), name.to_string());
        }
        Ok(())
    }

    async fn remember_name(&self, upload_key: &str, filename: &str) -> Result<()> {
        self.names
            .lock()
            .unwrap()
            .insert(format!("upload:{upload_key}"), filename.to_string());
        Ok(())
    }

    async fn name_of(&self, upload_key: &str) -> Result<Option<String>> {
        Ok(self
            .names
            .lock()
            .unwrap()
            .get(&format!("upload:{upload_key}"))
            .cloned())
    }

    async fn upload_url(&self, key: &str, _ttl: std::time::Duration, size: u64) -> Result<String> {
        Ok(format!("memory://put/{key}?content-length={size}"))
    }

    async fn download_url(&self, key: &str, _ttl: std::time::Duration) -> Result<String> {
        Ok(format!("memory://get/{key}"))
    }
}

/// An idempotency record.
#[derive(Debug, Clone)]
struct KeyRecord {
    hash: String,
    /// None while the request runs.
    response: Option<StoredResponse>,
    locked_until_ms: i64,
    expires_ms: i64,
}

/// [`IdempotencyKeys`] in memory, with the table's claim condition: a key
/// is claimed if it is new, expired, or held by a stale lock of the same
/// request.
#[derive(Debug, Clone, Default)]
pub struct MemoryIdempotencyKeys {
    records: Arc<Mutex<HashMap<KeyId, KeyRecord>>>,
}

/// (account, scope, key).
type KeyId = (AccountId, String, String);

fn key_of(scope: &KeyScope<'_>) -> KeyId {
    (
        scope.account.clone(),
        scope.scope.to_string(),
        scope.key.to_string(),
    )
}

#[async_trait]
impl IdempotencyKeys for MemoryIdempotencyKeys {
    async fn claim(&self, scope: &KeyScope<'_>, now_ms: i64) -> Result<Claimed> {
        tokio::task::yield_now().await;
        let mut records = self.records.lock().unwrap();
        let id = key_of(scope);
        let claimable = match records.get(&id) {
            None => true,
            // The table keeps whole seconds: `expires_at < now_s`.
            Some(r) if r.expires_ms / 1000 < now_ms / 1000 => true,
            Some(r) => r.response.is_none() && r.hash == scope.hash && r.locked_until_ms < now_ms,
        };
        if claimable {
            records.insert(
                id,
                KeyRecord {
                    hash: scope.hash.to_string(),
                    response: None,
                    locked_until_ms: now_ms + idempotency::LOCK_MS,
                    expires_ms: now_ms + idempotency::RECORD_TTL_MS,
                },
            );
            return Ok(Claimed::Run);
        }
        let record = &records[&id];
        Ok(if record.hash != scope.hash {
            Claimed::Reused
        } else {
            match &record.response {
                Some(response) => Claimed::Replay(response.clone()),
                None => Claimed::InProgress,
            }
        })
    }

    async fn complete(&self, scope: &KeyScope<'_>, response: &StoredResponse) -> Result<()> {
        tokio::task::yield_now().await;
        if let Some(record) = self.records.lock().unwrap().get_mut(&key_of(scope)) {
            record.response = Some(response.clone());
        }
        Ok(())
    }

    async fn release(&self, scope: &KeyScope<'_>) {
        // As the table does: only a claim still in progress for this request.
        let mut records = self.records.lock().unwrap();
        let id = key_of(scope);
        if records
            .get(&id)
            .is_some_and(|r| r.response.is_none() && r.hash == scope.hash)
        {
            records.remove(&id);
        }
    }
}

/// [`Customers`] in memory.
#[derive(Debug, Clone)]
pub struct MemoryCustomers {
    store: Store,
}

#[async_trait]
impl Customers for MemoryCustomers {
    async fn create(&self, customer: &Customer) -> Result<()> {
        let mut state = self.store.lock().await;
        // The table's conditional put fails as any other table error would.
        if state.customers.contains_key(&customer.customer_id) {
            return Err(Error::table("the new customer's id exists"));
        }
        state
            .customers
            .insert(customer.customer_id.clone(), customer.clone());
        Ok(())
    }

    async fn load(&self, customer_id: &str) -> Result<Option<Customer>> {
        Ok(self.store.lock().await.customers.get(customer_id).cloned())
    }

    async fn list(
        &self,
        reseller_id: &str,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<Customer>> {
        let state = self.store.lock().await;
        let theirs: Vec<&Customer> = state
            .customers
            .values()
            .filter(|c| c.reseller_id == reseller_id)
            .collect();
        page_of(
            theirs,
            |c| (c.created_ms, c.customer_id.as_str()),
            limit,
            cursor,
        )
    }

    async fn balance(&self, account: &AccountId) -> Result<Balance> {
        Ok(self.store.balance(account).await)
    }

    async fn sell(
        &self,
        pool: &AccountId,
        customer: &AccountId,
        sale: &Sale,
    ) -> Result<std::result::Result<(), SaleRejected>> {
        let mut state = self.store.lock().await;
        let reference = sale.reference();
        let sell = Movement::new(pool, MovementKind::Sell, sale.quantity, &reference);
        let receive = Movement::new(customer, MovementKind::Receive, sale.quantity, &reference);
        // The ledger entries' conditions come first, as in the table's transaction.
        for movement in [&sell, &receive] {
            if state
                .ledger
                .contains_key(&(movement.account.clone(), movement.ledger_sk()))
            {
                return Ok(Err(SaleRejected::AlreadyApplied));
            }
        }
        if state.check(&sell).is_err() {
            return Ok(Err(SaleRejected::Insufficient));
        }
        state.apply(&sell);
        state.apply(&receive);
        Ok(Ok(()))
    }
}

/// [`Corrections`] and [`QuotaReads`] in memory.
#[derive(Debug, Clone)]
pub struct MemoryQuota {
    store: Store,
    /// Balance reads still to see a movement in flight (each one a stamp
    /// more available than the last), as a busy account does.
    moving_reads: Arc<std::sync::atomic::AtomicUsize>,
}

impl MemoryQuota {
    /// The next `n` balance reads each see the account move.
    pub fn moving_for(&self, n: usize) {
        self.moving_reads
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// The reason and operator kept with a correction's ledger entry.
    pub async fn note(&self, account: &AccountId, ledger_sk: &str) -> Option<(String, String)> {
        let state = self.store.lock().await;
        state
            .correction_notes
            .get(&(account.clone(), ledger_sk.to_string()))
            .cloned()
    }
}

#[async_trait]
impl Corrections for MemoryQuota {
    async fn correct(
        &self,
        correction: &Correction,
        _now_ms: i64,
    ) -> Result<std::result::Result<(), CorrectionRejected>> {
        let mut state = self.store.lock().await;
        let movement = &correction.movement;
        let key = (movement.account.clone(), movement.ledger_sk());
        // The ledger entry's condition comes first, as in the table's
        // transaction: a repeated ticket is named as such.
        if state.ledger.contains_key(&key) {
            return Ok(Err(CorrectionRejected::AlreadyApplied));
        }
        if state.check(movement).is_err() {
            return Ok(Err(CorrectionRejected::Insufficient));
        }
        state.apply(movement);
        state.correction_notes.insert(
            key,
            (correction.reason.clone(), correction.operator.clone()),
        );
        Ok(Ok(()))
    }

    async fn audit(&self, account: &AccountId) -> Result<AuditReport> {
        Ok(self.store.audit(account).await)
    }
}

#[async_trait]
impl QuotaReads for MemoryQuota {
    async fn balance(&self, account: &AccountId) -> Result<Balance> {
        let mut balance = self.store.balance(account).await;
        let left = self.moving_reads.load(std::sync::atomic::Ordering::SeqCst);
        if left > 0 {
            self.moving_reads
                .store(left - 1, std::sync::atomic::Ordering::SeqCst);
            // A movement in flight: each read sees a different balance.
            balance.available += left as i64;
            balance.purchased += left as i64;
        }
        Ok(balance)
    }

    async fn ledger_changes(
        &self,
        account: &AccountId,
        max: usize,
    ) -> Result<Option<Vec<Balance>>> {
        let changes = self.store.lock().await.ledger_changes(account);
        Ok((changes.len() <= max).then_some(changes))
    }
}

/// [`Events`] in memory: events, endpoints, and the parked event ids in order.
#[derive(Debug, Clone)]
pub struct MemoryEvents {
    inner: Arc<Mutex<EventsState>>,
}

#[derive(Debug)]
struct EventsState {
    events: HashMap<String, Event>,
    last_errors: HashMap<String, String>,
    endpoints: HashMap<String, Endpoint>,
    parked: Vec<String>,
    has_dead_letter_queue: bool,
}

impl Default for MemoryEvents {
    fn default() -> Self {
        Self {
            inner: Arc::new(Mutex::new(EventsState {
                events: HashMap::new(),
                last_errors: HashMap::new(),
                endpoints: HashMap::new(),
                parked: Vec::new(),
                has_dead_letter_queue: true,
            })),
        }
    }
}

impl MemoryEvents {
    /// Records an event (as the outbox does: once per id).
    pub fn insert(&self, event: Event) {
        self.inner
            .lock()
            .unwrap()
            .events
            .entry(event.event_id.clone())
            .or_insert(event);
    }
    pub fn set_endpoint(&self, reseller_id: &str, endpoint: Endpoint) {
        self.inner
            .lock()
            .unwrap()
            .endpoints
            .insert(reseller_id.to_string(), endpoint);
    }
    pub fn endpoint_of(&self, reseller_id: &str) -> Option<Endpoint> {
        self.inner
            .lock()
            .unwrap()
            .endpoints
            .get(reseller_id)
            .cloned()
    }
    pub fn event(&self, event_id: &str) -> Option<Event> {
        self.inner.lock().unwrap().events.get(event_id).cloned()
    }
    pub fn last_error(&self, event_id: &str) -> Option<String> {
        self.inner
            .lock()
            .unwrap()
            .last_errors
            .get(event_id)
            .cloned()
    }
    /// Takes the parked event ids (an operator's replay).
    pub fn take_parked(&self) -> Vec<String> {
        std::mem::take(&mut self.inner.lock().unwrap().parked)
    }
    /// A deployment without a webhooks dead-letter queue.
    pub fn without_dead_letter_queue(self) -> Self {
        self.inner.lock().unwrap().has_dead_letter_queue = false;
        self
    }
}

#[async_trait]
impl Events for MemoryEvents {
    async fn load(&self, event_id: &str) -> Result<Option<Event>> {
        tokio::task::yield_now().await;
        Ok(self.event(event_id))
    }

    async fn endpoint(&self, reseller_id: &str) -> Result<Option<Endpoint>> {
        // As the table's adapter: an id of the wrong shape names no reseller.
        if !meterai_core::ids::is_id(reseller_id, "rsl_") {
            return Ok(None);
        }
        Ok(self.endpoint_of(reseller_id))
    }

    async fn disable_endpoint(&self, reseller_id: &str) -> Result<()> {
        if let Some(endpoint) = self.inner.lock().unwrap().endpoints.get_mut(reseller_id) {
            endpoint.enabled = false;
        }
        Ok(())
    }

    async fn record_attempt(
        &self,
        event_id: &str,
        attempt: Attempt<'_>,
        _now_ms: i64,
    ) -> Result<()> {
        let mut state = self.inner.lock().unwrap();
        if let Some(event) = state.events.get_mut(event_id) {
            event.attempts += 1;
            if attempt == Attempt::Delivered {
                event.status = EventStatus::Delivered;
            }
        }
        if let Attempt::Failed(error) = attempt {
            state
                .last_errors
                .insert(event_id.to_string(), error.to_string());
        }
        Ok(())
    }

    async fn park(&self, event_id: &str) -> Result<bool> {
        let mut state = self.inner.lock().unwrap();
        if !state.has_dead_letter_queue {
            return Ok(false);
        }
        state.parked.push(event_id.to_string());
        Ok(true)
    }
}

/// A delivery as the endpoint received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub url: String,
    pub webhook_id: String,
    pub timestamp: i64,
    pub signature: String,
    pub body: String,
}

/// [`WebhookClient`] in memory: answers from a script (200 once it runs
/// out) and keeps every delivery it was given.
#[derive(Debug, Clone, Default)]
pub struct MemoryWebhookClient {
    inner: Arc<Mutex<(VecDeque<Answer>, Vec<Received>)>>,
}

/// An endpoint's HTTP status, or why none came.
type Answer = std::result::Result<u16, String>;

impl MemoryWebhookClient {
    /// The next answers, in order (`Err` for no answer at all).
    pub fn answer(&self, answers: impl IntoIterator<Item = Answer>) {
        self.inner.lock().unwrap().0.extend(answers);
    }
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().1.clone()
    }
}

#[async_trait]
impl WebhookClient for MemoryWebhookClient {
    async fn post(&self, delivery: &Delivery<'_>) -> std::result::Result<u16, String> {
        tokio::task::yield_now().await;
        let mut inner = self.inner.lock().unwrap();
        inner.1.push(Received {
            url: delivery.url.to_string(),
            webhook_id: delivery.webhook_id.to_string(),
            timestamp: delivery.timestamp,
            signature: delivery.signature.to_string(),
            body: delivery.body.to_string(),
        });
        inner.0.pop_front().unwrap_or(Ok(200))
    }
}

/// [`Registry`] in memory: the serials the jobs bound.
#[derive(Debug, Clone)]
pub struct MemoryRegistry {
    store: Store,
}

#[async_trait]
impl Registry for MemoryRegistry {
    async fn bound(&self, serial: &Serial) -> Result<Option<SerialRecord>> {
        let state = self.store.lock().await;
        Ok(state
            .serials
            .get(serial)
            .filter(|e| e.state == SerialState::Bound)
            .map(|e| SerialRecord {
                serial: serial.to_string(),
                valid: true,
                stamped_at: meterai_core::time::rfc3339(e.stamped_ms.unwrap_or(0)),
                sha256: e.sha256.clone().unwrap_or_default(),
                page: e.page,
                channel: e.channel.clone(),
            }))
    }
}
