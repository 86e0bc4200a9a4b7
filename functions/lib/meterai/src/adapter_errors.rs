//! The adapters' error mapping, on answers the emulator cannot be made to
//! give: throttling, transaction conflicts, a failed condition inside a
//! transaction, S3's 416 for an empty object. The SDK clients are real and
//! parse real wire answers; only the HTTP connection is replaced by a
//! connector that replays canned responses (the SDK's own extension point:
//! `HttpConnector`). A mocking crate for the SDK (`aws-smithy-mocks`) would
//! switch on `aws-smithy-runtime/test-util` for every SDK crate in the test
//! build, so the deployed binaries, built by the same invocation, would
//! differ from `scripts/up`'s and the whole SDK would compile twice.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::SdkBody;
use aws_smithy_runtime_api::client::http::{
    http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::http::StatusCode;

use crate::errors::{error_body, status_of};
use crate::AwsClients;
use meterai_app::ports::{AcceptRejected, Documents, Jobs};
use meterai_core::error::{codes, ErrorKind};
use meterai_core::jobs::{Job, Placement};
use meterai_core::{AccountId, JobStatus, Serial};

/// One canned HTTP answer.
#[derive(Debug, Clone)]
struct Canned {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
}

/// Replays canned answers in order (the last one again once they run out)
/// and counts the requests.
#[derive(Debug, Clone, Default)]
struct Replay {
    answers: Arc<Mutex<VecDeque<Canned>>>,
    requests: Arc<Mutex<Vec<String>>>,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl HttpConnector for Replay {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let target = request
            .headers()
            .get("x-amz-target")
            .unwrap_or(request.uri())
            .to_string();
        self.requests.lock().unwrap().push(target);
        let body = request.body().bytes().unwrap_or_default();
        self.bodies
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(body).into_owned());
        let canned = {
            let mut answers = self.answers.lock().unwrap();
            if answers.len() > 1 {
                answers.pop_front().unwrap()
            } else {
                answers.front().cloned().expect("an answer is scripted")
            }
        };
        let mut response = HttpResponse::new(
            StatusCode::try_from(canned.status).unwrap(),
            SdkBody::from(canned.body),
        );
        response
            .headers_mut()
            .insert("content-type", canned.content_type);
        for (name, value) in canned.headers {
            response.headers_mut().insert(name, value);
        }
        HttpConnectorFuture::new(async move { Ok(response) })
    }
}

impl Replay {
    fn with(answers: impl IntoIterator<Item = Canned>) -> Self {
        let replay = Self::default();
        replay.answers.lock().unwrap().extend(answers);
        replay
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }

    /// Real SDK clients whose every request this replay answers. The SDK
    /// retries twice, quickly, as it would a throttle in production.
    fn clients(&self) -> AwsClients {
        let connector = self.clone();
        let config = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("ap-southeast-3"))
            .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
                Credentials::new("AKIDTEST", "secret", None, None, "test"),
            ))
            .http_client(http_client_fn(move |_, _| {
                SharedHttpConnector::new(connector.clone())
            }))
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(2)
                    .with_initial_backoff(Duration::from_millis(1)),
            )
            .build();
        AwsClients::from_sdk_config(&config, true)
    }
}

fn dynamodb_error(status: u16, kind: &str, message: &str) -> Canned {
    Canned {
        status,
        content_type: "application/x-amz-json-1.0",
        headers: Vec::new(),
        body: format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"{message}"}}"#
        ),
    }
}

/// `TransactionCanceledException` with one reason per item.
fn cancelled(reasons: &[&str]) -> Canned {
    let reasons: Vec<String> = reasons
        .iter()
        .map(|r| format!(r#"{{"Code":"{r}"}}"#))
        .collect();
    Canned {
        status: 400,
        content_type: "application/x-amz-json-1.0",
        headers: Vec::new(),
        body: format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","message":"Transaction cancelled","CancellationReasons":[{}]}}"#,
            reasons.join(",")
        ),
    }
}

fn s3_error(status: u16, code: &str) -> Canned {
    Canned {
        status,
        content_type: "application/xml",
        headers: Vec::new(),
        body: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>arn:aws:s3:::meterai-secret-bucket/uploads/x</Message></Error>"
        ),
    }
}

fn job() -> Job {
    Job {
        job_id: "job_01JADAPTER".into(),
        account: AccountId::parse("user-1").unwrap(),
        owner: AccountId::parse("user-1").unwrap(),
        channel: "portal".into(),
        reseller_id: None,
        customer_id: None,
        document_id: "doc_01".into(),
        status: JobStatus::Processing,
        serial: Serial::generate(),
        source_key: "uploads/user-1/doc_01.pdf".into(),
        source_version: None,
        placement: Placement {
            page: 1,
            x: 10.0,
            y: 10.0,
            width: 100.0,
            height: 100.0,
        },
        reason: None,
        client_reference: None,
        created_ms: 1_795_400_000_000,
        finished_ms: None,
        error_code: None,
        error_message: None,
        stamped_key: None,
        sha256: None,
        attempts: 0,
        done_by_ms: None,
    }
}

fn jobs(replay: &Replay) -> crate::stamping::DynamoJobs {
    crate::stamping::DynamoJobs::new(replay.clients(), "meterai-secret-table")
}

#[tokio::test]
async fn a_failed_condition_is_an_outcome_not_an_error() {
    let replay = Replay::with([dynamodb_error(
        400,
        "ConditionalCheckFailedException",
        "The conditional request failed",
    )]);
    assert!(!jobs(&replay).start("job_01JADAPTER", 0).await.unwrap());
    assert_eq!(
        replay.requests().len(),
        1,
        "a failed condition is not retried"
    );
}

#[tokio::test]
async fn a_throttle_is_retried_then_told_as_unavailable_without_sdk_text() {
    let replay = Replay::with([dynamodb_error(
        400,
        "ProvisionedThroughputExceededException",
        "Rate of requests exceeds the allowed throughput for table meterai-secret-table",
    )]);
    let err = jobs(&replay).load("job_01JADAPTER").await.unwrap_err();
    assert_eq!(replay.requests().len(), 2, "the SDK retried the throttle");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(status_of(&err), 503);
    assert!(
        err.to_string().contains("ProvisionedThroughputExceeded"),
        "the log keeps the cause: {err}"
    );
    let told = serde_json::to_string(&error_body(&err, "req-7")).unwrap();
    assert!(told.contains(codes::DEPENDENCY_UNAVAILABLE) && told.contains("req-7"));
    for leak in [
        "meterai-secret-table",
        "Throughput",
        "service error",
        "ap-southeast-3",
    ] {
        assert!(!told.contains(leak), "{leak} reached the client: {told}");
    }
}

#[tokio::test]
async fn a_worker_that_cannot_read_its_job_retries_the_message() {
    let replay = Replay::with([dynamodb_error(400, "ThrottlingException", "Rate exceeded")]);
    let jobs = jobs(&replay);
    let (queue, documents, outbox) = (
        meterai_memory::MemoryQueue::default(),
        meterai_memory::MemoryDocuments::default(),
        meterai_memory::MemoryOutbox::default(),
    );
    let ports = meterai_app::stamping::StampPorts {
        jobs: &jobs,
        queue: &queue,
        documents: &documents,
        outbox: &outbox,
        clock: &meterai_app::ports::SystemClock,
    };
    let settings = meterai_app::stamping::StampSettings {
        limits: meterai_pdf::stamp::Limits::default(),
        verify_base_url: "https://meterai.test".into(),
        url_ttl: Duration::from_secs(60),
        stamp_timeout: Duration::from_secs(5),
        fault_injection: false,
        slot: Default::default(),
    };
    let signer = meterai_pdf::signing::LocalSigner::from_pem(
        include_str!("../../pdf/testdata/signing/signer.key.pem"),
        include_bytes!("../../pdf/testdata/signing/chain.pem"),
    )
    .unwrap();
    let outcome = meterai_app::stamping::work(&ports, &settings, &signer, "job_01JADAPTER").await;
    assert!(
        matches!(outcome, meterai_app::Outcome::Retry(_)),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_transaction_names_which_condition_failed() {
    // Balance first, then the ledger entry, then the job and the serial.
    let cases = [
        (
            ["ConditionalCheckFailed", "None", "None", "None"],
            Err(AcceptRejected::Insufficient),
        ),
        (
            ["None", "ConditionalCheckFailed", "None", "None"],
            Err(AcceptRejected::Collision),
        ),
        (
            ["None", "None", "ConditionalCheckFailed", "None"],
            Err(AcceptRejected::Collision),
        ),
        // Both the balance and the ledger entry fail: the balance is told.
        (
            [
                "ConditionalCheckFailed",
                "ConditionalCheckFailed",
                "None",
                "None",
            ],
            Err(AcceptRejected::Insufficient),
        ),
        (
            ["None", "None", "None", "ConditionalCheckFailed"],
            Err(AcceptRejected::Collision),
        ),
    ];
    for (reasons, expected) in cases {
        let replay = Replay::with([cancelled(&reasons)]);
        let outcome = jobs(&replay).accept(&job()).await.unwrap();
        assert_eq!(outcome, expected, "{reasons:?}");
        assert_eq!(replay.requests().len(), 1);
    }
    // Completing a job whose serial was bound before is "done before".
    let replay = Replay::with([cancelled(&[
        "None",
        "None",
        "None",
        "ConditionalCheckFailed",
    ])]);
    assert!(!jobs(&replay).complete(&job(), "k", "ab", 0).await.unwrap());
}

#[tokio::test]
async fn transaction_conflicts_are_retried_then_told_as_contention() {
    let conflict = cancelled(&["TransactionConflict", "None", "None", "None"]);
    let ok = Canned {
        status: 200,
        content_type: "application/x-amz-json-1.0",
        headers: Vec::new(),
        body: "{}".into(),
    };
    // Two conflicts, then it goes through.
    let replay = Replay::with([conflict.clone(), conflict.clone(), ok]);
    assert_eq!(jobs(&replay).accept(&job()).await.unwrap(), Ok(()));
    assert_eq!(replay.requests().len(), 3);
    // Conflicts that never end: a 409 the client may retry, after a bounded number of tries.
    let replay = Replay::with([conflict]);
    let err = jobs(&replay).accept(&job()).await.unwrap_err();
    assert_eq!((status_of(&err), err.code()), (409, codes::CONTENTION));
    assert_eq!(replay.requests().len(), 9, "one try and eight retries");
}

#[tokio::test]
async fn the_buckets_answers_become_the_documents_outcomes() {
    let documents = |replay: &Replay| crate::stamping::S3Documents {
        clients: replay.clients(),
        bucket: "meterai-secret-bucket".into(),
    };
    let replay = Replay::with([s3_error(404, "NoSuchKey")]);
    assert_eq!(
        documents(&replay).head("uploads/u/doc.pdf").await.unwrap(),
        None
    );
    let replay = Replay::with([s3_error(404, "NoSuchKey")]);
    assert_eq!(
        documents(&replay)
            .read("uploads/u/doc.pdf", 1_000, None)
            .await
            .unwrap(),
        None
    );
    // An object over the limit (an upload replaced after its accept) is
    // refused from its Content-Length, before its body is read.
    let replay = Replay::with([Canned {
        status: 200,
        content_type: "application/pdf",
        headers: vec![("content-length", "5368709120")],
        body: "%PDF-".into(),
    }]);
    let err = documents(&replay)
        .read("uploads/u/doc.pdf", 10 * 1024 * 1024, None)
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), status_of(&err)),
        (codes::DOCUMENT_TOO_LARGE, 413)
    );
    let replay = Replay::with([Canned {
        status: 200,
        content_type: "application/pdf",
        headers: vec![],
        body: "%PDF-".into(),
    }]);
    assert_eq!(
        documents(&replay)
            .read("uploads/u/doc.pdf", 1_000, None)
            .await
            .unwrap()
            .as_deref(),
        Some(&b"%PDF-"[..])
    );
    // An upload replaced after its accept fails the job's `If-Match`.
    let replay = Replay::with([s3_error(412, "PreconditionFailed")]);
    let err = documents(&replay)
        .read("uploads/u/doc.pdf", 1_000, Some("\"5d41402abc4b2a76\""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::DOCUMENT_CHANGED);
    // An empty upload has no first byte: S3 answers 416.
    let replay = Replay::with([s3_error(416, "InvalidRange")]);
    let head = documents(&replay)
        .head("uploads/u/doc.pdf")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((head.size, head.head.len()), (0, 0));
    // The size comes from Content-Range, not from the five bytes read.
    let replay = Replay::with([Canned {
        status: 206,
        content_type: "application/pdf",
        headers: vec![
            ("content-range", "bytes 0-4/123456"),
            ("etag", "\"5d41402abc4b2a76\""),
        ],
        body: "%PDF-".into(),
    }]);
    let head = documents(&replay)
        .head("uploads/u/doc.pdf")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((head.size, head.head.as_slice()), (123_456, &b"%PDF-"[..]));
    assert_eq!(head.version.as_deref(), Some("\"5d41402abc4b2a76\""));

    let replay = Replay::with([s3_error(503, "SlowDown")]);
    let err = documents(&replay)
        .store("stamped/u/j.pdf", b"%PDF-".to_vec(), Some("a-meterai.pdf"))
        .await
        .unwrap_err();
    assert_eq!((err.kind(), status_of(&err)), (ErrorKind::Unavailable, 503));
    let told = serde_json::to_string(&error_body(&err, "req-8")).unwrap();
    for leak in ["meterai-secret-bucket", "arn:", "SlowDown"] {
        assert!(!told.contains(leak), "{leak} reached the client: {told}");
    }
}

/// A job's message names its payer as its message group: on AWS a standard
/// queue with message groups is a fair queue, so one account's burst does
/// not hold back everyone else's jobs.
#[tokio::test]
async fn a_job_message_is_grouped_by_its_payer() {
    let replay = Replay::with([Canned {
        status: 200,
        content_type: "application/x-amz-json-1.0",
        headers: vec![],
        body: r#"{"MessageId":"m-1","MD5OfMessageBody":"x"}"#.into(),
    }]);
    let queue = crate::stamping::SqsJobQueue::new(
        replay.clients(),
        "https://sqs.ap-southeast-3.amazonaws.com/1/jobs",
    );
    let payer = AccountId::parse("customer:c1").unwrap();
    meterai_app::ports::JobQueue::send(&queue, "job_01", &payer)
        .await
        .unwrap();
    let sent: serde_json::Value = serde_json::from_str(&replay.bodies()[0]).unwrap();
    assert_eq!(sent["MessageGroupId"], "customer:c1", "{sent}");
    assert!(sent["MessageBody"].as_str().unwrap().contains("job_01"));
}

/// A DynamoDB answer with a JSON body.
fn dynamodb_ok(body: &str) -> Canned {
    Canned {
        status: 200,
        content_type: "application/x-amz-json-1.0",
        headers: Vec::new(),
        body: body.to_string(),
    }
}

/// A key whose first request failed and gave the key back between our
/// conditional write and our read is claimed again, not called reused (the
/// chaos run found a retry told IDEMPOTENCY_KEY_REUSED that way).
#[tokio::test]
async fn a_key_given_back_meanwhile_is_claimed_again_not_called_reused() {
    use meterai_app::ports::{Claimed, IdempotencyKeys, KeyScope};
    let refused = || {
        dynamodb_error(
            400,
            "ConditionalCheckFailedException",
            "The conditional request failed",
        )
    };
    let replay = Replay::with([refused(), dynamodb_ok("{}"), dynamodb_ok("{}")]);
    let keys = meterai_aws::idempotency::DynamoIdempotencyKeys {
        clients: replay.clients(),
        table: "t".into(),
    };
    let account = meterai_core::AccountId::parse("user-1").unwrap();
    let scope = KeyScope {
        account: &account,
        scope: "stamps",
        key: "k",
        hash: "h",
    };
    let claimed = keys.claim(&scope, 1_000).await.unwrap();
    assert!(matches!(claimed, Claimed::Run), "{claimed:?}");
    let calls = replay.requests();
    assert_eq!(calls.len(), 3, "write, read (gone), write again: {calls:?}");

    // Gone every time: in progress (the client retries), never reused.
    let gone = (0..3).flat_map(|_| [refused(), dynamodb_ok("{}")]);
    let replay = Replay::with(gone);
    let keys = meterai_aws::idempotency::DynamoIdempotencyKeys {
        clients: replay.clients(),
        table: "t".into(),
    };
    let claimed = keys.claim(&scope, 1_000).await.unwrap();
    assert!(matches!(claimed, Claimed::InProgress), "{claimed:?}");
    assert_eq!(
        replay.requests().len(),
        6,
        "three claims, each a write and a read"
    );
}
