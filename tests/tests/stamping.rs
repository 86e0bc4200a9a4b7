//! Stamping end to end: buy, pay, upload, stamp, poll, download, through the
//! deployed API Gateway, SQS queue and worker.

use std::process::Command;

use e2e::{assert_audit, send_patiently, unique, Portal, Stack};
use futures::future::join_all;
use meterai_pdf::stamp::pdf::sample_pdf;
use serde_json::json;

fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test]
async fn buy_pay_upload_stamp_poll_download() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    user.buy(&stack, 2).await;
    let original = sample_pdf(3, [0, 0, 595, 842], None);
    let document = user.upload(&original).await;

    let accepted = user.stamp(&document, 2, 450.0, 40.0).await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    assert_eq!(accepted.body["status"], "queued");
    assert!(accepted.body["queue_position"].as_i64().unwrap() >= 0);
    let serial = accepted.body["serial"].as_str().unwrap().to_string();
    assert_eq!(serial.len(), 22);
    let after_accept = user.quota().await;
    assert_eq!(
        after_accept["available"].as_i64().unwrap()
            + after_accept["reserved"].as_i64().unwrap()
            + after_accept["spent"].as_i64().unwrap(),
        2
    );

    let job = user
        .wait_job(accepted.body["job_id"].as_str().unwrap())
        .await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["serial"], serial.as_str());
    // The accept promised a time, the job keeps it and shows it, and kept it.
    let at = |field: &str| {
        time::OffsetDateTime::parse(
            job[field].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    assert_eq!(job["done_by"], accepted.body["done_by"], "{job}");
    let promised = at("done_by") - at("created_at");
    assert!(
        (60.0..=900.0).contains(&promised.as_seconds_f64()),
        "{promised}"
    );
    assert!(at("finished_at") <= at("done_by"), "{job}");
    // The business metrics, as CloudWatch reads them (Embedded Metric
    // Format): the accept counted by the stamps function, the job's end and
    // its accept-to-done time by the worker, with its id unindexed.
    let job_id = accepted.body["job_id"].as_str().unwrap();
    let emf = |line: &str| -> serde_json::Value {
        serde_json::from_str(line.trim()).expect("an EMF line is JSON")
    };
    let done = e2e::eventually(
        "the worker's stamps_done metric",
        std::time::Duration::from_secs(20),
        || async {
            stack
                .logged("worker", job_id)
                .await
                .into_iter()
                .find(|l| l.contains("stamps_done"))
        },
    )
    .await;
    let done = emf(&done);
    assert_eq!(done["_aws"]["CloudWatchMetrics"][0]["Namespace"], "meterai");
    assert_eq!(done["stamps_done"], 1);
    assert!(done["accept_to_done_ms"].as_i64().unwrap() >= 0, "{done}");
    assert_eq!(
        done["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        serde_json::json!([["Function"]])
    );
    let accepts = stack.logged("stamps", "stamps_accepted").await;
    assert!(
        accepts
            .iter()
            .map(|l| emf(l))
            .any(|m| m["stamps_accepted"] == 1
                && m["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                    .as_array()
                    .is_some_and(|metrics| metrics.contains(
                        &serde_json::json!({"Name": "stamps_accepted", "Unit": "Count"})
                    ))),
        "{accepts:?}"
    );
    let stamped = user.download(&job).await;
    assert!(
        stamped.starts_with(&original),
        "the original bytes are the prefix"
    );
    assert_eq!(
        job["sha256"].as_str().unwrap(),
        meterai_core::ids::sha256_hex(&stamped)
    );

    let dir = std::env::temp_dir().join(unique("e2e-stamped"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("stamped.pdf");
    std::fs::write(&file, &stamped).unwrap();
    let check = tool("qpdf", &["--check", file.to_str().unwrap()]);
    assert!(
        check.contains("No syntax or stream encoding errors"),
        "{check}"
    );
    let page2 = tool(
        "pdftotext",
        &["-f", "2", "-l", "2", file.to_str().unwrap(), "-"],
    );
    assert!(page2.contains(&serial), "serial on page 2: {page2}");
    std::fs::remove_dir_all(&dir).ok();

    assert_eq!(
        user.quota().await,
        json!({"purchased": 2, "available": 1, "reserved": 0, "spent": 1, "refunded": 0, "sold": 0})
    );
    let listed = user.get("/v1/stamps").await;
    assert_eq!(listed.body["jobs"][0]["job_id"], job["job_id"]);
    assert_audit(&stack, &user).await;

    // What the operator's tool shows of the same account: the balance the
    // user sees, an audit that holds, the movements newest first.
    let shown = e2e::admin(&[
        "account",
        "show",
        "--account",
        &user.account,
        "--ledger",
        "5",
    ]);
    assert_eq!(shown["audit_holds"], true, "{shown}");
    assert_eq!(shown["balance"]["spent"], 1, "{shown}");
    assert_eq!(shown["balance"]["available"], 1, "{shown}");
    let entries = shown["latest_ledger_entries"].as_array().unwrap();
    assert!(!entries.is_empty() && entries.len() <= 5, "{shown}");
    assert_eq!(shown["latest_jobs"][0]["job_id"], job["job_id"], "{shown}");
    assert_eq!(shown["latest_jobs"][0]["account"], user.account.as_str());
    // The serial as the operators see it: bound, to this job, paid by this user.
    let traced = e2e::admin(&["serial", "show", "--serial", &serial]);
    assert_eq!(traced["serial"]["status"], "bound", "{traced}");
    assert_eq!(traced["serial"]["job_id"], job["job_id"], "{traced}");
    assert_eq!(traced["serial"]["sha256"], job["sha256"], "{traced}");
    assert_eq!(traced["job"]["account"], user.account.as_str(), "{traced}");
    assert_eq!(traced["job"]["status"], "done", "{traced}");
    let peeked = e2e::admin(&["dead-letters", "peek", "--queue", "webhooks", "--max", "3"]);
    let messages = peeked["messages"].as_array().expect("a list");
    assert!(messages.len() <= 3, "{peeked}");
    for message in messages {
        assert!(message["message_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()));
        assert!(message["receive_count"].as_i64().is_some_and(|n| n >= 1));
    }
    let waiting = e2e::admin(&["dead-letters", "count"]);
    assert!(
        waiting["jobs"].as_i64().is_some_and(|n| n >= 0)
            && waiting["webhooks"].as_i64().is_some_and(|n| n >= 0),
        "{waiting}"
    );
}

#[tokio::test]
async fn bad_stamp_requests_are_4xx_or_fail_the_job_and_return_the_stamp() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    let none = user
        .stamp(
            &user.upload(&sample_pdf(1, [0, 0, 595, 842], None)).await,
            1,
            10.0,
            10.0,
        )
        .await;
    assert_eq!((none.status, none.code()), (402, "INSUFFICIENT_QUOTA"));
    user.buy(&stack, 3).await;

    let stranger = Portal::new(&stack).await;
    let theirs = stranger
        .upload(&sample_pdf(1, [0, 0, 595, 842], None))
        .await;
    let a = user.stamp(&theirs, 1, 10.0, 10.0).await;
    assert_eq!(
        (a.status, a.code()),
        (404, "DOCUMENT_NOT_FOUND"),
        "another user's document"
    );
    let not_pdf = user.upload(b"GIF89a not a pdf at all").await;
    let a = user.stamp(&not_pdf, 1, 10.0, 10.0).await;
    assert_eq!((a.status, a.code()), (422, "NOT_A_PDF"));
    let a = user.get("/v1/stamps/job_01JC0000000000000000000000").await;
    assert_eq!((a.status, a.code()), (404, "JOB_NOT_FOUND"));
    let big = user
        .post(
            "/v1/documents",
            &json!({"filename": "x.pdf", "size": 50_000_000}),
            None,
        )
        .await;
    assert_eq!((big.status, big.code()), (413, "DOCUMENT_TOO_LARGE"));
    let doc = user.upload(&sample_pdf(2, [0, 0, 595, 842], None)).await;
    let a = user
        .post(
            "/v1/stamps",
            &json!({"document_id": doc, "page": 0, "x": 1, "y": 1}),
            Some("k-page0"),
        )
        .await;
    assert_eq!((a.status, a.code()), (400, "INVALID_PLACEMENT"));
    let key = unique("k");
    let first = user
        .post(
            "/v1/stamps",
            &json!({"document_id": doc, "page": 9, "x": 1, "y": 1}),
            Some(&key),
        )
        .await;
    assert_eq!(first.status, 202);
    let reused = user
        .post(
            "/v1/stamps",
            &json!({"document_id": doc, "page": 1, "x": 1, "y": 1}),
            Some(&key),
        )
        .await;
    assert_eq!(
        (reused.status, reused.code()),
        (422, "IDEMPOTENCY_KEY_REUSED")
    );

    // Permanent failures end `failed` with a code, and the stamp comes back.
    let off_page = user.stamp(&doc, 1, 560.0, 10.0).await;
    let failed_page = user.wait_job(first.body["job_id"].as_str().unwrap()).await;
    assert_eq!(
        (
            failed_page["status"].as_str(),
            failed_page["error"]["code"].as_str()
        ),
        (Some("failed"), Some("PAGE_OUT_OF_RANGE"))
    );
    let failed_rect = user
        .wait_job(off_page.body["job_id"].as_str().unwrap())
        .await;
    assert_eq!(failed_rect["error"]["code"], "RECT_OFF_PAGE");
    let job_of_other = stranger
        .get(&format!(
            "/v1/stamps/{}",
            first.body["job_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        (job_of_other.status, job_of_other.code()),
        (404, "JOB_NOT_FOUND")
    );

    assert_eq!(
        user.quota().await,
        json!({"purchased": 3, "available": 3, "reserved": 0, "spent": 0, "refunded": 0, "sold": 0})
    );
    assert_audit(&stack, &user).await;
}

#[tokio::test]
async fn a_hundred_jobs_for_sixty_stamps() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    user.buy(&stack, 60).await;
    let doc = user.upload(&sample_pdf(1, [0, 0, 595, 842], None)).await;
    let requests: Vec<_> = (0..100)
        .map(|i| json!({"document_id": doc, "page": 1, "x": (i % 5) as f64 * 100.0, "y": 10.0}))
        .collect();
    let batch = user
        .post(
            "/v1/stamps/batch",
            &json!({"requests": requests}),
            Some(&unique("batch")),
        )
        .await;
    assert_eq!(batch.status, 200, "{:?}", batch.body);
    let results = batch.body["results"].as_array().unwrap();
    let accepted: Vec<&str> = results
        .iter()
        .filter(|r| r["status"] == 202)
        .map(|r| r["job"]["job_id"].as_str().unwrap())
        .collect();
    let refused = results
        .iter()
        .filter(|r| r["status"] == 402 && r["error"]["code"] == "INSUFFICIENT_QUOTA")
        .count();
    assert_eq!((accepted.len(), refused), (60, 40));
    // A read of a job still waiting says when to read again, and an
    // unchanged one sent back with its tag costs no body; a final job's read
    // has neither. (Which state each read meets depends on the worker's
    // pace; the rules themselves are tested in memory.)
    let read = |id: &str, tag: Option<String>| {
        let mut request = stack
            .http()
            .get(format!("{}/v1/stamps/{id}", stack.api_url()))
            .bearer_auth(&user.token);
        if let Some(tag) = tag {
            request = request.header("if-none-match", tag);
        }
        send_patiently(request)
    };
    for id in accepted.iter().rev().take(10) {
        let first = read(id, None).await;
        let headers = first.headers().clone();
        let body: serde_json::Value = first.json().await.unwrap();
        if matches!(body["status"].as_str(), Some("done" | "failed")) {
            assert!(headers.get("etag").is_none() && headers.get("retry-after").is_none());
            assert!(body.get("poll_after_seconds").is_none(), "{body}");
            continue;
        }
        let after = headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap();
        assert!((1..=30).contains(&after), "{after}");
        assert_eq!(body["poll_after_seconds"].as_u64(), Some(after), "{body}");
        let tag = headers["etag"].to_str().unwrap().to_string();
        let again = read(id, Some(tag.clone())).await;
        match again.status().as_u16() {
            304 => assert!(again.bytes().await.unwrap().is_empty()),
            200 => assert_ne!(
                again.headers().get("etag").map(|t| t.to_str().unwrap()),
                Some(tag.as_str())
            ),
            other => panic!("{other}"),
        }
    }
    let jobs = join_all(accepted.iter().map(|id| user.wait_job(id))).await;
    let last = read(accepted[59], None).await;
    assert!(last.headers().get("etag").is_none() && last.headers().get("retry-after").is_none());
    let done = jobs.iter().filter(|j| j["status"] == "done").count();
    let serials: std::collections::HashSet<&str> =
        jobs.iter().map(|j| j["serial"].as_str().unwrap()).collect();
    assert_eq!(serials.len(), 60, "one serial per job");
    let quota = user.quota().await;
    assert_eq!(quota["reserved"], 0, "idle: nothing stays reserved");
    assert_eq!(quota["spent"].as_i64().unwrap(), done as i64);
    assert_eq!(
        quota["available"].as_i64().unwrap(),
        60 - done as i64,
        "failed jobs returned their stamps"
    );
    assert_audit(&stack, &user).await;
}

/// The worker dies after writing the stamped document and before recording it
/// (simulated on the local stage), and the message comes back: exactly one
/// spend, one serial, one stamped document.
#[tokio::test]
async fn a_worker_crash_between_store_and_record_spends_once() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    user.buy(&stack, 1).await;
    let original = sample_pdf(1, [0, 0, 595, 842], None);
    let doc = user.upload(&original).await;
    let body = json!({"document_id": doc, "page": 1, "x": 10, "y": 10, "client_reference": meterai_app::stamping::Fault::CrashAfterStore.reference()});
    let accepted = user.post("/v1/stamps", &body, Some(&unique("chaos"))).await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    let job_id = accepted.body["job_id"].as_str().unwrap();
    let job = user.wait_job(job_id).await;
    assert_eq!(job["status"], "done", "{job}");

    let clients = stack.clients().await;
    let jobs = meterai::stamping::DynamoJobs::new(clients.clone(), stack.get("METERAI_TABLE_NAME"));
    let stored = meterai_app::ports::Jobs::load(&jobs, job_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.attempts, 2,
        "the first attempt crashed, the second finished"
    );
    let stamped = user.download(&job).await;
    assert!(stamped.starts_with(&original));
    assert_eq!(
        job["sha256"].as_str().unwrap(),
        meterai_core::ids::sha256_hex(&stamped),
        "the serial is bound to the stored file"
    );
    assert_eq!(
        user.quota().await,
        json!({"purchased": 1, "available": 0, "reserved": 0, "spent": 1, "refunded": 0, "sold": 0})
    );
    let ledger = user.get("/v1/ledger").await;
    let spends = ledger.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "spend")
        .count();
    assert_eq!(spends, 1);
    assert_audit(&stack, &user).await;
}

/// The accept path when the queue refuses the message: the library's
/// `stamping::accept` runs here against the deployed table and bucket (real
/// calls) but with the URL of a queue that does not exist, as a queue outage
/// would look. The client is told 503 without a word of the queue; the job
/// is recorded and waits, its stamp reserved; the client's retry with the
/// same key queues that very job, which is stamped: one stamp in all.
#[tokio::test]
async fn a_job_the_queue_refused_is_queued_by_the_retry() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    user.buy(&stack, 1).await;
    let document = user.upload(&sample_pdf(1, [0, 0, 595, 842], None)).await;
    let queue_url = stack.get("METERAI_JOBS_QUEUE_URL");
    let settings = settings();
    // The deployed table and bucket, and a queue that does not exist.
    let gone_queue = format!("{}-{}", queue_url, unique("gone"));
    let deployed = Deployed::new(&stack, &gone_queue).await;
    let ports = deployed.ports();
    let request = meterai::request::stamp_request(
        &json!({ "document_id": document, "page": 1, "x": 10, "y": 10 }),
    )
    .unwrap();
    let actor = meterai_app::stamping::Actor::portal(&user.account_id());
    let seed = unique("seed");
    let err = meterai_app::stamping::accept(&ports, &settings, &actor, &request, &seed)
        .await
        .unwrap_err();
    assert_eq!(meterai::errors::status_of(&err), 503, "{err:?}");
    // What a client would be told of this real SQS failure: the code and a
    // request id; the queue's URL (which names the account) and the SDK's
    // text stay in the log line.
    let told = serde_json::to_string(&meterai::errors::error_body(&err, "req-1")).unwrap();
    assert!(
        told.contains("DEPENDENCY_UNAVAILABLE") && told.contains("req-1"),
        "{told}"
    );
    for leak in [
        gone_queue.as_str(),
        "000000000000",
        "arn:",
        "NonExistentQueue",
        "QueueDoesNotExist",
        "service error",
    ] {
        assert!(!told.contains(leak), "{leak} reached the client: {told}");
    }
    assert!(
        err.to_string().len() > "dependency queue failed: ".len() + 10,
        "the log keeps the cause: {err}"
    );

    let quota = user.quota().await;
    assert_eq!(
        (quota["available"].as_i64(), quota["reserved"].as_i64()),
        (Some(0), Some(1)),
        "{quota}"
    );
    let jobs = user.get("/v1/stamps").await;
    let job = &jobs.body["jobs"][0];
    assert_eq!(job["status"], "queued", "{job}");
    assert_audit(&stack, &user).await;

    // The client's retry (same key, same request) once the queue is back.
    let deployed = Deployed::new(&stack, queue_url).await;
    let ports = deployed.ports();
    let retried = meterai_app::stamping::accept(&ports, &settings, &actor, &request, &seed)
        .await
        .unwrap();
    assert_eq!(retried.job_id, job["job_id"].as_str().unwrap());
    let done = user.wait_job(&retried.job_id).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(
        user.quota().await,
        json!({"purchased": 1, "available": 0, "reserved": 0, "spent": 1, "refunded": 0, "sold": 0})
    );
    assert_audit(&stack, &user).await;
}

/// A job whose message never reached the queue: the accept died between
/// its transaction and the send. The client's retry finds that job and
/// queues it (no second stamp is reserved); a job nobody asks about again is
/// sent by the schedule once it has been quiet too long. Real table, queue,
/// worker and scheduled function.
#[tokio::test]
async fn a_job_whose_message_was_lost_is_found_again_and_never_reserves_twice() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    user.buy(&stack, 2).await;
    let deployed = Deployed::new(&stack, stack.get("METERAI_JOBS_QUEUE_URL")).await;
    let ports = deployed.ports();
    let jobs = &deployed.jobs;
    let actor = meterai_app::stamping::Actor::portal(&user.account_id());
    // What the dead accept had written: the job, its stamp reserved.
    let lost = |document: String, seed: &str, created_ms: i64| meterai_core::jobs::Job {
        job_id: meterai_core::jobs::job_id_for(seed),
        account: user.account_id(),
        owner: user.account_id(),
        channel: "portal".into(),
        reseller_id: None,
        customer_id: None,
        source_key: format!("uploads/{}/{document}.pdf", user.account_id()),
        document_id: document,
        status: meterai_core::JobStatus::Queued,
        serial: meterai_core::Serial::generate(),
        source_version: None,
        placement: meterai_core::jobs::Placement {
            page: 1,
            x: 10.0,
            y: 10.0,
            width: 100.0,
            height: 100.0,
        },
        reason: None,
        client_reference: None,
        created_ms,
        finished_ms: None,
        error_code: None,
        error_message: None,
        stamped_key: None,
        sha256: None,
        attempts: 0,
        done_by_ms: None,
    };
    use meterai_app::ports::Jobs;
    let now = meterai_core::time::now_ms();

    // 1. The client retries with the same key and request.
    let document = user.upload(&sample_pdf(1, [0, 0, 595, 842], None)).await;
    let seed = unique("seed");
    let first = lost(document.clone(), &seed, now);
    jobs.accept(&first).await.unwrap().unwrap();
    let request = meterai::request::stamp_request(
        &json!({ "document_id": document, "page": 1, "x": 10, "y": 10 }),
    )
    .unwrap();
    let settings = settings();
    let retried = meterai_app::stamping::accept(&ports, &settings, &actor, &request, &seed)
        .await
        .unwrap();
    assert_eq!(
        retried.job_id, first.job_id,
        "the retry found the first job"
    );
    assert_eq!(retried.serial, first.serial.to_string());
    let done = user.wait_job(&first.job_id).await;
    assert_eq!(done["status"], "done", "{done}");

    // 2. Nobody asks again: the schedule (every minute) sends it once it
    // has been quiet for longer than a job normally waits.
    let document = user.upload(&sample_pdf(1, [0, 0, 595, 842], None)).await;
    let quiet = lost(
        document,
        &unique("seed"),
        now - meterai_core::jobs::RESEND_AFTER_MS - 60_000,
    );
    jobs.accept(&quiet).await.unwrap().unwrap();
    assert_eq!(unfinished(&stack, &quiet).await, 1, "listed with its job");
    let done = user.wait_job(&quiet.job_id).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(
        user.quota().await,
        json!({"purchased": 2, "available": 0, "reserved": 0, "spent": 2, "refunded": 0, "sold": 0})
    );
    // Ended in the step that spent their stamps: no longer listed unfinished.
    for job in [&first, &quiet] {
        assert_eq!(
            unfinished(&stack, job).await,
            0,
            "{} is still listed",
            job.job_id
        );
    }
    assert_audit(&stack, &user).await;
}

/// The upload URL is good for the declared size only, and the worker reads
/// the version of the upload that was accepted or nothing: the deployed
/// bucket's own ETags and `If-Match`, through the worker's S3 adapter.
#[tokio::test]
async fn an_upload_is_bound_to_its_size_and_the_accepted_version() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    let pdf = sample_pdf(1, [0, 0, 595, 842], None);
    let ticket = user
        .post(
            "/v1/documents",
            &json!({"filename": "surat.pdf", "size": pdf.len()}),
            None,
        )
        .await;
    assert_eq!(ticket.status, 201, "{:?}", ticket.body);
    let url = ticket.body["upload_url"].as_str().unwrap();
    // SigV4 signs the length: S3 refuses a body of any other size.
    let signed = reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "X-Amz-SignedHeaders")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    assert!(signed.split(';').any(|h| h == "content-length"), "{signed}");
    let put = |bytes: Vec<u8>| {
        stack
            .http()
            .put(url)
            .header("content-type", "application/pdf")
            .body(bytes)
            .send()
    };
    assert!(put(pdf.clone()).await.unwrap().status().is_success());

    let documents = meterai::stamping::S3Documents {
        clients: stack.clients().await,
        bucket: stack.get("METERAI_BUCKET_NAME").to_string(),
    };
    use meterai_app::ports::Documents;
    let key = documents.upload_key(
        &user.account_id(),
        ticket.body["document_id"].as_str().unwrap(),
    );
    let accepted = documents.head(&key).await.unwrap().unwrap();
    let version = accepted.version.clone().expect("S3 names the version");
    let max = 10 * 1024 * 1024;
    let read = documents.read(&key, max, Some(&version)).await.unwrap();
    assert_eq!(read.as_deref(), Some(pdf.as_slice()));

    // The same URL used again with other bytes of the same size.
    let mut other = pdf.clone();
    let at = other.len() - 20;
    other[at] ^= 1;
    assert!(put(other.clone()).await.unwrap().status().is_success());
    let err = documents.read(&key, max, Some(&version)).await.unwrap_err();
    assert_eq!(err.code(), meterai_core::error::codes::DOCUMENT_CHANGED);
    let now = documents
        .head(&key)
        .await
        .unwrap()
        .unwrap()
        .version
        .unwrap();
    assert_ne!(now, version);
    let read = documents.read(&key, max, Some(&now)).await.unwrap();
    assert_eq!(read.as_deref(), Some(other.as_slice()));
}

/// How many unfinished markers the table holds for `job` (0 or 1).
async fn unfinished(stack: &Stack, job: &meterai_core::jobs::Job) -> i32 {
    let marker = meterai::keys::unfinished_job(&job.job_id, job.created_ms);
    stack
        .dynamodb()
        .await
        .query()
        .table_name(stack.get("METERAI_TABLE_NAME"))
        .key_condition_expression("pk = :pk AND sk = :sk")
        .expression_attribute_values(":pk", meterai::store::s(&marker.pk))
        .expression_attribute_values(":sk", meterai::store::s(&marker.sk))
        .send()
        .await
        .unwrap()
        .count()
}

/// The library's stamping use cases on the deployed table, bucket and
/// outbox, with the jobs queue at `queue_url` (real calls throughout).
struct Deployed {
    jobs: meterai::stamping::DynamoJobs,
    queue: meterai::stamping::SqsJobQueue,
    documents: meterai::stamping::S3Documents,
    outbox: meterai::events::DynamoOutbox,
}

impl Deployed {
    async fn new(stack: &Stack, queue_url: &str) -> Self {
        let clients = stack.clients().await;
        Self {
            jobs: meterai::stamping::DynamoJobs::new(
                clients.clone(),
                stack.get("METERAI_TABLE_NAME"),
            ),
            queue: meterai::stamping::SqsJobQueue::new(clients.clone(), queue_url),
            documents: meterai::stamping::S3Documents {
                clients: clients.clone(),
                bucket: stack.get("METERAI_BUCKET_NAME").to_string(),
            },
            outbox: meterai::events::DynamoOutbox {
                clients,
                outbox: None,
                mail_queue_url: None,
            },
        }
    }

    fn ports(&self) -> meterai_app::stamping::StampPorts<'_> {
        meterai_app::stamping::StampPorts {
            jobs: &self.jobs,
            queue: &self.queue,
            documents: &self.documents,
            outbox: &self.outbox,
            clock: &meterai_app::ports::SystemClock,
        }
    }
}

fn settings() -> meterai::stamping::StampSettings {
    meterai::stamping::StampSettings {
        limits: meterai_pdf::stamp::Limits::default(),
        verify_base_url: "http://127.0.0.1/v1/verify".into(),
        url_ttl: std::time::Duration::from_secs(300),
        stamp_timeout: std::time::Duration::from_secs(20),
        fault_injection: false,
        slot: Default::default(),
    }
}
