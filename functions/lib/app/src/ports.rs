//! The ports the use cases are written against.

use async_trait::async_trait;
use meterai_core::accounts::Username;
use meterai_core::events::{Event, EventType};
use meterai_core::jobs::Job;
use meterai_core::orders::{Order, OrderStatus, PaymentLink, Refund};
use meterai_core::payments::GatewayStatus;
use meterai_core::quota::{AuditReport, Balance, Correction, Page};
use meterai_core::resellers::{Customer, Sale};
use meterai_core::serial::SerialRecord;
use meterai_core::webhooks::Secret;
use meterai_core::{AccountId, Result, Serial};

/// Now, in epoch milliseconds.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        meterai_core::time::now_ms()
    }
}

/// Whether a credit happened now or had happened before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credited {
    Now,
    Before,
}

/// A refund lost its race: the order or the balance changed since the
/// snapshot it was decided on. Decide again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundLost;

/// Orders and the quota movements they cause.
#[async_trait]
pub trait Orders: Send + Sync {
    /// Records a new order (its id is fresh).
    async fn create(&self, order: &Order) -> Result<()>;
    async fn load(&self, order_id: &str) -> Result<Option<Order>>;
    /// The account's orders, newest first; `cursor` is the previous page's.
    async fn list(
        &self,
        account: &AccountId,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<Order>>;
    /// One step, all or nothing: the order becomes paid (unless it was) and
    /// its quantity is credited to its account with a ledger entry keyed by
    /// the order (so never twice).
    async fn credit(&self, order: &Order, transaction_id: &str, now_ms: i64) -> Result<Credited>;
    /// A pending, unpaid order is closed as `status`; false if it was not pending.
    async fn close(&self, order_id: &str, status: OrderStatus, now_ms: i64) -> Result<bool>;
    /// The order and its buyer's balance, from one consistent snapshot.
    async fn with_balance(
        &self,
        order_id: &str,
        account: &AccountId,
    ) -> Result<(Option<Order>, Balance)>;
    /// One step, all or nothing: the refund is recorded as `order`'s
    /// number `refund.seq` (only if the order has had exactly `seq - 1` and
    /// still has `refund.quantity` unrefunded), the order's refunded quantity
    /// grows, and the stamps move from available to refunded (only if that
    /// many are available).
    async fn refund(
        &self,
        order: &Order,
        refund: &Refund,
    ) -> Result<std::result::Result<(), RefundLost>>;
    /// The order's refund number `seq`.
    async fn refund_number(&self, order_id: &str, seq: i64) -> Result<Option<Refund>>;
    /// Keeps the gateway's payment page of a pending order.
    async fn attach_payment(&self, order_id: &str, link: &PaymentLink) -> Result<()>;
    /// Orders that may still be pending (some may have been paid or closed
    /// since: callers load each) whose mark is older than `quiet_since_ms`,
    /// oldest mark first, at most `limit`. An order is marked when created.
    async fn pending(&self, quiet_since_ms: i64, limit: usize) -> Result<Vec<PendingMark>>;
    /// Moves the order's mark to `since_ms` (looked at now: back of the
    /// line). Nothing happens if the mark has moved or gone meanwhile.
    async fn requeue_pending(&self, mark: &PendingMark, since_ms: i64) -> Result<()>;
    /// The order is no longer pending: stop listing it in [`Orders::pending`].
    async fn forget_pending(&self, mark: &PendingMark) -> Result<()>;
    /// Whether a read of this pending order may ask the gateway about it
    /// now: true for one caller at most once per `every_ms` (the time is
    /// kept on the order), false if it is not pending.
    async fn claim_read_check(&self, order_id: &str, now_ms: i64, every_ms: i64) -> Result<bool>;
}

/// An order listed as awaiting payment, and the time its place in the line
/// is kept by (its creation, or when it was last looked at plus a delay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMark {
    pub order_id: String,
    pub since_ms: i64,
}

/// The payment gateway (Midtrans: Snap and the status API).
#[async_trait]
pub trait Gateway: Send + Sync {
    /// Opens the gateway's payment page for a pending order.
    async fn open_payment(&self, order: &Order) -> Result<PaymentLink>;
    /// What the gateway knows of the order's payment. An unreachable or
    /// garbled gateway is `Unavailable`: the order stays as it is.
    async fn status(&self, order_id: &str) -> Result<GatewayStatus>;
}

/// One payment notification as received, whatever came of it (kept 90 days,
/// so "paid but no quota" can always be traced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    /// The order it names, or `unknown`.
    pub order_id: String,
    pub gateway: &'static str,
    /// What came of it (`credited`, ...) or the error code.
    pub outcome: String,
    pub signature_valid: bool,
    pub received_ms: i64,
    /// The gateway's own fields, as sent (bounded).
    pub fields: Vec<(&'static str, String)>,
}

#[async_trait]
pub trait PaymentLog: Send + Sync {
    /// Best effort: a failure is logged, never the payment's fault.
    async fn record(&self, record: &PaymentRecord);
}

/// Where reseller events go. Emitting is idempotent per (kind, reference).
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Emits the event: a webhook if `account` is a reseller's pool, an
    /// e-mail if it is a portal user's (customers of a reseller get neither;
    /// their reseller hears of their jobs). Both are queued, never sent
    /// in the caller's path, and recorded once per (kind, reference).
    async fn emit_for_account(
        &self,
        account: &AccountId,
        kind: EventType,
        reference: &str,
        data: serde_json::Value,
    ) -> Result<()>;
}

/// Why a job could not be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptRejected {
    /// The payer has no stamp available.
    Insufficient,
    /// The job id (the request's: a retry) or the fresh serial (astronomically
    /// unlikely) exists already.
    Collision,
}

/// A dead-lettered message and what was done about it (kept 30 days).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub message_id: String,
    pub job_id: Option<String>,
    pub outcome: String,
    /// The first KiB of the body, as received.
    pub body: String,
    pub receive_count: i64,
    pub recorded_ms: i64,
}

/// Stamp jobs, their serial numbers and the stamps they hold.
#[async_trait]
pub trait Jobs: Send + Sync {
    /// One step, all or nothing: one stamp moves from the payer's
    /// (`job.account`) available to reserved, the job is written `queued`
    /// and its serial is claimed for it (both only if new). The job is
    /// listed as unfinished until `complete` or `fail` (same steps) ends it.
    async fn accept(&self, job: &Job) -> Result<std::result::Result<(), AcceptRejected>>;
    /// Ids of unfinished jobs accepted before `quiet_since_ms` whose message
    /// was not sent again since then either (at most `limit`, oldest first).
    async fn unfinished(&self, quiet_since_ms: i64, limit: usize) -> Result<Vec<String>>;
    /// Notes that `job`'s message was sent again at `now_ms`.
    async fn mark_resent(&self, job: &Job, now_ms: i64) -> Result<()>;
    async fn load(&self, job_id: &str) -> Result<Option<Job>>;
    /// The owner's jobs, newest first; `cursor` is the previous page's.
    async fn list(&self, owner: &AccountId, limit: i32, cursor: Option<&str>) -> Result<Page<Job>>;
    /// `queued` (or `processing`, after a worker died) -> `processing`,
    /// counting the attempt; false if the job is in neither state.
    async fn start(&self, job_id: &str, now_ms: i64) -> Result<bool>;
    /// One step, all or nothing: the job becomes `done` with its stored
    /// file (only from `processing`), its stamp moves from reserved to spent
    /// and its serial is bound to the file's SHA-256 (only if still
    /// reserved for this job). False if any condition failed: done before.
    async fn complete(
        &self,
        job: &Job,
        stamped_key: &str,
        sha256: &str,
        now_ms: i64,
    ) -> Result<bool>;
    /// One step, all or nothing: the job becomes `failed` with `code` (only
    /// from a state a job may fail from), its stamp returns from reserved to
    /// available and its serial is voided. False if the job was final.
    async fn fail(&self, job: &Job, code: &str, message: &str, now_ms: i64) -> Result<bool>;
    async fn record_dead_letter(&self, record: &DeadLetter) -> Result<()>;
    /// Counts one job ended (done or failed) in the minute of `now_ms`: the
    /// queue's measured drain rate.
    async fn count_finished(&self, now_ms: i64) -> Result<()>;
    /// Jobs ended per minute lately: the last whole minute's count, or the
    /// current minute's pace if faster (a ramp shows there first).
    async fn drain_per_minute(&self, now_ms: i64) -> Result<u64>;
}

/// The durable queue of job messages.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Queues a job's message. `payer` is its message group: a fair queue
    /// takes turns between accounts, so one account's burst (a reseller's
    /// thousand documents) does not delay everyone else's.
    async fn send(&self, job_id: &str, payer: &AccountId) -> Result<()>;
    /// Messages waiting or in flight (an estimate; 0 when unknown).
    async fn depth(&self) -> i64;
}

/// The first bytes and the size of an uploaded object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadHead {
    pub size: u64,
    /// Up to the first five bytes (empty for an empty object).
    pub head: Vec<u8>,
    /// What names these exact bytes (S3's ETag); a replaced object has another.
    pub version: Option<String>,
}

/// Where documents are uploaded and stamped ones kept. The store decides its
/// own key layout; the keys it returns are opaque to the use cases.
#[async_trait]
pub trait Documents: Send + Sync {
    /// Where `owner`'s upload `document_id` is.
    fn upload_key(&self, owner: &AccountId, document_id: &str) -> String;
    /// Where the stamped file of `job_id` paid by `account`, with this
    /// SHA-256 (hex), is kept. Each distinct file has its own key, so two
    /// attempts at one job never overwrite each other: the job records the
    /// key of the file whose hash its serial names.
    fn stamped_key(&self, account: &AccountId, job_id: &str, sha256: &str) -> String;
    /// The size and first bytes of an object; None if there is none.
    async fn head(&self, key: &str) -> Result<Option<UploadHead>>;
    /// The whole object; None if there is none. An upload can be replaced
    /// after it was accepted: one larger than `max_bytes` is refused (413
    /// `DOCUMENT_TOO_LARGE`) and one that is not `version` (when given) is
    /// refused (`DOCUMENT_CHANGED`), both before its body is read.
    async fn read(
        &self,
        key: &str,
        max_bytes: u64,
        version: Option<&str>,
    ) -> Result<Option<Vec<u8>>>;
    /// Stores a PDF; it downloads as `download_name` when one is given.
    async fn store(&self, key: &str, pdf: Vec<u8>, download_name: Option<&str>) -> Result<()>;
    /// Remembers the name the user gave the upload at `upload_key`.
    async fn remember_name(&self, upload_key: &str, filename: &str) -> Result<()>;
    /// The name the user gave the upload at `upload_key`, if remembered.
    async fn name_of(&self, upload_key: &str) -> Result<Option<String>>;
    /// A URL to `PUT` a PDF of exactly `size` bytes at `key`, for `ttl`.
    async fn upload_url(&self, key: &str, ttl: std::time::Duration, size: u64) -> Result<String>;
    /// A URL to `GET` `key`, for `ttl`.
    async fn download_url(&self, key: &str, ttl: std::time::Duration) -> Result<String>;
}

/// One idempotency key of one account for one kind of request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyScope<'a> {
    pub account: &'a AccountId,
    /// The kind of request (`orders`, `stamps`, ...): the same key may be
    /// used once per kind.
    pub scope: &'a str,
    pub key: &'a str,
    /// The request's fingerprint.
    pub hash: &'a str,
}

/// An answer kept for replay (its status and body, opaque here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The key is this request's now: run it.
    Run,
    /// The same request was answered: this is the answer.
    Replay(StoredResponse),
    /// The key was used for another request.
    Reused,
    /// The same request is running elsewhere.
    InProgress,
}

/// Idempotency keys (kept a day).
#[async_trait]
pub trait IdempotencyKeys: Send + Sync {
    /// One step: the key becomes this request's if it is new, expired, or
    /// held by a stale lock of the same request; otherwise what it holds.
    async fn claim(&self, scope: &KeyScope<'_>, now_ms: i64) -> Result<Claimed>;
    /// Keeps the answer for repeats.
    async fn complete(&self, scope: &KeyScope<'_>, response: &StoredResponse) -> Result<()>;
    /// Forgets the claim after a failure on our side, so a retry runs again
    /// (best effort: a claim left behind is taken over when its lock expires).
    async fn release(&self, scope: &KeyScope<'_>);
}

/// Why a sale did not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaleRejected {
    /// The pool has fewer available stamps than the sale moves.
    Insufficient,
    /// This sale was applied before.
    AlreadyApplied,
}

/// A reseller's customers and the stamps its pool passes to them.
#[async_trait]
pub trait Customers: Send + Sync {
    /// Records a new customer (its id is fresh).
    async fn create(&self, customer: &Customer) -> Result<()>;
    async fn load(&self, customer_id: &str) -> Result<Option<Customer>>;
    /// The reseller's customers, newest first; `cursor` is the previous page's.
    async fn list(
        &self,
        reseller_id: &str,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<Customer>>;
    async fn balance(&self, account: &AccountId) -> Result<Balance>;
    /// One step, all or nothing: `quantity` available stamps leave the pool
    /// (`sell`) and reach the customer (`receive`), each with a ledger entry
    /// keyed by the sale, so a sale applies once. A repeat is reported as
    /// such even if the pool could no longer afford it.
    async fn sell(
        &self,
        pool: &AccountId,
        customer: &AccountId,
        sale: &Sale,
    ) -> Result<std::result::Result<(), SaleRejected>>;
}

/// Why an operator's correction did not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrectionRejected {
    /// A withdrawal of more stamps than the account has available.
    Insufficient,
    /// A correction with this ticket was applied before.
    AlreadyApplied,
}

/// The operators' manual corrections of an account's quota.
#[async_trait]
pub trait Corrections: Send + Sync {
    /// One step, all or nothing: the balance moves and the ledger entry
    /// (with the reason and the operator) is written under a key derived
    /// from the ticket, so a correction applies once.
    async fn correct(
        &self,
        correction: &Correction,
        now_ms: i64,
    ) -> Result<std::result::Result<(), CorrectionRejected>>;
    /// The balance against the sum of its ledger.
    async fn audit(&self, account: &AccountId) -> Result<AuditReport>;
}

/// Reads for auditing an account while it may be moving.
#[async_trait]
pub trait QuotaReads: Send + Sync {
    /// The balance, read strongly consistent.
    async fn balance(&self, account: &AccountId) -> Result<Balance>;
    /// Every ledger entry's change, or `None` when there are more than
    /// `max` (a pool too large to sum within one audit).
    async fn ledger_changes(&self, account: &AccountId, max: usize)
        -> Result<Option<Vec<Balance>>>;
}

/// Where a reseller's events go.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: Option<String>,
    /// False after the endpoint answered 410 Gone (until it is set again).
    pub enabled: bool,
    pub secret: Secret,
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt<'a> {
    Delivered,
    /// Not delivered, and why (kept on the event for the operator).
    Failed(&'a str),
}

/// Recorded outbound events, their resellers' endpoints and where an event
/// waits for a replay.
#[async_trait]
pub trait Events: Send + Sync {
    async fn load(&self, event_id: &str) -> Result<Option<Event>>;
    /// The reseller's endpoint; None if there is no such reseller.
    async fn endpoint(&self, reseller_id: &str) -> Result<Option<Endpoint>>;
    /// Stops deliveries to the reseller's endpoint (it answered 410 Gone).
    async fn disable_endpoint(&self, reseller_id: &str) -> Result<()>;
    /// Counts an attempt; `Delivered` also marks the event delivered.
    async fn record_attempt(&self, event_id: &str, attempt: Attempt<'_>, now_ms: i64)
        -> Result<()>;
    /// Puts the event where a replay finds it (the webhooks dead-letter
    /// queue); false if this deployment has no such place.
    async fn park(&self, event_id: &str) -> Result<bool>;
}

/// A signed delivery, as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery<'a> {
    /// A checked endpoint URL.
    pub url: &'a str,
    pub webhook_id: &'a str,
    pub timestamp: i64,
    pub signature: &'a str,
    pub body: &'a str,
}

/// The HTTP client that POSTs deliveries.
#[async_trait]
pub trait WebhookClient: Send + Sync {
    /// The endpoint's HTTP status, or why no answer came.
    async fn post(&self, delivery: &Delivery<'_>) -> std::result::Result<u16, String>;
}

/// The public registry of serial numbers (read only).
#[async_trait]
pub trait Registry: Send + Sync {
    /// The serial's record if it is bound to a stamped file (not if it is
    /// only reserved for a job, or its job failed).
    async fn bound(&self, serial: &Serial) -> Result<Option<SerialRecord>>;
}

/// Where a confirmation or reset code went (masked, as the provider shows it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CodeSentTo {
    /// `email` or `sms`.
    pub medium: String,
    /// `b***@m***` or `+62***7890`.
    pub destination: String,
}

/// A signed-in session: a short-lived access token for the API, and (on
/// sign-in) the long-lived refresh token that only the portal's cookie holds.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    pub access_token: String,
    pub expires_in_seconds: i64,
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("expires_in_seconds", &self.expires_in_seconds)
            .finish_non_exhaustive()
    }
}

/// The identity provider's accounts (a Cognito user pool and its portal
/// client). A wrong password, an unknown user and a used name come back as
/// domain errors with their codes.
#[async_trait]
pub trait Accounts: Send + Sync {
    async fn sign_up(&self, username: &Username, password: &str) -> Result<CodeSentTo>;
    async fn confirm(&self, username: &Username, code: &str) -> Result<()>;
    async fn resend_code(&self, username: &Username) -> Result<CodeSentTo>;
    async fn sign_in(&self, username: &Username, password: &str) -> Result<Session>;
    async fn refresh(&self, refresh_token: &str) -> Result<Session>;
    /// Revokes the refresh token (and the access tokens it issued).
    async fn sign_out(&self, refresh_token: &str) -> Result<()>;
    async fn forgot_password(&self, username: &Username) -> Result<CodeSentTo>;
    async fn reset_password(&self, username: &Username, code: &str, password: &str) -> Result<()>;
}
