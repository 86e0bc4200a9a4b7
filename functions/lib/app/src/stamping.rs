//! Stamp jobs from request to stored document.
//!
//! Accept (API, milliseconds): check the uploaded document, then in one step
//! reserve one stamp, write the job `queued` and claim a fresh serial number
//! ([`Jobs::accept`]); then queue the job. If it cannot be queued, the
//! reservation is returned at once.
//!
//! Work (worker, from the queue): a job already final is left alone; the job
//! moves to `processing`; the PDF is read, stamped, signed and stored; only
//! then one step marks the job `done`, spends the stamp and binds the serial
//! to the SHA-256 of the stored file ([`Jobs::complete`]). A permanent
//! failure fails the job and returns the stamp in one step ([`Jobs::fail`]);
//! a passing one is retried by the queue, and a message that reaches the
//! dead-letter queue has its job failed and its stamp returned
//! ([`reconcile_dead_letter`]).

use std::time::Duration;

use meterai_core::error::codes;
use meterai_core::events::EventType;
use meterai_core::jobs::{Job, JobView, Placement};
use meterai_core::quota::Page;
use meterai_core::{AccountId, Error, JobStatus, Result, Serial};
use meterai_pdf::signing::{self, Signer};
use meterai_pdf::stamp::{self, Limits, MarkText, SignatureSpace};
use serde::Serialize;

use crate::ports::{
    AcceptRejected, Clock, Customers, DeadLetter, Documents, JobQueue, Jobs, Outbox,
};
use crate::Outcome;
use meterai_core::resellers::Caller;

/// What the stamping side needs to know.
#[derive(Debug, Clone)]
pub struct StampSettings {
    pub limits: Limits,
    /// Base of the public verification URL printed in the QR code.
    pub verify_base_url: String,
    /// How long upload and download URLs live.
    pub url_ttl: Duration,
    /// Bound on one stamping, so a crafted PDF cannot hold the worker.
    pub stamp_timeout: Duration,
    /// Fault injection for the local stage: a job whose `client_reference`
    /// names a [`Fault`] meets it on its first attempt. The template enables
    /// it on the emulator only.
    pub fault_injection: bool,
    /// The process's CPU slot: one document is stamped at a time, and a
    /// stamping past its deadline keeps the next job off the CPU.
    pub slot: crate::cpu::Slot,
}

/// A fault the local stage can inject into one job (its `client_reference`
/// is the fault's name), on its first attempt only: what a worker killed at
/// that step, a throttled key or a queue that refused would do to it. The
/// chaos run and the end-to-end tests use them against the deployed stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The worker dies after starting the job, before storing anything.
    CrashBeforeStore,
    /// ... after storing the stamped document, before recording it.
    CrashAfterStore,
    /// ... after recording (the stamp spent), before the message is deleted.
    CrashAfterRecord,
    /// The signing key refuses (as KMS does when throttled).
    SigningUnavailable,
    /// The queue refuses the accepted job's message.
    QueueRefuses,
}

impl Fault {
    pub const ALL: [Fault; 5] = [
        Fault::CrashBeforeStore,
        Fault::CrashAfterStore,
        Fault::CrashAfterRecord,
        Fault::SigningUnavailable,
        Fault::QueueRefuses,
    ];

    /// The `client_reference` that asks for it.
    pub fn reference(self) -> &'static str {
        match self {
            Fault::CrashBeforeStore => "chaos:crash-before-store",
            Fault::CrashAfterStore => "chaos:crash-after-store",
            Fault::CrashAfterRecord => "chaos:crash-after-record",
            Fault::SigningUnavailable => "chaos:signing-unavailable",
            Fault::QueueRefuses => "chaos:queue-refuses",
        }
    }

    /// Whether `job` meets this fault now.
    fn strikes(self, settings: &StampSettings, job: &Job) -> bool {
        let struck = settings.fault_injection
            && job.attempts == 0
            && job.client_reference.as_deref() == Some(self.reference());
        if struck {
            tracing::warn!(job_id = %job.job_id, fault = self.reference(), "chaos: injected fault");
        }
        struck
    }

    fn crash(self) -> Outcome {
        Outcome::Retry(format!("injected fault {}", self.reference()))
    }
}

/// The ports stamping works with.
#[derive(Clone, Copy)]
pub struct StampPorts<'a> {
    pub jobs: &'a dyn Jobs,
    pub queue: &'a dyn JobQueue,
    pub documents: &'a dyn Documents,
    pub outbox: &'a dyn Outbox,
    pub clock: &'a dyn Clock,
}

/// 413 for a document over the limit (at upload time and at accept time).
pub fn check_pdf_size(size: u64, max_bytes: usize) -> Result<()> {
    if size > max_bytes as u64 {
        return Err(Error::too_large(
            codes::DOCUMENT_TOO_LARGE,
            format!("the document is {size} bytes; the limit is {max_bytes}"),
        ));
    }
    Ok(())
}

/// The answer to an upload request.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UploadTicket {
    pub document_id: String,
    pub upload_url: String,
    pub method: &'static str,
    pub expires_at: String,
    pub max_bytes: usize,
}

/// The upload is no longer the version that was accepted.
pub fn document_changed() -> Error {
    Error::conflict(
        codes::DOCUMENT_CHANGED,
        "the uploaded document was replaced after the stamp was requested",
    )
}

/// A new document id under the caller's prefix and a URL to upload it to,
/// valid for a file of exactly `size` bytes (the request's name and size
/// were checked at the edge).
pub async fn new_upload(
    ports: &StampPorts<'_>,
    settings: &StampSettings,
    account: &AccountId,
    filename: &str,
    size: u64,
) -> Result<UploadTicket> {
    let document_id = format!("doc_{}", meterai_core::ids::nonce());
    let key = ports.documents.upload_key(account, &document_id);
    ports.documents.remember_name(&key, filename).await?;
    let upload_url = ports
        .documents
        .upload_url(&key, settings.url_ttl, size)
        .await?;
    let expires_at =
        meterai_core::time::rfc3339(ports.clock.now_ms() + settings.url_ttl.as_millis() as i64);
    Ok(UploadTicket {
        document_id,
        upload_url,
        method: "PUT",
        expires_at,
        max_bytes: settings.limits.max_bytes,
    })
}

/// A validated stamp request.
#[derive(Debug, Clone, PartialEq)]
pub struct StampRequest {
    pub document_id: String,
    pub placement: Placement,
    pub reason: Option<String>,
    pub client_reference: Option<String>,
    /// A reseller stamping for one of its customers (from that customer's quota).
    pub customer_id: Option<String>,
}

/// Who a stamp job is for: `owner` uploaded the document and sees the job,
/// `payer`'s quota pays for it, `channel` is what verification shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub owner: AccountId,
    pub payer: AccountId,
    pub channel: String,
    pub reseller_id: Option<String>,
}

impl Actor {
    /// A portal user stamping from their own quota.
    pub fn portal(account: &AccountId) -> Self {
        Actor {
            owner: account.clone(),
            payer: account.clone(),
            channel: "portal".into(),
            reseller_id: None,
        }
    }
}

/// Resolves who a stamp request is for. A reseller pays from the named
/// customer's quota (which must be its own customer: 404 otherwise) or from
/// its pool; a portal user has no customers.
pub async fn actor(
    customers: &dyn Customers,
    caller: &Caller,
    customer_id: Option<&str>,
) -> Result<Actor> {
    match (caller, customer_id) {
        (Caller::Portal(account), None) => Ok(Actor::portal(account)),
        (Caller::Portal(_), Some(customer_id)) => Err(Error::not_found(
            codes::CUSTOMER_NOT_FOUND,
            format!("no customer {customer_id}"),
        )),
        (Caller::Reseller(reseller), customer_id) => {
            let payer = match customer_id {
                Some(id) => crate::resellers::customer_of(customers, reseller, id).await?,
                None => reseller.pool(),
            };
            Ok(Actor {
                owner: reseller.pool(),
                payer,
                channel: reseller.name.clone(),
                reseller_id: Some(reseller.reseller_id.clone()),
            })
        }
    }
}

/// The answer to an accepted stamp request.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Accepted {
    pub job_id: String,
    pub serial: String,
    pub status: JobStatus,
    /// Messages ahead of this job when it was queued (the queue's depth).
    pub queue_position: i64,
    /// When the API promises the job to be final (RFC 3339): see
    /// [`meterai_core::jobs::promised_within_ms`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_by: Option<String>,
}

/// Checks the document, reserves a stamp, writes the job and queues it.
/// `seed` identifies the request (see [`meterai_core::jobs::job_id_for`]): a
/// repeat finds the first attempt's job, queues it again if it is still
/// waiting (its message may be the one that was lost) and answers with it;
/// it never reserves a second stamp.
pub async fn accept(
    ports: &StampPorts<'_>,
    settings: &StampSettings,
    actor: &Actor,
    request: &StampRequest,
    seed: &str,
) -> Result<Accepted> {
    let job_id = meterai_core::jobs::job_id_for(seed);
    let key = ports
        .documents
        .upload_key(&actor.owner, &request.document_id);
    let source_version =
        match check_upload(ports.documents, settings, &key, &request.document_id).await {
            Ok(version) => version,
            // The upload is kept a day; the request's job may outlive it.
            Err(e) => {
                return match earlier_job(ports, &job_id, actor, request).await? {
                    Some(first) => resume(ports, first, 0).await,
                    None => Err(e),
                }
            }
        };
    // The promise rests on the queue as this instance last saw it (a read
    // at most a few seconds old), before the reservation is written with it.
    let (queue_position, drain) = queue_outlook(ports).await;
    let created_ms = ports.clock.now_ms();
    let job = Job {
        job_id,
        account: actor.payer.clone(),
        owner: actor.owner.clone(),
        channel: actor.channel.clone(),
        reseller_id: actor.reseller_id.clone(),
        customer_id: request.customer_id.clone(),
        document_id: request.document_id.clone(),
        status: JobStatus::Queued,
        serial: Serial::generate(),
        source_key: key,
        source_version,
        placement: request.placement,
        reason: request.reason.clone(),
        client_reference: request.client_reference.clone(),
        created_ms,
        finished_ms: None,
        error_code: None,
        error_message: None,
        stamped_key: None,
        sha256: None,
        attempts: 0,
        done_by_ms: Some(
            created_ms + meterai_core::jobs::promised_within_ms(queue_position, drain),
        ),
    };
    let rejected = match ports.jobs.accept(&job).await? {
        Ok(()) => return queue_new(ports, settings, job, queue_position).await,
        Err(rejected) => rejected,
    };
    // Refused: the request's job may exist already (a retry), whatever the
    // payer's balance says now.
    match earlier_job(ports, &job.job_id, actor, request).await? {
        Some(first) => resume(ports, first, queue_position).await,
        None if rejected == AcceptRejected::Insufficient => Err(Error::quota_exhausted(
            codes::INSUFFICIENT_QUOTA,
            "no stamp is available; buy quota first",
        )),
        None => Err(contention()),
    }
}

/// The job an earlier attempt at this request made, if any. An id that
/// names another owner's job (a hash collision) is never answered with it.
async fn earlier_job(
    ports: &StampPorts<'_>,
    job_id: &str,
    actor: &Actor,
    request: &StampRequest,
) -> Result<Option<Job>> {
    match ports.jobs.load(job_id).await? {
        Some(first) if first.owner != actor.owner || first.document_id != request.document_id => {
            Err(contention())
        }
        found => Ok(found),
    }
}

fn contention() -> Error {
    Error::conflict(
        codes::CONTENTION,
        "could not reserve: the new job's id was taken; retry",
    )
}

/// Queues a job just accepted. If the queue refuses, the job stays recorded
/// and queued (its stamp reserved) and the client is told to retry: its
/// retry with the same key sends the message again, and if nobody retries
/// the schedule does. Either way the job ends done, or failed through the
/// dead-letter queue with its stamp returned.
async fn queue_new(
    ports: &StampPorts<'_>,
    settings: &StampSettings,
    job: Job,
    queue_position: i64,
) -> Result<Accepted> {
    let sent = if Fault::QueueRefuses.strikes(settings, &job) {
        Err(Error::queue("injected fault: the queue refused"))
    } else {
        ports.queue.send(&job.job_id, &job.account).await
    };
    if let Err(e) = sent {
        tracing::error!(job_id = %job.job_id, error = %e, "could not queue the job; it waits for the client's retry or the schedule");
        return Err(e);
    }
    tracing::info!(job_id = %job.job_id, serial = %job.serial, "stamp job accepted");
    tracing::info!(target: meterai_core::METRIC, stamps_accepted = 1, queue_position);
    Ok(Accepted {
        job_id: job.job_id,
        serial: job.serial.to_string(),
        status: JobStatus::Queued,
        queue_position,
        done_by: job.done_by_ms.map(meterai_core::time::rfc3339),
    })
}

/// The queue's depth and its drain per minute (`None` when the count could
/// not be read: the estimates then assume a pace).
async fn queue_outlook(ports: &StampPorts<'_>) -> (i64, Option<u64>) {
    let (depth, drain) = tokio::join!(
        ports.queue.depth(),
        ports.jobs.drain_per_minute(ports.clock.now_ms())
    );
    let drain = drain
        .inspect_err(|e| tracing::warn!(error = %e, "the drain count could not be read"))
        .ok();
    (depth, drain)
}

/// A repeated request finds its first attempt's job. Still queued, its
/// message is sent again (the worker takes a job once); a queue that
/// refuses now leaves the job queued for the schedule to send again.
async fn resume(ports: &StampPorts<'_>, first: Job, queue_position: i64) -> Result<Accepted> {
    if first.status == JobStatus::Queued {
        ports.queue.send(&first.job_id, &first.account).await?;
    }
    tracing::info!(job_id = %first.job_id, status = %first.status, "stamp request repeated; its job answers");
    Ok(Accepted {
        job_id: first.job_id,
        serial: first.serial.to_string(),
        status: first.status,
        queue_position: if first.status == JobStatus::Queued {
            queue_position
        } else {
            0
        },
        done_by: first.done_by_ms.map(meterai_core::time::rfc3339),
    })
}

/// What one run of [`resend_unfinished`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Resent {
    /// Unfinished jobs quiet for too long whose message was sent again.
    pub resent: usize,
    /// Jobs that could not be sent again this run (the next run tries).
    pub failed: usize,
}

/// Sends again the message of every job that stayed unfinished without
/// news for [`meterai_core::jobs::RESEND_AFTER_MS`]: a message lost between
/// an accept and the queue would otherwise hold its stamp reserved for ever.
/// A job sent again that still cannot be worked ends in the dead-letter
/// queue like any other, which fails it and returns its stamp.
pub async fn resend_unfinished(ports: &StampPorts<'_>, limit: usize) -> Result<Resent> {
    let now = ports.clock.now_ms();
    let quiet_since = now - meterai_core::jobs::RESEND_AFTER_MS;
    let mut report = Resent::default();
    for job_id in ports.jobs.unfinished(quiet_since, limit).await? {
        let sent = async {
            let Some(job) = ports.jobs.load(&job_id).await? else {
                return Ok(false);
            };
            if job.is_final() {
                return Ok(false);
            }
            ports.queue.send(&job.job_id, &job.account).await?;
            ports.jobs.mark_resent(&job, now).await?;
            Ok::<_, Error>(true)
        }
        .await;
        match sent {
            Ok(true) => {
                tracing::warn!(
                    job_id,
                    "unfinished job quiet for too long; its message is sent again"
                );
                report.resent += 1;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(job_id, error = %e, "could not send an unfinished job again");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

/// An upload exists, fits the limit and starts like a PDF: its version, the
/// one the job will stamp.
async fn check_upload(
    documents: &dyn Documents,
    settings: &StampSettings,
    key: &str,
    document_id: &str,
) -> Result<Option<String>> {
    let head = documents.head(key).await?.ok_or_else(|| {
        Error::not_found(
            codes::DOCUMENT_NOT_FOUND,
            format!("no document {document_id}"),
        )
    })?;
    check_pdf_size(head.size, settings.limits.max_bytes)?;
    stamp::pdf::sniff(&head.head[..head.head.len().min(5)])
        .map_err(|_| Error::rejected(codes::NOT_A_PDF, "the uploaded document is not a PDF"))?;
    Ok(head.version)
}

/// Works on one job message (the worker's whole job). A job that ends here,
/// or was already final (a redelivery, possibly after a crash before its
/// event was queued), has its reseller's event emitted; emitting twice
/// records one event.
pub async fn work<S: Signer>(
    ports: &StampPorts<'_>,
    settings: &StampSettings,
    signer: &S,
    job_id: &str,
) -> Outcome {
    let job = match ports.jobs.load(job_id).await {
        Ok(Some(job)) => job,
        Ok(None) => return Outcome::Poison(format!("job {job_id} does not exist")),
        Err(e) => return Outcome::Retry(e.to_string()),
    };
    let outcome = match work_on(ports, settings, signer, job).await {
        Ok(outcome) => outcome,
        Err(e) => return Outcome::Retry(e.to_string()),
    };
    // A final job is told to its owner: a reseller's event or a portal
    // user's e-mail (the outbox decides by the owner's account).
    if matches!(outcome, Outcome::Done | Outcome::Duplicate) {
        if let Err(e) = notify(ports, job_id).await {
            return Outcome::Retry(format!(
                "the job is final but its event was not queued: {e}"
            ));
        }
    }
    outcome
}

/// Tells the owner that a job ended: the reseller's event, or the portal
/// user's e-mail (the outbox decides which, by the owner's account).
pub async fn notify(ports: &StampPorts<'_>, job_id: &str) -> Result<()> {
    let Some(job) = ports.jobs.load(job_id).await? else {
        return Ok(());
    };
    if !job.is_final() {
        return Ok(());
    }
    let kind = if job.status == JobStatus::Done {
        EventType::StampCompleted
    } else {
        EventType::StampFailed
    };
    let data = serde_json::to_value(job.view(None)).expect("a job view serializes");
    ports
        .outbox
        .emit_for_account(&job.owner, kind, &job.job_id, data)
        .await
}

async fn work_on<S: Signer>(
    ports: &StampPorts<'_>,
    settings: &StampSettings,
    signer: &S,
    job: Job,
) -> Result<Outcome> {
    let job_id = job.job_id.as_str();
    if job.is_final() {
        return Ok(Outcome::Duplicate);
    }
    // Before the job is started: a job that cannot have the slot is not an
    // attempt, just a message handed back.
    let Some(slot) = settings.slot.take(crate::cpu::SLOT_WAIT).await else {
        return Ok(Outcome::Retry(
            "a stamping that ran over its time still holds this worker".into(),
        ));
    };
    // queued -> processing (or processing again after a worker died mid-job).
    if !ports.jobs.start(job_id, ports.clock.now_ms()).await? {
        return Ok(Outcome::Duplicate);
    }
    let max_bytes = settings.limits.max_bytes as u64;
    let version = job.source_version.as_deref();
    let original = match ports
        .documents
        .read(&job.source_key, max_bytes, version)
        .await
    {
        Ok(Some(original)) => original,
        Ok(None) => {
            return give_up(
                ports,
                &job,
                "DOCUMENT_GONE",
                "the uploaded document no longer exists",
            )
            .await
        }
        // Replaced after it was accepted (by something else, or over the
        // limit): the job fails (its stamp returns) without the body ever
        // being read.
        Err(e) if [codes::DOCUMENT_TOO_LARGE, codes::DOCUMENT_CHANGED].contains(&e.code()) => {
            return give_up(ports, &job, e.code(), &e.to_string()).await
        }
        Err(e) => return Err(e),
    };
    if Fault::CrashBeforeStore.strikes(settings, &job) {
        return Ok(Fault::CrashBeforeStore.crash());
    }
    let verify_url = meterai_core::jobs::verify_url(&settings.verify_base_url, job.serial.as_str());
    let (serial, placement, limits) = (job.serial.to_string(), job.placement, settings.limits);
    let space = SignatureSpace {
        signing_time: signing_time(ports.clock),
        capacity: signer.chain().contents_capacity(),
    };
    let stamping = tokio::task::spawn_blocking(move || {
        // Held until the thread ends, even after the timeout below gave up.
        let _slot = slot;
        stamp::prepare(
            &original,
            &placement,
            &MarkText {
                serial: &serial,
                verify_url: &verify_url,
            },
            &limits,
            &space,
        )
    });
    let prepared = match tokio::time::timeout(settings.stamp_timeout, stamping).await {
        Ok(Ok(Ok(prepared))) => prepared,
        Ok(Ok(Err(error))) => return give_up(ports, &job, error.code(), &error.to_string()).await,
        Ok(Err(join)) => return give_up(ports, &job, "STAMP_CRASHED", &join.to_string()).await,
        Err(_) => return give_up(ports, &job, "STAMP_TIMEOUT", "stamping took too long").await,
    };
    // A throttled or unreachable key is retried through the queue: the stamp
    // stays reserved, and a key that never recovers ends in the DLQ, which
    // returns it.
    if Fault::SigningUnavailable.strikes(settings, &job) {
        return Err(Error::signing_key("injected fault: the key refused"));
    }
    let cms = signing::sign_document(signer, &prepared.digest())
        .await
        .map_err(Error::signing_key)?;
    let stamped = match prepared.seal(&cms) {
        Ok(stamped) => stamped,
        Err(error) => return give_up(ports, &job, error.code(), &error.to_string()).await,
    };
    // Two deliveries of one message can run at once (or a slow attempt can
    // outlive the visibility timeout): each stores its own file, and the one
    // recorded first is the one the serial names and the job points to.
    let key = ports
        .documents
        .stamped_key(&job.account, job_id, &stamped.sha256);
    // It downloads under the user's own file name (a name that cannot be
    // read is not worth failing the stamp for).
    let uploaded_name = ports
        .documents
        .name_of(&job.source_key)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the upload's name could not be read");
            None
        });
    let download_name = meterai_core::jobs::stamped_filename(uploaded_name.as_deref());
    ports
        .documents
        .store(&key, stamped.bytes, Some(&download_name))
        .await?;
    if Fault::CrashAfterStore.strikes(settings, &job) {
        return Ok(Fault::CrashAfterStore.crash());
    }
    Ok(
        if ports
            .jobs
            .complete(&job, &key, &stamped.sha256, ports.clock.now_ms())
            .await?
        {
            tracing::info!(job_id, serial = %job.serial, sha256 = %stamped.sha256, "job done; stamp spent");
            tracing::info!(
                target: meterai_core::METRIC,
                stamps_done = 1,
                accept_to_done_ms = ports.clock.now_ms() - job.created_ms,
                job_id
            );
            count_finished(ports).await;
            if Fault::CrashAfterRecord.strikes(settings, &job) {
                return Ok(Fault::CrashAfterRecord.crash());
            }
            Outcome::Done
        } else {
            Outcome::Duplicate
        },
    )
}

fn signing_time(clock: &dyn Clock) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(clock.now_ms()) * 1_000_000)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
}

/// A permanent failure while processing: the job fails with `code` and its
/// stamp is returned; the message is done with.
async fn give_up(ports: &StampPorts<'_>, job: &Job, code: &str, message: &str) -> Result<Outcome> {
    if ports
        .jobs
        .fail(job, code, message, ports.clock.now_ms())
        .await?
    {
        tracing::warn!(job_id = %job.job_id, code, "job failed; its stamp is returned");
        tracing::info!(target: meterai_core::METRIC, stamps_failed = 1, code, job_id = %job.job_id);
        count_finished(ports).await;
    }
    Ok(Outcome::Done)
}

/// One more job ended this minute (the drain rate clients are told to wait
/// by). Best effort: a lost count only makes the next minute's advice rougher.
async fn count_finished(ports: &StampPorts<'_>) {
    if let Err(e) = ports.jobs.count_finished(ports.clock.now_ms()).await {
        tracing::warn!(error = %e, "the drain count was not updated");
    }
}

/// A dead-lettered job: fail it and return its stamp (false if it was final
/// or does not exist).
pub async fn dead_letter(ports: &StampPorts<'_>, job_id: &str) -> Result<bool> {
    match ports.jobs.load(job_id).await? {
        Some(job) if !job.is_final() => {
            let failed = ports
                .jobs
                .fail(
                    &job,
                    "DELIVERY_FAILED",
                    "the job could not be processed after repeated attempts",
                    ports.clock.now_ms(),
                )
                .await?;
            if failed {
                tracing::warn!(job_id, "dead-lettered job failed; its stamp is returned");
                tracing::info!(
                    target: meterai_core::METRIC,
                    stamps_failed = 1,
                    code = "DELIVERY_FAILED",
                    job_id
                );
            }
            Ok(failed)
        }
        _ => Ok(false),
    }
}

/// A message from the jobs' dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadMessage<'a> {
    pub message_id: &'a str,
    /// The job it names, or why its body names none.
    pub job: std::result::Result<&'a str, String>,
    pub body: &'a str,
    pub receive_count: i64,
}

/// Reconciles one dead-lettered message: a job message fails its job and
/// returns the stamp (and tells its reseller); every message is recorded
/// with what was done about it. An error means nothing was recorded and the
/// message should come back.
pub async fn reconcile_dead_letter(
    ports: &StampPorts<'_>,
    message: &DeadMessage<'_>,
) -> Result<String> {
    let outcome = match &message.job {
        Err(poison) => format!("unparseable: {poison}"),
        Ok(job_id) => {
            let failed = dead_letter(ports, job_id).await?;
            notify(ports, job_id).await?;
            if failed {
                "job_failed".to_string()
            } else {
                "job_already_final_or_unknown".to_string()
            }
        }
    };
    tracing::warn!(outcome = %outcome, "dead letter reconciled");
    ports
        .jobs
        .record_dead_letter(&DeadLetter {
            message_id: message.message_id.to_string(),
            job_id: message.job.as_ref().ok().map(|id| id.to_string()),
            outcome: outcome.clone(),
            body: message.body.chars().take(1024).collect(),
            receive_count: message.receive_count,
            recorded_ms: ports.clock.now_ms(),
        })
        .await?;
    Ok(outcome)
}

/// One of the caller's jobs, with a download URL once it is done; another
/// account's job is "not found".
pub async fn get(
    ports: &StampPorts<'_>,
    settings: &StampSettings,
    account: &AccountId,
    job_id: &str,
) -> Result<JobView> {
    let not_found = || Error::not_found(codes::JOB_NOT_FOUND, format!("no job {job_id}"));
    if !meterai_core::ids::is_id(job_id, "job_") {
        return Err(not_found());
    }
    let job = ports
        .jobs
        .load(job_id)
        .await?
        .filter(|j| &j.owner == account)
        .ok_or_else(not_found)?;
    let download_url = match (job.status, &job.stamped_key) {
        (JobStatus::Done, Some(key)) => {
            Some(ports.documents.download_url(key, settings.url_ttl).await?)
        }
        _ => None,
    };
    let mut view = job.view(download_url);
    if job.status == JobStatus::Queued {
        let (depth, drain) = queue_outlook(ports).await;
        view.queue_position = Some(depth);
        view.poll_after_seconds =
            meterai_core::jobs::poll_after_seconds(job.status, Some(depth), drain);
    } else {
        view.poll_after_seconds = meterai_core::jobs::poll_after_seconds(job.status, None, None);
    }
    Ok(view)
}

/// The caller's jobs, newest first.
pub async fn list(
    jobs: &dyn Jobs,
    account: &AccountId,
    limit: i32,
    cursor: Option<&str>,
) -> Result<Page<JobView>> {
    let page = jobs.list(account, limit, cursor).await?;
    Ok(Page {
        items: page.items.iter().map(|j| j.view(None)).collect(),
        next_cursor: page.next_cursor,
    })
}
