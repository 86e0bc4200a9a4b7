//! Stamping's adapters: jobs and their serial numbers in DynamoDB
//! ([`DynamoJobs`]), the jobs queue in SQS ([`SqsJobQueue`]), uploads and
//! stamped files in S3 ([`S3Documents`]). The use cases themselves are
//! `meterai_app::stamping`.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use aws_sdk_s3::presigning::PresigningConfig;

use crate::error::{Error, Result};
use crate::keys;
use crate::messages::{Envelope, JobMessage};
use crate::quota::{self, Movement, MovementKind, Page, Rejected};
use crate::store::{self, get_n, get_s, n, s, Item};
use crate::AwsClients;
use meterai_app::ports::{AcceptRejected, DeadLetter, Documents, JobQueue, Jobs, UploadHead};
use meterai_core::jobs::{Job, Placement};
use meterai_core::{AccountId, JobStatus, Serial};

pub use meterai_app::stamping::{check_pdf_size, Fault, StampSettings};

/// An upload's remembered name is ours, a few hundred bytes at most.
const NAME_MAX_BYTES: u64 = 4096;

/// A presigned PDF `PUT` to `key` of exactly `size` bytes: its URL and when
/// it expires. The length is a signed header, so S3 refuses any other body.
pub(crate) async fn presign_pdf_put(
    clients: &AwsClients,
    bucket: &str,
    key: &str,
    ttl: Duration,
    size: u64,
) -> Result<(String, String)> {
    let presign =
        PresigningConfig::expires_in(ttl).map_err(|e| Error::Misconfigured(e.to_string()))?;
    let request = clients
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/pdf")
        .content_length(i64::try_from(size).unwrap_or(i64::MAX))
        .presigned(presign)
        .await
        .map_err(|e| Error::bucket(aws_sdk_s3::error::DisplayErrorContext(e)))?;
    let expires_at =
        meterai_core::time::rfc3339(meterai_core::time::now_ms() + ttl.as_millis() as i64);
    Ok((request.uri().to_string(), expires_at))
}

fn upload_key(owner: &AccountId, document_id: &str) -> String {
    format!("uploads/{owner}/{document_id}.pdf")
}

fn stamped_key(account: &AccountId, job_id: &str, sha256: &str) -> String {
    let tag = &sha256[..sha256.len().min(16)];
    format!("stamped/{account}/{job_id}-{tag}.pdf")
}

/// Uploads and stamped files in the bucket: `uploads/{owner}/{document}.pdf`
/// and `stamped/{payer}/{job}-{sha256 prefix}.pdf` (one key per distinct file).
/// A file no job points to (an attempt that lost to another) expires with
/// the `stamped/` lifecycle rule.
#[derive(Debug, Clone)]
pub struct S3Documents {
    pub clients: AwsClients,
    pub bucket: String,
}

#[async_trait]
impl Documents for S3Documents {
    fn upload_key(&self, owner: &AccountId, document_id: &str) -> String {
        upload_key(owner, document_id)
    }

    fn stamped_key(&self, account: &AccountId, job_id: &str, sha256: &str) -> String {
        stamped_key(account, job_id, sha256)
    }

    /// One ranged read of the first five bytes: the answer's `Content-Range`
    /// gives the size, the bytes give the `%PDF-` header.
    async fn head(&self, key: &str) -> Result<Option<UploadHead>> {
        let read = self
            .clients
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range("bytes=0-4")
            .send()
            .await;
        let object = match read {
            Ok(object) => object,
            Err(e) => {
                let service = e.as_service_error();
                if service.is_some_and(|s| s.is_no_such_key()) {
                    return Ok(None);
                }
                // An empty object has no byte 0: S3 answers 416 InvalidRange.
                if service.and_then(|s| s.meta().code()) == Some("InvalidRange") {
                    return Ok(Some(UploadHead {
                        size: 0,
                        head: Vec::new(),
                        version: None,
                    }));
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
        let version = object.e_tag().map(str::to_string);
        let mut head = object
            .body
            .collect()
            .await
            .map_err(Error::bucket)?
            .into_bytes()
            .to_vec();
        head.truncate(5);
        Ok(Some(UploadHead {
            size,
            head,
            version,
        }))
    }

    async fn read(
        &self,
        key: &str,
        max_bytes: u64,
        version: Option<&str>,
    ) -> Result<Option<Vec<u8>>> {
        match self
            .clients
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_if_match(version.map(str::to_string))
            .send()
            .await
        {
            // The size is in the answer's headers: an object over the limit
            // is refused before a byte of its body is read.
            Ok(object)
                if object.content_length().is_some_and(|length| {
                    u64::try_from(length).unwrap_or(u64::MAX) > max_bytes
                }) =>
            {
                let size = object.content_length().unwrap_or_default();
                check_pdf_size(u64::try_from(size).unwrap_or(u64::MAX), max_bytes as usize)
                    .map(|()| None)
            }
            Ok(object) => Ok(Some(
                object
                    .body
                    .collect()
                    .await
                    .map_err(Error::bucket)?
                    .into_bytes()
                    .to_vec(),
            )),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            // `If-Match` failed: the upload was replaced after the accept.
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(412) => {
                Err(meterai_app::stamping::document_changed())
            }
            Err(e) => Err(Error::bucket(aws_sdk_s3::error::DisplayErrorContext(e))),
        }
    }

    async fn store(&self, key: &str, pdf: Vec<u8>, download_name: Option<&str>) -> Result<()> {
        self.clients
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/pdf")
            .set_content_disposition(download_name.map(meterai_core::jobs::content_disposition))
            .body(pdf.into())
            .send()
            .await
            .map_err(|e| Error::bucket(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn remember_name(&self, upload_key: &str, filename: &str) -> Result<()> {
        // Beside the upload (same prefix, same one-day lifecycle).
        self.clients
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(format!("{upload_key}.name"))
            .content_type("text/plain; charset=utf-8")
            .body(filename.as_bytes().to_vec().into())
            .send()
            .await
            .map_err(|e| Error::bucket(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn name_of(&self, upload_key: &str) -> Result<Option<String>> {
        Ok(self
            .read(&format!("{upload_key}.name"), NAME_MAX_BYTES, None)
            .await?
            .and_then(|bytes| String::from_utf8(bytes).ok()))
    }

    async fn upload_url(&self, key: &str, ttl: Duration, size: u64) -> Result<String> {
        Ok(presign_pdf_put(&self.clients, &self.bucket, key, ttl, size)
            .await?
            .0)
    }

    async fn download_url(&self, key: &str, ttl: Duration) -> Result<String> {
        let presign =
            PresigningConfig::expires_in(ttl).map_err(|e| Error::Misconfigured(e.to_string()))?;
        let request = self
            .clients
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presign)
            .await
            .map_err(|e| Error::bucket(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(request.uri().to_string())
    }
}

/// The jobs queue.
#[derive(Debug, Clone)]
pub struct SqsJobQueue {
    pub clients: AwsClients,
    pub queue_url: String,
    /// The depth last read by this instance.
    pub depth: crate::recent::Recent<i64>,
}

impl SqsJobQueue {
    pub fn new(clients: AwsClients, queue_url: impl Into<String>) -> Self {
        Self {
            clients,
            queue_url: queue_url.into(),
            depth: Default::default(),
        }
    }
}

#[async_trait]
impl JobQueue for SqsJobQueue {
    async fn send(&self, job_id: &str, payer: &AccountId) -> Result<()> {
        self.clients
            .sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_group_id(payer.as_str())
            .message_body(
                JobMessage {
                    job_id: job_id.to_string(),
                }
                .to_body(),
            )
            .send()
            .await
            .map_err(|e| Error::queue(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        // The next accept on this instance, within the kept depth's life,
        // counts this job among those ahead of it.
        self.depth.update(|depth| *depth += 1);
        Ok(())
    }

    async fn depth(&self) -> i64 {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        if let Some(depth) = self.depth.get() {
            return depth;
        }
        let out = self
            .clients
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await;
        let depth: Option<i64> = out.ok().and_then(|o| o.attributes).map(|a| {
            [
                A::ApproximateNumberOfMessages,
                A::ApproximateNumberOfMessagesNotVisible,
            ]
            .iter()
            .filter_map(|k| a.get(k).and_then(|v| v.parse::<i64>().ok()))
            .sum()
        });
        // An unread depth is not kept (the next request asks again); the
        // last one read stands in for it meanwhile.
        match depth {
            Some(depth) => {
                self.depth.put(depth);
                depth
            }
            None => self.depth.last().unwrap_or(0),
        }
    }
}

/// Jobs, their serial numbers and dead letters in the table (see
/// [`crate::keys`]); the stamps they hold move in the same transactions as
/// the job.
#[derive(Debug, Clone)]
pub struct DynamoJobs {
    pub clients: AwsClients,
    pub table: String,
    /// The drain rate last read by this instance.
    pub drain: crate::recent::Recent<u64>,
}

/// A job as an item.
fn job_item(job: &Job) -> Item {
    let p = &job.placement;
    let mut item = keys::job(&job.job_id).with([
        ("gsi1pk".to_string(), s(keys::jobs_of(job.owner.as_str()))),
        (
            "gsi1sk".to_string(),
            s(keys::sort_key(job.created_ms, &job.job_id)),
        ),
        ("job_id".to_string(), s(&job.job_id)),
        ("account".to_string(), s(job.account.as_str())),
        ("owner".to_string(), s(job.owner.as_str())),
        ("channel".to_string(), s(&job.channel)),
        ("document_id".to_string(), s(&job.document_id)),
        ("source_key".to_string(), s(&job.source_key)),
        ("status".to_string(), s(job.status.as_str())),
        ("serial".to_string(), s(job.serial.as_str())),
        ("page".to_string(), n(i64::from(p.page))),
        ("x".to_string(), s(p.x.to_string())),
        ("y".to_string(), s(p.y.to_string())),
        ("width".to_string(), s(p.width.to_string())),
        ("height".to_string(), s(p.height.to_string())),
        ("created_at".to_string(), n(job.created_ms)),
        ("attempts".to_string(), n(job.attempts)),
    ]);
    for (name, value) in [
        ("reason", &job.reason),
        ("client_reference", &job.client_reference),
        ("source_version", &job.source_version),
        ("reseller_id", &job.reseller_id),
        ("customer_id", &job.customer_id),
    ] {
        if let Some(v) = value {
            item.insert(name.to_string(), s(v));
        }
    }
    if let Some(done_by) = job.done_by_ms {
        item.insert("done_by".to_string(), n(done_by));
    }
    item
}

/// A job from its item (None if the item is not a well-formed job).
fn job_from_item(item: &Item) -> Option<Job> {
    let f = |name: &str| get_s(item, name).and_then(|v| v.parse::<f64>().ok());
    let opt = |name: &str| get_s(item, name).map(str::to_string);
    let account = AccountId::parse(get_s(item, "account")?).ok()?;
    let owner = match get_s(item, "owner") {
        Some(owner) => AccountId::parse(owner).ok()?,
        None => account.clone(),
    };
    Some(Job {
        job_id: get_s(item, "job_id")?.to_string(),
        account,
        owner,
        channel: get_s(item, "channel").unwrap_or("portal").to_string(),
        reseller_id: opt("reseller_id"),
        customer_id: opt("customer_id"),
        document_id: get_s(item, "document_id").unwrap_or_default().to_string(),
        status: JobStatus::parse(get_s(item, "status")?)?,
        serial: Serial::parse(get_s(item, "serial")?)?,
        source_key: get_s(item, "source_key")?.to_string(),
        source_version: opt("source_version"),
        placement: Placement {
            page: u32::try_from(get_n(item, "page")?).ok()?,
            x: f("x")?,
            y: f("y")?,
            width: f("width")?,
            height: f("height")?,
        },
        reason: opt("reason"),
        client_reference: opt("client_reference"),
        created_ms: get_n(item, "created_at")?,
        finished_ms: get_n(item, "finished_at"),
        error_code: opt("error_code"),
        error_message: opt("error_message"),
        stamped_key: opt("stamped_key"),
        sha256: opt("sha256"),
        attempts: get_n(item, "attempts").unwrap_or(0),
        done_by_ms: get_n(item, "done_by"),
    })
}

impl DynamoJobs {
    pub fn new(clients: AwsClients, table: impl Into<String>) -> Self {
        Self {
            clients,
            table: table.into(),
            drain: Default::default(),
        }
    }

    /// The job is no longer unfinished (a job accepted before markers
    /// existed has none: deleting nothing is no error).
    fn finish(&self, job: &Job) -> TransactWriteItem {
        TransactWriteItem::builder()
            .delete(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(
                        keys::unfinished_job(&job.job_id, job.created_ms).map(),
                    ))
                    .build()
                    .expect("delete is complete"),
            )
            .build()
    }

    fn put_new(&self, item: Item) -> TransactWriteItem {
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .expect("put is complete"),
            )
            .build()
    }
}

#[async_trait]
impl Jobs for DynamoJobs {
    async fn accept(&self, job: &Job) -> Result<std::result::Result<(), AcceptRejected>> {
        let serial_item = keys::serial(job.serial.as_str()).with([
            ("serial".to_string(), s(job.serial.as_str())),
            ("job_id".to_string(), s(&job.job_id)),
            ("status".to_string(), s("reserved")),
            ("page".to_string(), n(i64::from(job.placement.page))),
            ("channel".to_string(), s(&job.channel)),
            ("created_at".to_string(), n(job.created_ms)),
        ]);
        let movement = Movement::new(&job.account, MovementKind::Reserve, 1, &job.job_id);
        let marker = keys::unfinished_job(&job.job_id, job.created_ms)
            .with([("job_id".to_string(), s(&job.job_id))]);
        let extra = vec![
            self.put_new(job_item(job)),
            self.put_new(serial_item),
            self.put_new(marker),
        ];
        Ok(
            match quota::apply(&self.clients, &self.table, &movement, extra).await? {
                Ok(()) => Ok(()),
                Err(Rejected::Insufficient) => Err(AcceptRejected::Insufficient),
                Err(Rejected::AlreadyApplied) | Err(Rejected::Condition(_)) => {
                    Err(AcceptRejected::Collision)
                }
            },
        )
    }

    async fn load(&self, job_id: &str) -> Result<Option<Job>> {
        let key = keys::job(job_id);
        let out = self
            .clients
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.map()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::table(DisplayErrorContext(e)))?;
        match out.item() {
            None => Ok(None),
            // A job that cannot be read must not look like no job: its
            // message is retried (and its stamp is never stranded as "unknown").
            Some(item) => job_from_item(item)
                .map(Some)
                .ok_or_else(|| Error::table(format!("job {job_id} is malformed in the table"))),
        }
    }

    async fn unfinished(&self, quiet_since_ms: i64, limit: usize) -> Result<Vec<String>> {
        let mut found: Vec<(String, String)> = Vec::new();
        let before = keys::sort_key(quiet_since_ms, "");
        for shard in 0..keys::PENDING_SHARDS {
            // Markers sent again lately are passed over by the filter: a few
            // pages at most, so one busy shard cannot stall a run.
            let mut start = None;
            for _page in 0..4 {
                let out = self
                    .clients
                    .dynamodb
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND sk < :before")
                    .filter_expression("attribute_not_exists(resent_at) OR resent_at < :quiet")
                    .expression_attribute_values(":pk", s(keys::unfinished_shard(shard)))
                    .expression_attribute_values(":before", s(&before))
                    .expression_attribute_values(":quiet", n(quiet_since_ms))
                    .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| Error::table(DisplayErrorContext(e)))?;
                found.extend(out.items().iter().filter_map(|item| {
                    Some((
                        get_s(item, "sk")?.to_string(),
                        get_s(item, "job_id")?.to_string(),
                    ))
                }));
                start = out.last_evaluated_key().cloned();
                if start.is_none() || found.len() >= limit {
                    break;
                }
            }
        }
        found.sort();
        Ok(found.into_iter().take(limit).map(|(_, id)| id).collect())
    }

    async fn mark_resent(&self, job: &Job, now_ms: i64) -> Result<()> {
        let marked = self
            .clients
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(
                keys::unfinished_job(&job.job_id, job.created_ms).map(),
            ))
            .update_expression("SET resent_at = :now")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        // Gone: the job ended meanwhile.
        store::condition_held(marked).map(|_| ())
    }

    async fn list(&self, owner: &AccountId, limit: i32, cursor: Option<&str>) -> Result<Page<Job>> {
        let (items, next_cursor) = crate::paging::query_gsi1_desc(
            &self.clients,
            &self.table,
            &keys::jobs_of(owner.as_str()),
            limit,
            cursor,
        )
        .await?;
        Ok(Page {
            items: items.iter().filter_map(job_from_item).collect(),
            next_cursor,
        })
    }

    async fn start(&self, job_id: &str, now_ms: i64) -> Result<bool> {
        let key = keys::job(job_id);
        let claimed = self
            .clients
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.map()))
            .update_expression("SET #status = :processing, started_at = :now ADD attempts :one")
            .condition_expression("#status IN (:queued, :processing)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":processing", s(JobStatus::Processing.as_str()))
            .expression_attribute_values(":queued", s(JobStatus::Queued.as_str()))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        store::condition_held(claimed)
    }

    async fn complete(
        &self,
        job: &Job,
        stamped_key: &str,
        sha256: &str,
        now_ms: i64,
    ) -> Result<bool> {
        let key = keys::job(&job.job_id);
        let done = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key.map()))
            .update_expression(
                "SET #status = :done, stamped_key = :key, sha256 = :sha, finished_at = :now",
            )
            .condition_expression("#status = :processing")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":done", s(JobStatus::Done.as_str()))
            .expression_attribute_values(":processing", s(JobStatus::Processing.as_str()))
            .expression_attribute_values(":key", s(stamped_key))
            .expression_attribute_values(":sha", s(sha256))
            .expression_attribute_values(":now", n(now_ms))
            .build()
            .expect("update is complete");
        let key = keys::serial(job.serial.as_str());
        let bind = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key.map()))
            .update_expression("SET #status = :bound, sha256 = :sha, stamped_at = :now")
            .condition_expression("#status = :reserved AND job_id = :job")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":bound", s("bound"))
            .expression_attribute_values(":reserved", s("reserved"))
            .expression_attribute_values(":job", s(&job.job_id))
            .expression_attribute_values(":sha", s(sha256))
            .expression_attribute_values(":now", n(now_ms))
            .build()
            .expect("update is complete");
        let movement = Movement::new(&job.account, MovementKind::Spend, 1, &job.job_id);
        let extra = vec![
            TransactWriteItem::builder().update(done).build(),
            TransactWriteItem::builder().update(bind).build(),
            self.finish(job),
        ];
        Ok(quota::apply(&self.clients, &self.table, &movement, extra)
            .await?
            .is_ok())
    }

    async fn fail(&self, job: &Job, code: &str, message: &str, now_ms: i64) -> Result<bool> {
        let key = keys::job(&job.job_id);
        let mut condition = Vec::new();
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key.map()))
            .update_expression("SET #status = :failed, error_code = :code, error_message = :message, finished_at = :now")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":failed", s(JobStatus::Failed.as_str()))
            .expression_attribute_values(":code", s(code))
            .expression_attribute_values(":message", s(message.chars().take(500).collect::<String>()))
            .expression_attribute_values(":now", n(now_ms));
        // Only from a state the job may fail from: a final job is left alone.
        for (i, state) in JobStatus::sources_of(JobStatus::Failed).iter().enumerate() {
            condition.push(format!("#status = :from{i}"));
            update = update.expression_attribute_values(format!(":from{i}"), s(state.as_str()));
        }
        let update = update
            .condition_expression(condition.join(" OR "))
            .build()
            .expect("update is complete");
        let key = keys::serial(job.serial.as_str());
        let void_serial = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key.map()))
            .update_expression("SET #status = :void")
            .condition_expression("#status = :reserved")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":void", s("void"))
            .expression_attribute_values(":reserved", s("reserved"))
            .build()
            .expect("update is complete");
        let movement = Movement::new(&job.account, MovementKind::Release, 1, &job.job_id);
        let extra = vec![
            TransactWriteItem::builder().update(update).build(),
            TransactWriteItem::builder().update(void_serial).build(),
            self.finish(job),
        ];
        Ok(quota::apply(&self.clients, &self.table, &movement, extra)
            .await?
            .is_ok())
    }

    async fn record_dead_letter(&self, record: &DeadLetter) -> Result<()> {
        let mut item = keys::dead_letter(&record.message_id).with([
            ("message_id".to_string(), s(&record.message_id)),
            ("outcome".to_string(), s(&record.outcome)),
            ("body".to_string(), s(&record.body)),
            ("receive_count".to_string(), n(record.receive_count)),
            ("recorded_at".to_string(), n(record.recorded_ms)),
            (
                "expires_at".to_string(),
                n(record.recorded_ms / 1000 + 30 * 24 * 3600),
            ),
        ]);
        if let Some(job_id) = &record.job_id {
            item.insert("job_id".to_string(), s(job_id));
        }
        self.clients
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| Error::table(DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn count_finished(&self, now_ms: i64) -> Result<()> {
        let minute = now_ms.div_euclid(60_000);
        self.clients
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::drain(minute).map()))
            .update_expression("ADD finished :one SET expires_at = :expires")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expires", n((minute + 61) * 60))
            .send()
            .await
            .map_err(|e| Error::table(DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn drain_per_minute(&self, now_ms: i64) -> Result<u64> {
        if let Some(drain) = self.drain.get() {
            return Ok(drain);
        }
        let minute = now_ms.div_euclid(60_000);
        let count = |minute: i64| async move {
            let out = self
                .clients
                .dynamodb
                .get_item()
                .table_name(&self.table)
                .set_key(Some(keys::drain(minute).map()))
                .send()
                .await
                .map_err(|e| Error::table(DisplayErrorContext(e)))?;
            Ok::<u64, Error>(
                out.item()
                    .and_then(|item| get_n(item, "finished"))
                    .map_or(0, |count| count.max(0) as u64),
            )
        };
        let (previous, current) = tokio::join!(count(minute - 1), count(minute));
        let drain =
            meterai_core::jobs::drain_per_minute(previous?, current?, now_ms.rem_euclid(60_000));
        self.drain.put(drain);
        Ok(drain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job {
            job_id: "job_01".into(),
            account: AccountId::parse("customer:c1").unwrap(),
            owner: AccountId::parse("reseller:r1").unwrap(),
            channel: "Toko".into(),
            reseller_id: Some("r1".into()),
            customer_id: Some("c1".into()),
            document_id: "doc_01".into(),
            status: JobStatus::Queued,
            serial: Serial::generate(),
            source_key: "uploads/reseller:r1/doc_01.pdf".into(),
            source_version: Some("\"5d41402abc4b2a76\"".into()),
            placement: Placement {
                page: 2,
                x: 400.0,
                y: 50.5,
                width: 100.0,
                height: 80.0,
            },
            reason: Some("CPNS".into()),
            client_reference: None,
            created_ms: 1_700_000_000_000,
            finished_ms: None,
            error_code: None,
            error_message: None,
            stamped_key: None,
            sha256: None,
            attempts: 0,
            done_by_ms: Some(1_764_900_060_000),
        }
    }

    #[test]
    fn a_job_survives_its_item() {
        let job = job();
        let item = job_item(&job);
        assert_eq!(job_from_item(&item), Some(job.clone()));
        // A job accepted before promises were made reads as promising nothing.
        let mut older = item.clone();
        older.remove("done_by");
        assert_eq!(job_from_item(&older).map(|j| j.done_by_ms), Some(None));
        assert_eq!(get_s(&item, "gsi1pk"), Some("JOBS#reseller:r1"));
        assert_eq!(get_s(&item, "pk"), Some("JOB#job_01"));
    }

    #[test]
    fn keys_are_scoped_to_the_account() {
        let account = AccountId::parse("acct-1").unwrap();
        assert_eq!(upload_key(&account, "doc_X"), "uploads/acct-1/doc_X.pdf");
        assert_eq!(
            stamped_key(&account, "job_Y", "0123456789abcdef0123"),
            "stamped/acct-1/job_Y-0123456789abcdef.pdf"
        );
    }
}
