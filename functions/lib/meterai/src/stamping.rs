//! Stamp jobs from request to stored document.
//!
//! Accept (API, milliseconds): check the uploaded document, then in one
//! transaction reserve one stamp, write the job `queued` and claim a fresh
//! serial number; then send the job message. If the message cannot be sent,
//! the reservation is released at once.
//!
//! Work (worker, from the queue): a job already final is left alone; the job
//! moves to `processing` under a condition; the PDF is read, stamped and
//! written to `stamped/`; only then one transaction marks the job `done`,
//! moves the stamp from reserved to spent and binds the serial to the SHA-256
//! of the stored file. A permanent failure marks the job `failed` and returns
//! the stamp in one transaction; a transient one is retried by the queue, and
//! a message that reaches the dead-letter queue has its job failed and its
//! stamp returned by the reconciler.

use std::time::Duration;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use aws_sdk_s3::presigning::PresigningConfig;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::error::{codes, Error, Result};
use crate::jobs::{Envelope, JobMessage, Outcome};
use crate::quota::{self, Movement, MovementKind, Page, Rejected};
use crate::store::{self, get_n, get_s, n, s, Item};
use crate::AwsClients;
use meterai_core::{AccountId, JobStatus};
use meterai_pdf::signing::{self, Signer};
use meterai_pdf::stamp::{self, Limits, MarkText, Placement, Serial, SignatureSpace};

/// What the stamping side needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StampSettings {
    pub bucket: String,
    pub table: String,
    pub queue_url: String,
    pub limits: Limits,
    /// Base of the public verification URL printed in the QR code.
    pub verify_base_url: String,
    /// How long presigned upload and download URLs live.
    pub url_ttl: Duration,
    /// Bound on one stamping, so a crafted PDF cannot hold the worker.
    pub stamp_timeout: Duration,
    /// Fault injection for the local stage: a job whose `client_reference` is
    /// [`CHAOS_CRASH_AFTER_STORE`] fails its first attempt right after the
    /// stamped document is stored and before it is recorded, as a worker
    /// killed at that moment would. The template enables it on the emulator only.
    pub chaos_crash_after_store: bool,
    /// Where reseller jobs' `stamp.completed` / `stamp.failed` events go.
    pub outbox: Option<crate::events::Outbox>,
}

/// The `client_reference` that triggers the simulated crash (local stage only).
pub const CHAOS_CRASH_AFTER_STORE: &str = "chaos:crash-after-store";

fn upload_key(account: &AccountId, document_id: &str) -> String {
    format!("uploads/{account}/{document_id}.pdf")
}

fn stamped_key(account: &str, job_id: &str) -> String {
    format!("stamped/{account}/{job_id}.pdf")
}

/// 413 for a document over the limit (at upload time and at accept time).
pub(crate) fn check_pdf_size(size: u64, max_bytes: usize) -> Result<()> {
    if size > max_bytes as u64 {
        return Err(Error::too_large(
            codes::DOCUMENT_TOO_LARGE,
            format!("the document is {size} bytes; the limit is {max_bytes}"),
        ));
    }
    Ok(())
}

/// Reads `size` (bytes, > 0) of an upload request and checks it against the limit.
pub(crate) fn parse_upload_size(body: &serde_json::Value, max_bytes: usize) -> Result<u64> {
    let size = body
        .get("size")
        .and_then(|v| v.as_u64())
        .filter(|s| *s > 0)
        .ok_or_else(|| {
            Error::invalid(
                codes::BAD_REQUEST,
                "size must be the file's size in bytes (> 0)",
            )
        })?;
    check_pdf_size(size, max_bytes)?;
    Ok(size)
}

/// A presigned PDF `PUT` to `key`: its URL and when it expires.
pub(crate) async fn presign_pdf_put(
    clients: &AwsClients,
    bucket: &str,
    key: &str,
    ttl: Duration,
) -> Result<(String, String)> {
    let presign =
        PresigningConfig::expires_in(ttl).map_err(|e| Error::Misconfigured(e.to_string()))?;
    let request = clients
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/pdf")
        .presigned(presign)
        .await
        .map_err(|e| Error::bucket(aws_sdk_s3::error::DisplayErrorContext(e)))?;
    let expires_at =
        meterai_core::time::rfc3339(meterai_core::time::now_ms() + ttl.as_millis() as i64);
    Ok((request.uri().to_string(), expires_at))
}

/// The answer to `POST /v1/documents`.
#[derive(Debug, Clone, Serialize)]
pub struct UploadTicket {
    pub document_id: String,
    pub upload_url: String,
    pub method: &'static str,
    pub expires_at: String,
    pub max_bytes: usize,
}

/// Validates `{filename, size}` and presigns a PUT under the caller's prefix.
pub async fn new_upload(
    clients: &AwsClients,
    settings: &StampSettings,
    account: &AccountId,
    body: &serde_json::Value,
) -> Result<UploadTicket> {
    let filename = body.get("filename").and_then(|f| f.as_str()).unwrap_or("");
    if filename.is_empty() || filename.len() > 255 || filename.chars().any(char::is_control) {
        return Err(Error::invalid(
            codes::INVALID_FILENAME,
            "filename must be 1 to 255 characters",
        ));
    }
    parse_upload_size(body, settings.limits.max_bytes)?;
    let document_id = format!("doc_{}", meterai_core::ids::nonce());
    let key = upload_key(account, &document_id);
    let (upload_url, expires_at) =
        presign_pdf_put(clients, &settings.bucket, &key, settings.url_ttl).await?;
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
    clients: &AwsClients,
    table: &str,
    caller: &crate::auth::Caller,
    customer_id: Option<&str>,
) -> Result<Actor> {
    use crate::auth::Caller;
    match (caller, customer_id) {
        (Caller::Portal(account), None) => Ok(Actor::portal(account)),
        (Caller::Portal(_), Some(customer_id)) => Err(Error::not_found(
            codes::CUSTOMER_NOT_FOUND,
            format!("no customer {customer_id}"),
        )),
        (Caller::Reseller(reseller), customer_id) => {
            let payer = match customer_id {
                Some(id) => crate::resellers::customer_of(clients, table, reseller, id).await?,
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

/// Parses `{document_id, page, x, y, width?, height?, reason?, client_reference?}`.
pub fn parse_request(body: &serde_json::Value) -> Result<StampRequest> {
    const FIELDS: [&str; 9] = [
        "customer_id",
        "document_id",
        "page",
        "x",
        "y",
        "width",
        "height",
        "reason",
        "client_reference",
    ];
    let object = crate::request::json_object(body, &FIELDS)?;
    let document_id = object
        .get("document_id")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    if !meterai_core::ids::is_id(document_id, "doc_") {
        return Err(Error::not_found(
            codes::DOCUMENT_NOT_FOUND,
            format!("no document {document_id:?}"),
        ));
    }
    let bad = |m: &str| Error::invalid(codes::INVALID_PLACEMENT, m.to_string());
    let page = object
        .get("page")
        .and_then(|v| v.as_u64())
        .filter(|p| (1..=u64::from(u32::MAX)).contains(p))
        .ok_or_else(|| bad("page must be a whole number from 1"))? as u32;
    let coordinate = |name: &str, default: Option<f64>, min: f64, max: f64| -> Result<f64> {
        match object.get(name) {
            None => default.ok_or_else(|| bad(&format!("{name} is required"))),
            Some(v) => v
                .as_f64()
                .filter(|f| f.is_finite() && *f >= min && *f <= max)
                .ok_or_else(|| bad(&format!("{name} must be a number from {min} to {max}"))),
        }
    };
    let placement = Placement {
        page,
        x: coordinate("x", None, 0.0, 14_400.0)?,
        y: coordinate("y", None, 0.0, 14_400.0)?,
        width: coordinate("width", Some(stamp::pdf::DEFAULT_SIZE), 40.0, 600.0)?,
        height: coordinate("height", Some(stamp::pdf::DEFAULT_SIZE), 40.0, 600.0)?,
    };
    let text = |name: &str| -> Result<Option<String>> {
        match object.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(v)) if v.len() <= 200 => Ok(Some(v.clone())),
            Some(_) => Err(Error::invalid(
                codes::BAD_REQUEST,
                format!("{name} must be a string of at most 200 characters"),
            )),
        }
    };
    Ok(StampRequest {
        document_id: document_id.to_string(),
        placement,
        reason: text("reason")?,
        client_reference: text("client_reference")?,
        customer_id: text("customer_id")?,
    })
}

/// The answer to an accepted stamp request.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {
    pub job_id: String,
    pub serial: String,
    pub status: JobStatus,
    /// Messages ahead of this job when it was queued (the queue's depth).
    pub queue_position: i64,
}

/// Checks the document, reserves a stamp, writes the job and queues it.
pub async fn accept(
    clients: &AwsClients,
    settings: &StampSettings,
    actor: &Actor,
    request: &StampRequest,
) -> Result<Accepted> {
    let account = &actor.payer;
    let key = upload_key(&actor.owner, &request.document_id);
    check_upload(clients, settings, &key, &request.document_id).await?;

    let job_id = format!("job_{}", meterai_core::ids::nonce());
    let serial = Serial::generate();
    let now = meterai_core::time::now_ms();
    let p = &request.placement;
    let mut job = Item::from([
        ("pk".to_string(), s(format!("JOB#{job_id}"))),
        ("sk".to_string(), s("JOB")),
        ("gsi1pk".to_string(), s(format!("JOBS#{}", actor.owner))),
        (
            "gsi1sk".to_string(),
            s(format!("{}#{job_id}", store::sortable_ms(now))),
        ),
        ("job_id".to_string(), s(&job_id)),
        ("account".to_string(), s(account.as_str())),
        ("owner".to_string(), s(actor.owner.as_str())),
        ("channel".to_string(), s(&actor.channel)),
        ("document_id".to_string(), s(&request.document_id)),
        ("source_key".to_string(), s(&key)),
        ("status".to_string(), s(JobStatus::Queued.as_str())),
        ("serial".to_string(), s(serial.as_str())),
        ("page".to_string(), n(i64::from(p.page))),
        ("x".to_string(), s(p.x.to_string())),
        ("y".to_string(), s(p.y.to_string())),
        ("width".to_string(), s(p.width.to_string())),
        ("height".to_string(), s(p.height.to_string())),
        ("created_at".to_string(), n(now)),
        ("attempts".to_string(), n(0)),
    ]);
    for (name, value) in [
        ("reason", &request.reason),
        ("client_reference", &request.client_reference),
        ("reseller_id", &actor.reseller_id),
        ("customer_id", &request.customer_id),
    ] {
        if let Some(v) = value {
            job.insert(name.to_string(), s(v));
        }
    }
    let serial_item = Item::from([
        ("pk".to_string(), s(format!("SERIAL#{serial}"))),
        ("sk".to_string(), s("SERIAL")),
        ("serial".to_string(), s(serial.as_str())),
        ("job_id".to_string(), s(&job_id)),
        ("status".to_string(), s("reserved")),
        ("page".to_string(), n(i64::from(p.page))),
        ("channel".to_string(), s(&actor.channel)),
        ("created_at".to_string(), n(now)),
    ]);
    let put = |item: Item| {
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&settings.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .expect("put is complete"),
            )
            .build()
    };
    let movement = Movement::new(account, MovementKind::Reserve, 1, &job_id);
    // The queue's depth is read while the reservation is written: it is an
    // estimate either way, and this keeps it off the request's critical path.
    let (reserved, queue_position) = tokio::join!(
        quota::apply(
            clients,
            &settings.table,
            &movement,
            vec![put(job), put(serial_item)],
        ),
        queue_depth(clients, &settings.queue_url)
    );
    match reserved? {
        Ok(()) => {}
        Err(Rejected::Insufficient) => {
            return Err(Error::quota_exhausted(
                codes::INSUFFICIENT_QUOTA,
                "no stamp is available; buy quota first",
            ))
        }
        // A fresh job id or serial collided: astronomically unlikely; let the client retry.
        Err(other) => {
            return Err(Error::conflict(
                codes::CONTENTION,
                format!("could not reserve: {other:?}; retry"),
            ))
        }
    }
    let sent = clients
        .sqs
        .send_message()
        .queue_url(&settings.queue_url)
        .message_body(
            JobMessage {
                job_id: job_id.clone(),
            }
            .to_body(),
        )
        .send()
        .await;
    if let Err(e) = sent {
        let message = aws_sdk_sqs::error::DisplayErrorContext(e).to_string();
        tracing::error!(job_id, error = %message, "could not queue the job; returning its stamp");
        fail(
            clients,
            &settings.table,
            &job_id,
            account.as_str(),
            serial.as_str(),
            "QUEUE_UNAVAILABLE",
            "the job could not be queued",
        )
        .await?;
        return Err(Error::queue(message));
    }
    tracing::info!(job_id, serial = %serial, "stamp job accepted");
    Ok(Accepted {
        job_id,
        serial: serial.to_string(),
        status: JobStatus::Queued,
        queue_position,
    })
}

/// Checks an upload with one ranged read of its first five bytes: the
/// answer's `Content-Range` gives the size, the bytes give the `%PDF-` header.
async fn check_upload(
    clients: &AwsClients,
    settings: &StampSettings,
    key: &str,
    document_id: &str,
) -> Result<()> {
    let not_a_pdf = || Error::rejected(codes::NOT_A_PDF, "the uploaded document is not a PDF");
    let read = clients
        .s3
        .get_object()
        .bucket(&settings.bucket)
        .key(key)
        .range("bytes=0-4")
        .send()
        .await;
    let object = match read {
        Ok(object) => object,
        Err(e) => {
            let service = e.as_service_error();
            if service.is_some_and(|s| s.is_no_such_key()) {
                return Err(Error::not_found(
                    codes::DOCUMENT_NOT_FOUND,
                    format!("no document {document_id}"),
                ));
            }
            // An empty object has no byte 0: S3 answers 416 InvalidRange.
            if service.and_then(|s| s.meta().code()) == Some("InvalidRange") {
                return Err(not_a_pdf());
            }
            return Err(Error::bucket(aws_sdk_s3::error::DisplayErrorContext(e)));
        }
    };
    // `bytes 0-4/12345`; a store that ignores the range sends the whole object.
    let size = object
        .content_range()
        .and_then(|r| r.rsplit('/').next())
        .and_then(|total| total.parse::<u64>().ok())
        .or_else(|| object.content_length().and_then(|l| u64::try_from(l).ok()))
        .unwrap_or(0);
    check_pdf_size(size, settings.limits.max_bytes)?;
    let head = object
        .body
        .collect()
        .await
        .map_err(Error::bucket)?
        .into_bytes();
    stamp::pdf::sniff(&head[..head.len().min(5)]).map_err(|_| not_a_pdf())
}

async fn queue_depth(clients: &AwsClients, queue_url: &str) -> i64 {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = clients
        .sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await;
    out.ok()
        .and_then(|o| o.attributes)
        .map(|a| {
            [
                A::ApproximateNumberOfMessages,
                A::ApproximateNumberOfMessagesNotVisible,
            ]
            .iter()
            .filter_map(|k| a.get(k).and_then(|v| v.parse::<i64>().ok()))
            .sum()
        })
        .unwrap_or(0)
}

/// Marks a job failed and returns its stamp, in one transaction. Only from a
/// state a job may fail from; a job already final is left alone (returns false).
pub async fn fail(
    clients: &AwsClients,
    table: &str,
    job_id: &str,
    account: &str,
    serial: &str,
    code: &str,
    message: &str,
) -> Result<bool> {
    let account = AccountId::parse(account)?;
    let mut condition = Vec::new();
    let mut update = Update::builder()
        .table_name(table)
        .key("pk", s(format!("JOB#{job_id}")))
        .key("sk", s("JOB"))
        .update_expression("SET #status = :failed, error_code = :code, error_message = :message, finished_at = :now")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":failed", s(JobStatus::Failed.as_str()))
        .expression_attribute_values(":code", s(code))
        .expression_attribute_values(":message", s(message.chars().take(500).collect::<String>()))
        .expression_attribute_values(":now", n(meterai_core::time::now_ms()));
    // Only from a state the job may fail from: a final job is left alone.
    for (i, state) in JobStatus::sources_of(JobStatus::Failed).iter().enumerate() {
        condition.push(format!("#status = :from{i}"));
        update = update.expression_attribute_values(format!(":from{i}"), s(state.as_str()));
    }
    let update = update
        .condition_expression(condition.join(" OR "))
        .build()
        .expect("update is complete");
    let void_serial = Update::builder()
        .table_name(table)
        .key("pk", s(format!("SERIAL#{serial}")))
        .key("sk", s("SERIAL"))
        .update_expression("SET #status = :void")
        .condition_expression("#status = :reserved")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":void", s("void"))
        .expression_attribute_values(":reserved", s("reserved"))
        .build()
        .expect("update is complete");
    let movement = Movement::new(&account, MovementKind::Release, 1, job_id);
    let extra = vec![
        TransactWriteItem::builder().update(update).build(),
        TransactWriteItem::builder().update(void_serial).build(),
    ];
    Ok(
        match quota::apply(clients, table, &movement, extra).await? {
            Ok(()) => {
                tracing::warn!(job_id, code, "job failed; its stamp is returned");
                true
            }
            Err(_) => false,
        },
    )
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub job_id: String,
    /// Whose quota pays.
    pub account: String,
    /// Who sees the job (the reseller's pool for reseller jobs).
    pub owner: String,
    pub reseller_id: Option<String>,
    pub customer_id: Option<String>,
    pub status: JobStatus,
    pub serial: String,
    pub source_key: String,
    pub placement: Placement,
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub stamped_key: Option<String>,
    pub sha256: Option<String>,
    pub client_reference: Option<String>,
    /// Attempts started before this one.
    pub attempts: i64,
}

impl Job {
    fn from_item(item: &Item) -> Option<Self> {
        let f = |name: &str| get_s(item, name).and_then(|v| v.parse::<f64>().ok());
        let opt = |name: &str| get_s(item, name).map(str::to_string);
        Some(Job {
            job_id: get_s(item, "job_id")?.to_string(),
            account: get_s(item, "account")?.to_string(),
            owner: get_s(item, "owner")
                .or_else(|| get_s(item, "account"))?
                .to_string(),
            reseller_id: opt("reseller_id"),
            customer_id: opt("customer_id"),
            status: JobStatus::parse(get_s(item, "status")?)?,
            serial: get_s(item, "serial")?.to_string(),
            source_key: get_s(item, "source_key")?.to_string(),
            placement: Placement {
                page: get_n(item, "page")? as u32,
                x: f("x")?,
                y: f("y")?,
                width: f("width")?,
                height: f("height")?,
            },
            created_ms: get_n(item, "created_at")?,
            finished_ms: get_n(item, "finished_at"),
            error_code: opt("error_code"),
            error_message: opt("error_message"),
            stamped_key: opt("stamped_key"),
            sha256: opt("sha256"),
            client_reference: opt("client_reference"),
            attempts: get_n(item, "attempts").unwrap_or(0),
        })
    }

    pub fn is_final(&self) -> bool {
        self.status.is_final()
    }
}

pub async fn load_job(clients: &AwsClients, table: &str, job_id: &str) -> Result<Option<Job>> {
    let out = clients
        .dynamodb
        .get_item()
        .table_name(table)
        .key("pk", s(format!("JOB#{job_id}")))
        .key("sk", s("JOB"))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| Error::table(DisplayErrorContext(e)))?;
    Ok(out.item().and_then(Job::from_item))
}

/// Works on one job message (the worker's whole job). A job that ends here,
/// or was already final (a redelivery, possibly after a crash before its
/// event was queued), has its reseller's event emitted; emitting twice
/// records one event.
pub async fn work<S: Signer>(
    clients: &AwsClients,
    settings: &StampSettings,
    signer: &S,
    job_id: &str,
) -> Outcome {
    let job = match load_job(clients, &settings.table, job_id).await {
        Ok(Some(job)) => job,
        Ok(None) => return Outcome::Poison(format!("job {job_id} does not exist")),
        Err(e) => return Outcome::Retry(e.to_string()),
    };
    // Only reseller jobs have events: portal jobs skip the extra read.
    let has_events = job.reseller_id.is_some();
    let outcome = match work_on(clients, settings, signer, job).await {
        Ok(outcome) => outcome,
        Err(e) => return Outcome::Retry(e.to_string()),
    };
    if has_events && matches!(outcome, Outcome::Done | Outcome::Duplicate) {
        if let Err(e) = notify(clients, settings, job_id).await {
            return Outcome::Retry(format!(
                "the job is final but its event was not queued: {e}"
            ));
        }
    }
    outcome
}

/// Emits the reseller's event for a final job (nothing for portal jobs).
pub async fn notify(clients: &AwsClients, settings: &StampSettings, job_id: &str) -> Result<()> {
    let Some(outbox) = &settings.outbox else {
        return Ok(());
    };
    let Some(job) = load_job(clients, &settings.table, job_id).await? else {
        return Ok(());
    };
    let (Some(reseller_id), true) = (&job.reseller_id, job.is_final()) else {
        return Ok(());
    };
    let kind = if job.status == JobStatus::Done {
        crate::events::EventType::StampCompleted
    } else {
        crate::events::EventType::StampFailed
    };
    let data = serde_json::to_value(view(&job, None)).expect("a job view serializes");
    crate::events::emit(clients, outbox, reseller_id, kind, &job.job_id, data).await?;
    Ok(())
}

async fn work_on<S: Signer>(
    clients: &AwsClients,
    settings: &StampSettings,
    signer: &S,
    job: Job,
) -> Result<Outcome> {
    let table = &settings.table;
    let job_id = job.job_id.as_str();
    if job.is_final() {
        return Ok(Outcome::Duplicate);
    }
    // queued -> processing (or processing again after a worker died mid-job).
    let claimed = clients
        .dynamodb
        .update_item()
        .table_name(table)
        .key("pk", s(format!("JOB#{job_id}")))
        .key("sk", s("JOB"))
        .update_expression("SET #status = :processing, started_at = :now ADD attempts :one")
        .condition_expression("#status IN (:queued, :processing)")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":processing", s(JobStatus::Processing.as_str()))
        .expression_attribute_values(":queued", s(JobStatus::Queued.as_str()))
        .expression_attribute_values(":now", n(meterai_core::time::now_ms()))
        .expression_attribute_values(":one", n(1))
        .send()
        .await;
    if let Err(e) = claimed {
        return match e.into_service_error() {
            aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(_) => Ok(Outcome::Duplicate),
            other => Err(Error::table(DisplayErrorContext(other))),
        };
    }
    let original = match clients
        .s3
        .get_object()
        .bucket(&settings.bucket)
        .key(&job.source_key)
        .send()
        .await
    {
        Ok(object) => object
            .body
            .collect()
            .await
            .map_err(Error::bucket)?
            .into_bytes()
            .to_vec(),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
            return give_up(
                clients,
                table,
                &job,
                "DOCUMENT_GONE",
                "the uploaded document no longer exists",
            )
            .await;
        }
        Err(e) => return Err(Error::bucket(aws_sdk_s3::error::DisplayErrorContext(e))),
    };
    let verify_url = format!(
        "{}/v1/verify/{}",
        settings.verify_base_url.trim_end_matches('/'),
        job.serial
    );
    let (serial, placement, limits) = (job.serial.clone(), job.placement, settings.limits);
    let space = SignatureSpace {
        signing_time: time::OffsetDateTime::now_utc(),
        capacity: signer.chain().contents_capacity(),
    };
    let stamping = tokio::task::spawn_blocking(move || {
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
        Ok(Ok(Err(error))) => {
            return give_up(clients, table, &job, error.code(), &error.to_string()).await
        }
        Ok(Err(join)) => {
            return give_up(clients, table, &job, "STAMP_CRASHED", &join.to_string()).await;
        }
        Err(_) => {
            return give_up(
                clients,
                table,
                &job,
                "STAMP_TIMEOUT",
                "stamping took too long",
            )
            .await;
        }
    };
    // A throttled or unreachable key is retried through the queue: the stamp
    // stays reserved, and a key that never recovers ends in the DLQ, which
    // returns it.
    let cms = signing::sign_document(signer, &prepared.digest())
        .await
        .map_err(Error::signing_key)?;
    let stamped = match prepared.seal(&cms) {
        Ok(stamped) => stamped,
        Err(error) => return give_up(clients, table, &job, error.code(), &error.to_string()).await,
    };
    let key = stamped_key(&job.account, job_id);
    clients
        .s3
        .put_object()
        .bucket(&settings.bucket)
        .key(&key)
        .content_type("application/pdf")
        .body(stamped.bytes.into())
        .send()
        .await
        .map_err(|e| Error::bucket(aws_sdk_s3::error::DisplayErrorContext(e)))?;
    if settings.chaos_crash_after_store
        && job.attempts == 0
        && job.client_reference.as_deref() == Some(CHAOS_CRASH_AFTER_STORE)
    {
        tracing::warn!(
            job_id,
            "chaos: simulated crash after storing the stamped document"
        );
        return Ok(Outcome::Retry(
            "simulated crash after storing the stamped document".into(),
        ));
    }
    complete(clients, table, &job, &key, &stamped.sha256).await
}

/// A permanent failure while processing: the job fails with `code` and its
/// stamp is returned; the message is done with.
async fn give_up(
    clients: &AwsClients,
    table: &str,
    job: &Job,
    code: &str,
    message: &str,
) -> Result<Outcome> {
    fail(
        clients,
        table,
        &job.job_id,
        &job.account,
        &job.serial,
        code,
        message,
    )
    .await?;
    Ok(Outcome::Done)
}

/// The stamped file is stored: mark the job done, spend the stamp and bind the
/// serial to the file's hash, all at once.
async fn complete(
    clients: &AwsClients,
    table: &str,
    job: &Job,
    key: &str,
    sha256: &str,
) -> Result<Outcome> {
    let account = AccountId::parse(&job.account)?;
    let now = meterai_core::time::now_ms();
    let done = Update::builder()
        .table_name(table)
        .key("pk", s(format!("JOB#{}", job.job_id)))
        .key("sk", s("JOB"))
        .update_expression(
            "SET #status = :done, stamped_key = :key, sha256 = :sha, finished_at = :now",
        )
        .condition_expression("#status = :processing")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":done", s(JobStatus::Done.as_str()))
        .expression_attribute_values(":processing", s(JobStatus::Processing.as_str()))
        .expression_attribute_values(":key", s(key))
        .expression_attribute_values(":sha", s(sha256))
        .expression_attribute_values(":now", n(now))
        .build()
        .expect("update is complete");
    let bind = Update::builder()
        .table_name(table)
        .key("pk", s(format!("SERIAL#{}", job.serial)))
        .key("sk", s("SERIAL"))
        .update_expression("SET #status = :bound, sha256 = :sha, stamped_at = :now")
        .condition_expression("#status = :reserved AND job_id = :job")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":bound", s("bound"))
        .expression_attribute_values(":reserved", s("reserved"))
        .expression_attribute_values(":job", s(&job.job_id))
        .expression_attribute_values(":sha", s(sha256))
        .expression_attribute_values(":now", n(now))
        .build()
        .expect("update is complete");
    let movement = Movement::new(&account, MovementKind::Spend, 1, &job.job_id);
    let extra = vec![
        TransactWriteItem::builder().update(done).build(),
        TransactWriteItem::builder().update(bind).build(),
    ];
    Ok(
        match quota::apply(clients, table, &movement, extra).await? {
            Ok(()) => {
                tracing::info!(job_id = %job.job_id, serial = %job.serial, sha256, "job done; stamp spent");
                Outcome::Done
            }
            Err(_) => Outcome::Duplicate,
        },
    )
}

/// A dead-lettered job message: fail the job and return its stamp.
pub async fn dead_letter(clients: &AwsClients, table: &str, job_id: &str) -> Result<bool> {
    match load_job(clients, table, job_id).await? {
        Some(job) if !job.is_final() => {
            fail(
                clients,
                table,
                job_id,
                &job.account,
                &job.serial,
                "DELIVERY_FAILED",
                "the job could not be processed after repeated attempts",
            )
            .await
        }
        _ => Ok(false),
    }
}

/// Handles a batch from the dead-letter queue. Every message is recorded
/// (`DEADLETTER#<message id>`, 30 days) with what was done about it; a job
/// message fails its job and returns the stamp. Messages are then removed:
/// the record keeps what an operator needs, and nothing cycles forever.
pub async fn reconcile(
    clients: &AwsClients,
    settings: &StampSettings,
    event: aws_lambda_events::event::sqs::SqsEvent,
) -> aws_lambda_events::event::sqs::SqsBatchResponse {
    let table = &settings.table;
    let mut response = aws_lambda_events::event::sqs::SqsBatchResponse::default();
    for message in event.records {
        let message_id = message.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!("dead_letter", message_id = %message_id);
        let parsed = JobMessage::parse(message.body.as_deref());
        let outcome = match &parsed {
            Err(poison) => Ok(format!("unparseable: {poison}")),
            Ok(job) => {
                async {
                    let failed = dead_letter(clients, table, &job.job_id).await?;
                    notify(clients, settings, &job.job_id).await?;
                    Ok(if failed {
                        "job_failed".to_string()
                    } else {
                        "job_already_final_or_unknown".to_string()
                    })
                }
                .instrument(span.clone())
                .await
            }
        };
        let recorded = match outcome {
            Ok(outcome) => {
                span.in_scope(|| tracing::warn!(outcome = %outcome, "dead letter reconciled"));
                let now = meterai_core::time::now_ms();
                let mut item = Item::from([
                    ("pk".to_string(), s(format!("DEADLETTER#{message_id}"))),
                    ("sk".to_string(), s("DEADLETTER")),
                    ("message_id".to_string(), s(&message_id)),
                    ("outcome".to_string(), s(outcome)),
                    (
                        "body".to_string(),
                        s(message
                            .body
                            .as_deref()
                            .unwrap_or("")
                            .chars()
                            .take(1024)
                            .collect::<String>()),
                    ),
                    (
                        "receive_count".to_string(),
                        n(message
                            .attributes
                            .get("ApproximateReceiveCount")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0)),
                    ),
                    ("recorded_at".to_string(), n(now)),
                    ("expires_at".to_string(), n(now / 1000 + 30 * 24 * 3600)),
                ]);
                if let Ok(job) = &parsed {
                    item.insert("job_id".to_string(), s(&job.job_id));
                }
                clients
                    .dynamodb
                    .put_item()
                    .table_name(table)
                    .set_item(Some(item))
                    .send()
                    .await
                    .map_err(|e| Error::table(DisplayErrorContext(e)))
            }
            Err(e) => Err(e),
        };
        if let Err(e) = recorded {
            span.in_scope(
                || tracing::error!(error = %e, "dead letter not reconciled; it will be retried"),
            );
            let mut failure = aws_lambda_events::event::sqs::BatchItemFailure::default();
            failure.item_identifier = message_id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobView {
    pub job_id: String,
    pub status: JobStatus,
    pub serial: String,
    pub page: u32,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
}

fn view(job: &Job, download_url: Option<String>) -> JobView {
    JobView {
        job_id: job.job_id.clone(),
        status: job.status,
        serial: job.serial.clone(),
        page: job.placement.page,
        created_at: meterai_core::time::rfc3339(job.created_ms),
        finished_at: job.finished_ms.map(meterai_core::time::rfc3339),
        error: job
            .error_code
            .as_ref()
            .map(|code| serde_json::json!({ "code": code, "message": job.error_message })),
        sha256: job.sha256.clone(),
        download_url,
        client_reference: job.client_reference.clone(),
        customer_id: job.customer_id.clone(),
    }
}

/// One of the caller's jobs, with a download URL once it is done.
pub async fn get(
    clients: &AwsClients,
    settings: &StampSettings,
    account: &AccountId,
    job_id: &str,
) -> Result<JobView> {
    let not_found = || Error::not_found(codes::JOB_NOT_FOUND, format!("no job {job_id}"));
    if !meterai_core::ids::is_id(job_id, "job_") {
        return Err(not_found());
    }
    let job = load_job(clients, &settings.table, job_id)
        .await?
        .filter(|j| j.owner == account.as_str())
        .ok_or_else(not_found)?;
    let download_url = match (job.status, &job.stamped_key) {
        (JobStatus::Done, Some(key)) => {
            let presign = PresigningConfig::expires_in(settings.url_ttl)
                .map_err(|e| Error::Misconfigured(e.to_string()))?;
            let request = clients
                .s3
                .get_object()
                .bucket(&settings.bucket)
                .key(key)
                .presigned(presign)
                .await
                .map_err(|e| Error::bucket(aws_sdk_s3::error::DisplayErrorContext(e)))?;
            Some(request.uri().to_string())
        }
        _ => None,
    };
    Ok(view(&job, download_url))
}

/// The caller's jobs, newest first.
pub async fn list(
    clients: &AwsClients,
    table: &str,
    account: &AccountId,
    limit: i32,
    cursor: Option<&str>,
) -> Result<Page<JobView>> {
    let (items, next_cursor) =
        crate::paging::query_gsi1_desc(clients, table, &format!("JOBS#{account}"), limit, cursor)
            .await?;
    Ok(Page {
        items: items
            .iter()
            .filter_map(Job::from_item)
            .map(|j| view(&j, None))
            .collect(),
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_stamp_request_with_defaults() {
        let id = format!("doc_{}", meterai_core::ids::nonce());
        let r = parse_request(&json!({"document_id": id, "page": 2, "x": 400, "y": 50.5, "client_reference": "cpns-2024"})).unwrap();
        assert_eq!(
            r.placement,
            Placement {
                page: 2,
                x: 400.0,
                y: 50.5,
                width: 100.0,
                height: 100.0
            }
        );
        assert_eq!(r.client_reference.as_deref(), Some("cpns-2024"));
    }

    #[test]
    fn bad_pages_and_positions_are_400() {
        let id = format!("doc_{}", meterai_core::ids::nonce());
        for body in [
            json!({"document_id": id, "page": 0, "x": 1, "y": 1}),
            json!({"document_id": id, "page": -1, "x": 1, "y": 1}),
            json!({"document_id": id, "page": 1.5, "x": 1, "y": 1}),
            json!({"document_id": id, "page": 1, "x": -5, "y": 1}),
            json!({"document_id": id, "page": 1, "x": "1", "y": 1}),
            json!({"document_id": id, "page": 1, "x": 1}),
            json!({"document_id": id, "page": 1, "x": 1, "y": 1, "width": 5}),
        ] {
            let err = parse_request(&body).unwrap_err();
            assert_eq!(
                (crate::errors::status_of(&err), err.code()),
                (400, codes::INVALID_PLACEMENT),
                "{body}"
            );
        }
        let err = parse_request(&json!({"document_id": "../../etc", "page": 1, "x": 1, "y": 1}))
            .unwrap_err();
        assert_eq!(err.code(), codes::DOCUMENT_NOT_FOUND);
        let err =
            parse_request(&json!({"document_id": id, "page": 1, "x": 1, "y": 1, "colour": "red"}))
                .unwrap_err();
        assert_eq!(err.code(), codes::BAD_REQUEST);
    }

    #[test]
    fn keys_are_scoped_to_the_account() {
        let account = AccountId::parse("acct-1").unwrap();
        assert_eq!(upload_key(&account, "doc_X"), "uploads/acct-1/doc_X.pdf");
        assert_eq!(stamped_key("acct-1", "job_Y"), "stamped/acct-1/job_Y.pdf");
    }
}
