//! The deadline, replayed against the deployed stack: an open-loop arrival of
//! users that each order, pay, upload, stamp, poll and download. Bounded in
//! sessions and time, loopback targets only (on the emulator), and it stops
//! by itself. Two schedules:
//!
//!     target/release/meterai-spike --ladder [--step-seconds 10] [--base 2] [--max-sessions 2500]
//!     target/release/meterai-spike [--seconds 60] [--base 1.0] [--factor 10] [--max-sessions 600]
//!
//! `--ladder` first measures the stack's ceiling (steps of `--step-seconds`,
//! doubling from `--base` new users/s, until a step is not carried: 1% shed,
//! a 5xx, or purchases, payment notifications or stamp accepts over 1 s at
//! p99), then offers 1x, 3x and 10x of it, and 1x again straight after the
//! 10x step to time the recovery. Without it, users ramp from a base rate to
//! `--factor` times it and back (the short run in the test command).
//!
//! Every client is well-behaved: a shed answer (429 or 503) is sent again
//! after its `Retry-After`, or a jittered backoff when it has none, with the
//! same idempotency key; job status is read as the API advises. Per phase it
//! reports each endpoint's offered, admitted and shed requests (by status and
//! code) with the latencies of each, and the jobs. Writes `report.json`,
//! `summary.md` and `spike.svg` to `--out` (default `.build/spike`), prints
//! the summary, and exits 1 on any 5xx other than a shed, a lost job or a
//! broken invariant. `--ceiling-seconds` (default 5) also measures the
//! emulator's raw ceiling: SQS sends and receives and DynamoDB conditional
//! writes per second with a plain client.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::{make_users, payment, unique, Portal, Stack};
use futures::future::join_all;
use meterai_pdf::stamp::pdf::sample_pdf;
use plotters::prelude::*;
use serde_json::json;

#[derive(Debug, Clone)]
struct Options {
    seconds: f64,
    base: f64,
    factor: f64,
    max_sessions: usize,
    ceiling_seconds: f64,
    /// Measure the stack's ceiling, then offer 1x, 3x and 10x of it.
    ladder: bool,
    /// Seconds each ladder step is offered.
    step_seconds: f64,
    out: String,
}

fn options() -> Options {
    let args = e2e::Args::from_env();
    let num = |name: &str, default: f64, max: f64| args.num(name, default, max);
    Options {
        seconds: num("--seconds", 60.0, 900.0).max(5.0),
        base: num("--base", 1.0, 50.0).max(0.1),
        factor: num("--factor", 10.0, 50.0).max(1.0),
        max_sessions: num("--max-sessions", 600.0, 5000.0) as usize,
        ceiling_seconds: num("--ceiling-seconds", 5.0, 60.0),
        ladder: args.has("--ladder"),
        step_seconds: num("--step-seconds", 10.0, 60.0).max(3.0),
        out: args.get("--out").unwrap_or_else(|| ".build/spike".into()),
    }
}

/// Arrivals per second at `t` of `total` seconds: base, ramp up, spike, ramp
/// down, base (each a share of the run).
fn rate(t: f64, total: f64, base: f64, factor: f64) -> f64 {
    let x = t / total;
    let peak = base * factor;
    match x {
        x if x < 0.25 => base,
        x if x < 0.40 => base + (peak - base) * (x - 0.25) / 0.15,
        x if x < 0.60 => peak,
        x if x < 0.75 => peak - (peak - base) * (x - 0.60) / 0.15,
        _ => base,
    }
}

/// One measured call.
#[derive(Debug, Clone)]
struct Call {
    /// Which phase of the run the session belongs to.
    phase: usize,
    endpoint: &'static str,
    at: f64,
    millis: f64,
    status: u16,
    code: String,
    /// Whether the answer said when to retry (`Retry-After`).
    retry_after: bool,
}

#[derive(Default)]
struct Log {
    calls: Vec<Call>,
    jobs: Vec<JobRecord>,
    sessions_failed: Vec<String>,
    /// Sessions started (finished or not).
    sessions: usize,
}

#[derive(Debug, Clone)]
struct JobRecord {
    phase: usize,
    account: String,
    job_id: String,
    status: String,
    serial: String,
    sha256: Option<String>,
    downloaded_sha256: Option<String>,
    /// The stamped document as downloaded (its signature is checked after the run).
    document: Option<Vec<u8>>,
    accept_to_final_ms: Option<f64>,
    /// When the client saw the job final, seconds into the run.
    final_at_s: Option<f64>,
    /// The server's own times: the job's `created_at` to `finished_at`.
    server_accept_to_final_ms: Option<f64>,
    /// When the accept promised the job final (`done_by`), ms since the epoch.
    done_by_ms: Option<f64>,
    /// When the job ended (`finished_at`), ms since the epoch.
    finished_ms: Option<f64>,
}

impl JobRecord {
    /// Whether the job ended within what its accept promised (None until
    /// both are known).
    fn kept_its_promise(&self) -> Option<bool> {
        Some(self.finished_ms? <= self.done_by_ms?)
    }
}

struct Run {
    stack: Stack,
    started: Instant,
    log: Mutex<Log>,
    pdf: Vec<u8>,
    phases: Mutex<Vec<Phase>>,
}

/// A stretch of the run offered at one schedule, reported on its own.
#[derive(Debug, Clone)]
struct Phase {
    name: String,
    /// New users per second offered at its peak.
    users_per_s: f64,
    from_s: f64,
    to_s: f64,
}

impl Run {
    fn record(&self, phase: usize, endpoint: &'static str, t0: Instant, status: u16, code: &str) {
        self.record_answer(phase, endpoint, t0, status, code, false);
    }

    fn record_answer(
        &self,
        phase: usize,
        endpoint: &'static str,
        t0: Instant,
        status: u16,
        code: &str,
        retry_after: bool,
    ) {
        let call = Call {
            phase,
            endpoint,
            at: t0.duration_since(self.started).as_secs_f64(),
            millis: t0.elapsed().as_secs_f64() * 1000.0,
            status,
            code: code.to_string(),
            retry_after,
        };
        self.log.lock().unwrap().calls.push(call);
    }
}

/// One user's whole journey. Returns an error text if it could not finish.
async fn session(
    run: Arc<Run>,
    user: Option<Portal>,
    phase: usize,
    deadline: Instant,
) -> Result<(), String> {
    let mut user = match user {
        Some(user) => user,
        None => Portal::new(&run.stack).await,
    };
    // This client counts and paces its own retries.
    user.patient = false;
    let timed = |endpoint: &'static str| (endpoint, Instant::now());

    let (key, order_request) = (unique("k"), json!({"quantity": 1}));
    let order = admitted(&run, phase, "POST /v1/orders", deadline, || {
        user.post("/v1/orders", &order_request, Some(&key))
    })
    .await;
    if order.status != 201 {
        return Err(format!("order: {} {}", order.status, label(&order)));
    }

    let notification = payment(&run.stack, &order.body, "settlement").await;
    let paid = admitted(
        &run,
        phase,
        "POST /v1/payments/notifications",
        deadline,
        || e2e::notify_once(&run.stack, &notification),
    )
    .await;
    if paid.status != 200 {
        return Err(format!("payment: {} {}", paid.status, label(&paid)));
    }

    let ticket_request = json!({"filename": "lamaran.pdf", "size": run.pdf.len()});
    let ticket = admitted(&run, phase, "POST /v1/documents", deadline, || {
        user.post("/v1/documents", &ticket_request, None)
    })
    .await;
    if ticket.status != 201 {
        return Err(format!("document: {} {}", ticket.status, label(&ticket)));
    }
    let (e, t0) = timed("PUT upload (S3)");
    let http = run.stack.http();
    let put = http
        .put(ticket.body["upload_url"].as_str().unwrap_or_default())
        .header("content-type", "application/pdf")
        .body(run.pdf.clone())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(599);
    run.record(phase, e, t0, put, "");
    if put >= 300 {
        return Err(format!("upload: {put}"));
    }

    let stamp_request =
        json!({"document_id": ticket.body["document_id"], "page": 1, "x": 450, "y": 40});
    let stamp_key = unique("sk");
    let accepted = admitted(&run, phase, "POST /v1/stamps", deadline, || {
        user.post("/v1/stamps", &stamp_request, Some(&stamp_key))
    })
    .await;
    if accepted.status != 202 {
        return Err(format!("stamp: {} {}", accepted.status, accepted.code()));
    }
    let accepted_at = Instant::now();
    let job_id = accepted.body["job_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut record = JobRecord {
        phase,
        account: user.account.clone(),
        job_id: job_id.clone(),
        status: "queued".into(),
        serial: accepted.body["serial"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        sha256: None,
        downloaded_sha256: None,
        document: None,
        accept_to_final_ms: None,
        final_at_s: None,
        server_accept_to_final_ms: None,
        done_by_ms: accepted.body["done_by"].as_str().and_then(epoch_ms),
        finished_ms: None,
    };
    // Polls as the API advises (`poll_after_seconds`, from the queue and its
    // measured drain), as a well-behaved client would; the first after 100 ms.
    let mut wait = Duration::from_millis(100);
    let job = loop {
        if Instant::now() > deadline {
            run.log.lock().unwrap().jobs.push(record);
            return Err(format!("job {job_id} not final by the deadline"));
        }
        tokio::time::sleep(wait.min(deadline.saturating_duration_since(Instant::now()))).await;
        let path = format!("/v1/stamps/{job_id}");
        let got = admitted(&run, phase, "GET /v1/stamps/{id}", deadline, || {
            user.get(&path)
        })
        .await;
        if matches!(got.body["status"].as_str(), Some("done" | "failed")) {
            record.accept_to_final_ms = Some(accepted_at.elapsed().as_secs_f64() * 1000.0);
            record.final_at_s = Some(run.started.elapsed().as_secs_f64());
            break got.body;
        }
        wait = got.body["poll_after_seconds"]
            .as_u64()
            .map_or(Duration::from_secs(1), Duration::from_secs);
    };
    record.finished_ms = job["finished_at"].as_str().and_then(epoch_ms);
    record.server_accept_to_final_ms = match (
        job["created_at"].as_str().and_then(epoch_ms),
        record.finished_ms,
    ) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    record.status = job["status"].as_str().unwrap_or_default().to_string();
    record.sha256 = job["sha256"].as_str().map(str::to_string);
    if let Some(url) = job["download_url"].as_str() {
        // A connection lost on the way is tried again, as a browser's
        // download would be; it is counted, never taken for an answer.
        for attempt in 1..=3 {
            let (e, t0) = timed("GET download (S3)");
            let got = match http.get(url).send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    response.bytes().await.map(|bytes| (status, bytes))
                }
                Err(e) => Err(e),
            };
            match got {
                Ok((status, bytes)) => {
                    run.record(phase, e, t0, status, "");
                    record.downloaded_sha256 = Some(meterai_core::ids::sha256_hex(&bytes));
                    record.document = Some(bytes.to_vec());
                    break;
                }
                Err(_) => {
                    run.record(phase, e, t0, CONNECTION_LOST, "connection lost");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
            }
        }
    }
    run.log.lock().unwrap().jobs.push(record);
    Ok(())
}

/// How many steps the ceiling's rate is offered again after the 10x step:
/// long enough for the spike's waiting users to be served, so the time to
/// recover is measured rather than cut off.
const AFTER_STEPS: f64 = 8.0;

/// The status recorded for a request whose connection was lost before any
/// answer (not an HTTP status: no server answered it).
const CONNECTION_LOST: u16 = 0;

/// Whether an answer is a shed (the request was not served, and may be sent
/// again as it was): 429 or 503.
fn is_shed(status: u16) -> bool {
    matches!(status, 429 | 503)
}

/// One API request as a well-behaved client sends it under load: a shed
/// answer is retried after its `Retry-After` (or, when the platform gave none,
/// after a jittered exponential backoff), with the same request and the same
/// idempotency key, until the deadline. Every attempt is recorded.
async fn admitted<F, Fut>(
    run: &Run,
    phase: usize,
    endpoint: &'static str,
    deadline: Instant,
    send: F,
) -> e2e::Answer
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = e2e::Answer>,
{
    let mut backoff = 1.0_f64;
    loop {
        let t0 = Instant::now();
        let answer = send().await;
        run.record_answer(
            phase,
            endpoint,
            t0,
            answer.status,
            &label(&answer),
            answer.retry_after.is_some(),
        );
        if !is_shed(answer.status) || Instant::now() >= deadline {
            return answer;
        }
        let jitter = f64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0),
        ) / 1e9;
        let wait = answer
            .retry_after
            .map(|s| s as f64 * (1.0 + 0.5 * jitter))
            .unwrap_or(backoff * (0.5 + jitter));
        backoff = (backoff * 2.0).min(16.0);
        tokio::time::sleep(
            Duration::from_secs_f64(wait).min(deadline.saturating_duration_since(Instant::now())),
        )
        .await;
    }
}

/// An answer's stable code, or what the platform said when the answer did
/// not come from our code (a Lambda error or throttle), shortened.
fn label(answer: &e2e::Answer) -> String {
    let code = answer.code();
    let text = if code.is_empty() {
        answer.platform_error()
    } else {
        code
    };
    text.chars().take(60).collect()
}

/// Milliseconds since the epoch of an RFC 3339 UTC time as the API writes it
/// (`2026-11-22T23:59:12.345Z`).
fn epoch_ms(text: &str) -> Option<f64> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<f64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
    );
    let sec = t.next()?.parse::<f64>().ok()?;
    Some(((days as f64 * 24.0 + h) * 60.0 + min) * 60_000.0 + sec * 1000.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary_of(values: &mut [f64]) -> serde_json::Value {
    values.sort_by(f64::total_cmp);
    json!({
        "count": values.len(),
        "p50_ms": (percentile(values, 50.0) * 10.0).round() / 10.0,
        "p95_ms": (percentile(values, 95.0) * 10.0).round() / 10.0,
        "p99_ms": (percentile(values, 99.0) * 10.0).round() / 10.0,
        "max_ms": (values.last().copied().unwrap_or(0.0) * 10.0).round() / 10.0,
    })
}

/// Raw throughput of the emulator with a plain client, `concurrency` tasks.
async fn ceiling(stack: &Stack, seconds: f64) -> serde_json::Value {
    if seconds <= 0.0 {
        return json!(null);
    }
    let concurrency = 16;
    let sqs = stack.sqs().await;
    let dynamodb = stack.dynamodb().await;
    let table = stack.get("METERAI_TABLE_NAME").to_string();
    let queue = sqs
        .create_queue()
        .queue_name(unique("meterai-ceiling"))
        .send()
        .await
        .expect("scratch queue")
        .queue_url
        .unwrap_or_default();
    let window = Duration::from_secs_f64(seconds);

    let count = |ops: Vec<u64>| ops.iter().sum::<u64>() as f64 / seconds;
    let sends = join_all((0..concurrency).map(|_| {
        let (sqs, queue) = (sqs.clone(), queue.clone());
        async move {
            let (start, mut n) = (Instant::now(), 0u64);
            while start.elapsed() < window {
                if sqs
                    .send_message()
                    .queue_url(&queue)
                    .message_body("x")
                    .send()
                    .await
                    .is_ok()
                {
                    n += 1;
                }
            }
            n
        }
    }))
    .await;
    let receives = join_all((0..concurrency).map(|_| {
        let (sqs, queue) = (sqs.clone(), queue.clone());
        async move {
            let (start, mut n) = (Instant::now(), 0u64);
            while start.elapsed() < window {
                let Ok(out) = sqs
                    .receive_message()
                    .queue_url(&queue)
                    .max_number_of_messages(10)
                    .send()
                    .await
                else {
                    continue;
                };
                let messages = out.messages.unwrap_or_default();
                if messages.is_empty() {
                    break;
                }
                for m in messages {
                    if let Some(h) = m.receipt_handle() {
                        let _ = sqs
                            .delete_message()
                            .queue_url(&queue)
                            .receipt_handle(h)
                            .send()
                            .await;
                    }
                    n += 1;
                }
            }
            n
        }
    }))
    .await;
    let _ = sqs.delete_queue().queue_url(&queue).send().await;
    let run_id = unique("ceiling");
    let writes = join_all((0..concurrency).map(|task| {
        let (dynamodb, table, run_id) = (dynamodb.clone(), table.clone(), run_id.clone());
        async move {
            let (start, mut n) = (Instant::now(), 0u64);
            let expires = (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 3600)
                .to_string();
            while start.elapsed() < window {
                let put = dynamodb
                    .put_item()
                    .table_name(&table)
                    .item(
                        "pk",
                        meterai::store::s(format!("CEILING#{run_id}#{task}#{n}")),
                    )
                    .item("sk", meterai::store::s("CEILING"))
                    .item(
                        "expires_at",
                        aws_sdk_dynamodb::types::AttributeValue::N(expires.clone()),
                    )
                    .condition_expression("attribute_not_exists(pk)")
                    .send()
                    .await;
                if put.is_ok() {
                    n += 1;
                }
            }
            n
        }
    }))
    .await;
    json!({
        "concurrency": concurrency,
        "seconds": seconds,
        "sqs_send_per_s": count(sends).round(),
        "sqs_receive_delete_per_s": count(receives).round(),
        "dynamodb_conditional_put_per_s": count(writes).round(),
    })
}

/// Waits until every job whose user stopped asking before it was final is
/// final in the table (at most 5 minutes). Returns how many there were.
async fn drain(dynamodb: &aws_sdk_dynamodb::Client, table: &str, jobs: &mut [JobRecord]) -> usize {
    let open: Vec<usize> = (0..jobs.len())
        .filter(|&i| !matches!(jobs[i].status.as_str(), "done" | "failed"))
        .collect();
    let until = Instant::now() + Duration::from_secs(300);
    let mut waiting = open.clone();
    while !waiting.is_empty() && Instant::now() < until {
        let mut still = Vec::new();
        for i in waiting {
            let item = dynamodb
                .get_item()
                .table_name(table)
                .set_key(Some(meterai::keys::job(&jobs[i].job_id).map()))
                .consistent_read(true)
                .send()
                .await
                .ok()
                .and_then(|out| out.item);
            let status = item
                .as_ref()
                .and_then(|item| item.get("status"))
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            let finished_ms = item
                .as_ref()
                .and_then(|item| item.get("finished_at"))
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<f64>().ok());
            match status.as_str() {
                "done" => jobs[i].status = "done after its user stopped asking".into(),
                "failed" => jobs[i].status = "failed".into(),
                _ => {
                    still.push(i);
                    continue;
                }
            }
            jobs[i].finished_ms = finished_ms;
        }
        waiting = still;
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    open.len()
}

fn start_phase(run: &Run, name: String, users_per_s: f64) -> usize {
    let mut phases = run.phases.lock().unwrap();
    let at = run.started.elapsed().as_secs_f64();
    phases.push(Phase {
        name,
        users_per_s,
        from_s: at,
        to_s: at,
    });
    phases.len() - 1
}

fn end_phase(run: &Run, phase: usize) {
    run.phases.lock().unwrap()[phase].to_s = run.started.elapsed().as_secs_f64();
}

type Sessions = Vec<tokio::task::JoinHandle<Result<(), String>>>;

/// Starts new users at `rate(t)` a second for `seconds`, as `phase`. With
/// signed-in users given, those and no more (the ladder's steps); with none,
/// each session signs its user up (the ramp). Each session gives up at
/// `patience` after it starts.
async fn offer(
    run: &Arc<Run>,
    phase: usize,
    seconds: f64,
    rate: impl Fn(f64) -> f64,
    mut users: Vec<Portal>,
    patience: Duration,
    arrivals: &mut BTreeMap<u64, f64>,
) -> Sessions {
    let begin = Instant::now();
    let offset = begin.duration_since(run.started).as_secs_f64();
    let limit = if users.is_empty() {
        usize::MAX
    } else {
        users.len()
    };
    let (mut sessions, mut owed, step, mut t) = (Vec::new(), 0.0, 0.01, 0.0);
    while t < seconds {
        owed += rate(t) * step;
        while owed >= 1.0 && sessions.len() < limit {
            owed -= 1.0;
            *arrivals.entry((offset + t) as u64).or_default() += 1.0;
            let deadline = Instant::now() + patience;
            sessions.push(tokio::spawn(session(
                run.clone(),
                users.pop(),
                phase,
                deadline,
            )));
        }
        t += step;
        tokio::time::sleep_until((begin + Duration::from_secs_f64(t)).into()).await;
    }
    sessions
}

/// Waits for every session, keeping the reason of each that could not finish.
async fn finish(run: &Run, sessions: Sessions) {
    let count = sessions.len();
    for outcome in join_all(sessions).await {
        let failed = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(e) => format!("panicked: {e}"),
        };
        run.log.lock().unwrap().sessions_failed.push(failed);
    }
    run.log.lock().unwrap().sessions += count;
}

/// Whether the stack carried a phase: no answer 5xx other than a shed, under
/// 1% of requests shed, and purchases, payment notifications and stamp
/// accepts admitted with p99 under 1 s. With the figures that decided it.
fn carried(log: &Log, phase: usize) -> (bool, String) {
    let calls: Vec<&Call> = log.calls.iter().filter(|c| c.phase == phase).collect();
    let api: Vec<&&Call> = calls
        .iter()
        .filter(|c| !c.endpoint.contains("(S3)"))
        .collect();
    let shed = api.iter().filter(|c| is_shed(c.status)).count();
    let failed = api
        .iter()
        .filter(|c| c.status >= 500 && !is_shed(c.status))
        .count();
    let mut key: Vec<f64> = api
        .iter()
        .filter(|c| KEY_ENDPOINTS.contains(&c.endpoint) && !is_shed(c.status))
        .map(|c| c.millis)
        .collect();
    key.sort_by(f64::total_cmp);
    let p99 = percentile(&key, 99.0);
    let share = shed as f64 / api.len().max(1) as f64;
    (
        failed == 0 && share < 0.01 && p99 < 1000.0,
        format!(
            "{} requests, {shed} shed ({:.1}%), {failed} failed, purchases/notifications/accepts p99 {p99:.0} ms",
            api.len(),
            share * 100.0
        ),
    )
}

/// The requests a deadline must never lose: buying, being credited, stamping.
const KEY_ENDPOINTS: [&str; 3] = [
    "POST /v1/orders",
    "POST /v1/payments/notifications",
    "POST /v1/stamps",
];

/// One line of the chart: its label, colour and points.
type Line<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

fn chart(path: &str, seconds: f64, lines: &[Line], depth: &[(f64, f64)]) {
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).ok();
    let (top, bottom) = root.split_vertically(300);
    let max_rate = lines
        .iter()
        .flat_map(|l| l.2.iter())
        .map(|p| p.1)
        .fold(1.0, f64::max);
    if let Ok(mut c) = ChartBuilder::on(&top)
        .caption(
            "Offered, admitted and shed API requests, new users and finished jobs per second",
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..seconds, 0.0..max_rate * 1.1)
    {
        c.configure_mesh()
            .x_desc("seconds")
            .y_desc("per second")
            .draw()
            .ok();
        for (label, color, points) in lines {
            let color = *color;
            c.draw_series(LineSeries::new(points.iter().copied(), color))
                .map(|s| {
                    s.label(*label)
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color))
                })
                .ok();
        }
        c.configure_series_labels().border_style(BLACK).draw().ok();
    }
    let max_depth = depth.iter().map(|p| p.1).fold(1.0, f64::max);
    let end = depth.last().map(|p| p.0).unwrap_or(seconds).max(seconds);
    if let Ok(mut c) = ChartBuilder::on(&bottom)
        .caption("Jobs queue depth (visible + in flight)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..end, 0.0..max_depth * 1.1)
    {
        c.configure_mesh()
            .x_desc("seconds")
            .y_desc("messages")
            .draw()
            .ok();
        c.draw_series(LineSeries::new(depth.iter().copied(), &GREEN))
            .ok();
    }
    root.present().ok();
}

#[tokio::main]
async fn main() {
    let opts = options();
    let stack = Stack::load();
    if let Some(host) = reqwest::Url::parse(stack.api_url())
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
    {
        let local = host.ends_with(".localhost") || host == "127.0.0.1" || host == "localhost";
        if !local {
            eprintln!("meterai-spike only targets the local stack (loopback); {host} is not");
            std::process::exit(2);
        }
    }
    std::fs::create_dir_all(&opts.out).expect("output directory");
    println!(
        "measuring the emulator's ceiling ({} s each)...",
        opts.ceiling_seconds
    );
    let ceiling = ceiling(&stack, opts.ceiling_seconds).await;

    let run = Arc::new(Run {
        stack: stack.clone(),
        started: Instant::now(),
        log: Mutex::new(Log::default()),
        pdf: sample_pdf(2, [0, 0, 595, 842], None),
        phases: Mutex::new(Vec::new()),
    });
    // Queue depth, sampled until the run is over.
    let sqs = stack.sqs().await;
    let queue_url = stack.get("METERAI_JOBS_QUEUE_URL").to_string();
    let depth_log = Arc::new(Mutex::new(Vec::<(f64, f64)>::new()));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (depth_log, sampling, started) = (depth_log.clone(), sampling.clone(), run.started);
        tokio::spawn(async move {
            use aws_sdk_sqs::types::QueueAttributeName as A;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(out) = sqs
                    .get_queue_attributes()
                    .queue_url(&queue_url)
                    .attribute_names(A::ApproximateNumberOfMessages)
                    .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
                    .send()
                    .await
                {
                    let attrs = out.attributes.unwrap_or_default();
                    let n: f64 = [
                        A::ApproximateNumberOfMessages,
                        A::ApproximateNumberOfMessagesNotVisible,
                    ]
                    .iter()
                    .filter_map(|k| attrs.get(k).and_then(|v| v.parse::<f64>().ok()))
                    .sum();
                    depth_log
                        .lock()
                        .unwrap()
                        .push((started.elapsed().as_secs_f64(), n));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };

    // Open loop: arrivals follow the schedule whatever the answers do.
    let mut arrivals: BTreeMap<u64, f64> = BTreeMap::new();
    let mut budget = opts.max_sessions;
    let mut ceiling_users_per_s = None;
    // As long as the portal's waiting room keeps a user trying.
    let patience = Duration::from_secs(600);
    if opts.ladder {
        // The ceiling: the highest rate, doubling from the base, whose step
        // the stack carries (each step runs to its end before the next).
        let step = opts.step_seconds;
        let mut rate = opts.base;
        let mut carried_rate = None;
        loop {
            let wanted = (rate * step).ceil() as usize;
            if wanted > budget / 4 {
                println!(
                    "ceiling probe stops at {rate}/s: the session budget is kept for the ladder"
                );
                break;
            }
            budget -= wanted;
            let users = make_users(&stack, wanted).await;
            let phase = start_phase(&run, format!("probe {rate}/s"), rate);
            let sessions = offer(&run, phase, step, |_| rate, users, patience, &mut arrivals).await;
            end_phase(&run, phase);
            finish(&run, sessions).await;
            let (ok, why) = carried(&run.log.lock().unwrap(), phase);
            println!("probe {rate} new users/s: {why}");
            if !ok {
                break;
            }
            carried_rate = Some(rate);
            rate *= 2.0;
        }
        let ceiling = carried_rate.unwrap_or(opts.base / 2.0);
        ceiling_users_per_s = Some(ceiling);
        println!(
            "ceiling: {ceiling} new users/s carried; offering 1x, 3x, 10x of it for {step} s each"
        );
        // Users for 1x, 3x, 10x and the 1x after it (AFTER_STEPS steps):
        // 14 + AFTER_STEPS steps at the ceiling. Past the budget, every step
        // is cut alike (and says so in its offered counts), so the 1x after
        // the spike is still run.
        let cut = (budget as f64 / ((14.0 + AFTER_STEPS) * ceiling * step)).min(1.0);
        if cut < 1.0 {
            println!(
                "the session budget carries {:.0}% of each step's users",
                cut * 100.0
            );
        }
        let mut take = |n: f64| {
            let n = ((n * cut).ceil() as usize).min(budget);
            budget -= n;
            n
        };
        let (one, three) = (take(ceiling * step), take(3.0 * ceiling * step));
        let (ten, after) = (
            take(10.0 * ceiling * step),
            take(AFTER_STEPS * ceiling * step),
        );
        for (name, factor, n) in [("1x", 1.0, one), ("3x", 3.0, three)] {
            let users = make_users(&stack, n).await;
            let phase = start_phase(&run, name.into(), ceiling * factor);
            let sessions = offer(
                &run,
                phase,
                step,
                |_| ceiling * factor,
                users,
                patience,
                &mut arrivals,
            )
            .await;
            end_phase(&run, phase);
            finish(&run, sessions).await;
        }
        // 10x, and straight after it 1x again: how long until it is served as before.
        let (spike_users, after_users) = (
            make_users(&stack, ten).await,
            make_users(&stack, after).await,
        );
        let phase = start_phase(&run, "10x".into(), ceiling * 10.0);
        let mut sessions = offer(
            &run,
            phase,
            step,
            |_| ceiling * 10.0,
            spike_users,
            patience,
            &mut arrivals,
        )
        .await;
        end_phase(&run, phase);
        let phase = start_phase(&run, "after (1x)".into(), ceiling);
        sessions.extend(
            offer(
                &run,
                phase,
                AFTER_STEPS * step,
                |_| ceiling,
                after_users,
                patience,
                &mut arrivals,
            )
            .await,
        );
        end_phase(&run, phase);
        finish(&run, sessions).await;
    } else {
        println!(
            "spike: {} s, {:.1} -> {:.1} new users/s, at most {} users",
            opts.seconds,
            opts.base,
            opts.base * opts.factor,
            opts.max_sessions
        );
        let phase = start_phase(&run, "ramp".into(), opts.base * opts.factor);
        let schedule = |t: f64| rate(t, opts.seconds, opts.base, opts.factor);
        // At most `budget` users: the schedule is cut to what they fill.
        let total: f64 = (0..(opts.seconds * 100.0) as usize)
            .map(|i| schedule(i as f64 / 100.0) / 100.0)
            .sum();
        let cut = (budget as f64 / total.max(1.0)).min(1.0);
        let sessions = offer(
            &run,
            phase,
            opts.seconds,
            |t| schedule(t) * cut,
            Vec::new(),
            Duration::from_secs_f64(opts.seconds + 120.0),
            &mut arrivals,
        )
        .await;
        end_phase(&run, phase);
        finish(&run, sessions).await;
    }
    let started_sessions = run.log.lock().unwrap().sessions;
    let elapsed = run.started.elapsed().as_secs_f64();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = sampler.await;

    // Invariants after the run, from the stack itself.
    let clients = stack.clients().await;
    let table = stack.get("METERAI_TABLE_NAME").to_string();
    let mut log = std::mem::take(&mut *run.log.lock().unwrap());
    // Draining: a job whose user stopped asking before it was final is read
    // from the table until it is (at most 5 minutes), then judged.
    let drained = drain(&clients.dynamodb, &table, &mut log.jobs).await;
    let mut problems: Vec<String> = Vec::new();
    let accounts: HashSet<&str> = log.jobs.iter().map(|j| j.account.as_str()).collect();
    for account in &accounts {
        let id = meterai_core::AccountId::parse(account).expect("valid account");
        match meterai::quota::audit(&clients, &table, &id).await {
            Ok(report) if report.holds() && report.balance.reserved == 0 => {}
            Ok(report) => problems.push(format!(
                "audit of {account}: {:?} reserved {}",
                report.problems, report.balance.reserved
            )),
            Err(e) => problems.push(format!("audit of {account} failed: {e}")),
        }
    }
    let mut serials = HashSet::new();
    let verifier = stack.http();
    let chain = meterai_pdf::signing::Chain::from_pem(&stack.signing_chain_pem().await)
        .expect("the stack's signing chain");
    // pdfsig (poppler), when installed, judges every signature too.
    let pdfsig = std::process::Command::new("pdfsig")
        .arg("-v")
        .output()
        .is_ok();
    let scratch = e2e::oracles::Scratch::new("spike-signatures");
    let mut signatures_checked = 0;
    for job in &log.jobs {
        if !serials.insert(job.serial.clone()) {
            problems.push(format!("serial {} used twice", job.serial));
        }
        match job.status.as_str() {
            "done" => {
                if job.sha256.is_none() || job.sha256 != job.downloaded_sha256 {
                    problems.push(format!(
                        "job {}: stored and downloaded documents differ",
                        job.job_id
                    ));
                }
                let url = format!("{}/v1/verify/{}", stack.api_url(), job.serial);
                let record: serde_json::Value = match verifier.get(url).send().await {
                    Ok(r) => r.json().await.unwrap_or_default(),
                    Err(_) => serde_json::Value::Null,
                };
                if record["sha256"].as_str() != job.sha256.as_deref() {
                    problems.push(format!(
                        "serial {} is not bound to job {}'s document",
                        job.serial, job.job_id
                    ));
                }
                if let Some(document) = &job.document {
                    if let Err(problem) = signature_problem(document, &job.serial, &chain) {
                        problems.push(format!("job {}: {problem}", job.job_id));
                    }
                    if pdfsig {
                        let file = scratch.write("stamped.pdf", document);
                        let (_, text) = e2e::oracles::run("pdfsig", &[e2e::oracles::s(&file)]);
                        if !text.contains("Signature Validation: Signature is Valid.") {
                            problems.push(format!("job {}: pdfsig: {text}", job.job_id));
                        }
                    }
                    signatures_checked += 1;
                }
            }
            "failed" | "done after its user stopped asking" => {}
            other => problems.push(format!("job {} lost in state {other}", job.job_id)),
        }
        match (job.done_by_ms, job.kept_its_promise()) {
            (None, _) => problems.push(format!("job {}: its accept promised no time", job.job_id)),
            (Some(by), Some(false)) => problems.push(format!(
                "job {} ended {:.1} s after the time its accept promised",
                job.job_id,
                (job.finished_ms.unwrap_or(by) - by) / 1000.0
            )),
            _ => {}
        }
    }

    // Figures, per phase and for the whole run.
    let server_errors: usize = log
        .calls
        .iter()
        .filter(|c| c.status >= 500 && !is_shed(c.status))
        .count();
    if server_errors > 0 {
        problems.push(format!("{server_errors} answers were 5xx other than 503"));
    }
    // Every user must get through: bought, paid, stamped, final. A session
    // that gave up (shed until its patience ran out, or refused) is a problem,
    // so a stack that refuses everyone cannot pass.
    for failed in &log.sessions_failed {
        problems.push(format!("a user could not finish: {failed}"));
    }
    if started_sessions > 0 && !log.jobs.iter().any(|j| j.status == "done") {
        problems.push("no job was stamped".into());
    }
    let phases = run.phases.lock().unwrap().clone();
    let phase_reports: Vec<serde_json::Value> = phases
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut figures = figures_of(&log, Some(i));
            figures["name"] = json!(p.name);
            figures["new_users_per_s"] = json!(p.users_per_s);
            figures["from_s"] = json!((p.from_s * 10.0).round() / 10.0);
            figures["to_s"] = json!((p.to_s * 10.0).round() / 10.0);
            figures
        })
        .collect();
    let overall = figures_of(&log, None);

    // Per second: requests offered (every attempt), admitted and shed, and
    // jobs seen final.
    let mut offered_per_s: BTreeMap<u64, f64> = BTreeMap::new();
    let mut admitted_per_s: BTreeMap<u64, f64> = BTreeMap::new();
    let mut shed_per_s: BTreeMap<u64, f64> = BTreeMap::new();
    let mut key_latency_per_s: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for call in log.calls.iter().filter(|c| !c.endpoint.contains("(S3)")) {
        let second = call.at as u64;
        *offered_per_s.entry(second).or_default() += 1.0;
        if is_shed(call.status) {
            *shed_per_s.entry(second).or_default() += 1.0;
        } else {
            *admitted_per_s.entry(second).or_default() += 1.0;
            if KEY_ENDPOINTS.contains(&call.endpoint) {
                key_latency_per_s
                    .entry(second)
                    .or_default()
                    .push(call.millis);
            }
        }
    }
    let mut final_per_s: BTreeMap<u64, f64> = BTreeMap::new();
    for at in log.jobs.iter().filter_map(|j| j.final_at_s) {
        *final_per_s.entry(at as u64).or_default() += 1.0;
    }
    // Recovery: seconds from the end of the 10x step to the first second
    // from which, to the end of the 1x step that follows it (still offering
    // load), every 5 s window is carried as the ceiling's steps had to be:
    // under 1% shed (the spike's own retries included) and the key requests
    // served with p99 under 1 s.
    let recovery_s = phases
        .iter()
        .position(|p| p.name == "10x")
        .and_then(|i| Some((phases[i].to_s, phases.get(i + 1)?.to_s)))
        .map(|(spike_end, after_end)| {
            const WINDOW: u64 = 5;
            let sum = |per_s: &BTreeMap<u64, f64>, from: u64| -> f64 {
                per_s.range(from..from + WINDOW).map(|(_, n)| n).sum()
            };
            let calm = |from: u64| {
                let mut key: Vec<f64> = key_latency_per_s
                    .range(from..from + WINDOW)
                    .flat_map(|(_, v)| v.iter().copied())
                    .collect();
                key.sort_by(f64::total_cmp);
                sum(&shed_per_s, from) < 0.01 * sum(&offered_per_s, from).max(1.0)
                    && percentile(&key, 99.0) < 1000.0
            };
            let (first, last) = (spike_end.floor() as u64, after_end.floor() as u64);
            (first..last.saturating_sub(WINDOW))
                .find(|&t| (t..last.saturating_sub(WINDOW)).all(calm))
                .map(|t| (t as f64 - spike_end).max(0.0))
        });
    // The spike's backlog: seconds from the end of the 10x step until the
    // last job of a user who arrived in it was seen final. Past the ceiling
    // the backlog drains only at the capacity left over by the users still
    // arriving, so this is the figure that says how long the spike was felt.
    let backlog_served_s = phases.iter().position(|p| p.name == "10x").map(|i| {
        log.jobs
            .iter()
            .filter(|j| j.phase == i)
            .filter_map(|j| j.final_at_s)
            .fold(phases[i].to_s, f64::max)
            - phases[i].to_s
    });
    let peak_rps = offered_per_s.values().copied().fold(0.0, f64::max);
    let depth = depth_log.lock().unwrap().clone();
    let report = json!({
        "options": {"seconds": opts.seconds, "base_users_per_s": opts.base, "factor": opts.factor, "max_sessions": opts.max_sessions, "ladder": opts.ladder, "step_seconds": opts.step_seconds},
        "elapsed_s": (elapsed * 10.0).round() / 10.0,
        "jobs_final_only_after_their_user_stopped_asking": drained,
        "sessions": {"started": started_sessions, "failed": log.sessions_failed.len(), "failures": log.sessions_failed.iter().take(20).collect::<Vec<_>>()},
        "ceiling_new_users_per_s": ceiling_users_per_s,
        "seconds_to_recover_after_10x": recovery_s.map(|r| r.map(|s| (s * 10.0).round() / 10.0)),
        "seconds_until_the_10x_users_were_served": backlog_served_s.map(|s| (s * 10.0).round() / 10.0),
        "requests": log.calls.len(),
        "peak_api_requests_per_s": peak_rps,
        "phases": phase_reports,
        "overall": overall,
        "queue_depth_max": depth.iter().map(|p| p.1).fold(0.0, f64::max),
        "queue_depth": depth.iter().map(|(t, d)| json!([(t * 10.0).round() / 10.0, d])).collect::<Vec<_>>(),
        "emulator_ceiling": ceiling,
        "invariants": {"accounts_audited": accounts.len(), "serials_checked": serials.len(), "problems": problems},
    });
    let out = &opts.out;
    std::fs::write(
        format!("{out}/report.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    // Every second of the run, 0 where nothing happened.
    let series = |m: &BTreeMap<u64, f64>| -> Vec<(f64, f64)> {
        (0..=elapsed as u64)
            .map(|s| (s as f64, m.get(&s).copied().unwrap_or(0.0)))
            .collect()
    };
    chart(
        &format!("{out}/spike.svg"),
        elapsed,
        &[
            ("new users/s", RED, series(&arrivals)),
            ("API requests offered/s", BLUE, series(&offered_per_s)),
            ("admitted/s", GREEN, series(&admitted_per_s)),
            ("shed/s", MAGENTA, series(&shed_per_s)),
            ("jobs final/s", BLACK, series(&final_per_s)),
        ],
        &depth,
    );

    let mut md = String::new();
    md.push_str(&format!(
        "# Spike run\n\n{} users over {:.0} s, {} API and S3 requests, peak {:.0} API requests/s offered.\n",
        started_sessions,
        elapsed,
        log.calls.len(),
        peak_rps
    ));
    if let Some(c) = ceiling_users_per_s {
        md.push_str(&format!(
            "\nCeiling: {c} new users/s (the highest rate, doubling from {}, whose {} s step was carried: under 1% shed, no 5xx, purchases, notifications and accepts p99 under 1 s). Then 1x, 3x and 10x of it, and 1x again for {} steps straight after the 10x step. Time to recover after 10x (every 5 s window from then to the end of that 1x carried: under 1% shed, key requests p99 under 1 s): {}.\n",
            opts.base,
            opts.step_seconds,
            AFTER_STEPS,
            match recovery_s {
                Some(Some(s)) => format!("{s:.0} s"),
                Some(None) => "not within the 1x step after it".into(),
                None => "-".into(),
            }
        ));
        if let Some(s) = backlog_served_s {
            md.push_str(&format!(
                "The last job of a user who arrived during the 10x step was final {s:.0} s after it ended.\n"
            ));
        }
    }
    for phase in report["phases"].as_array().unwrap() {
        md.push_str(&format!(
            "\n## {} ({} new users/s, {} s to {} s)\n\n",
            phase["name"].as_str().unwrap_or(""),
            phase["new_users_per_s"],
            phase["from_s"],
            phase["to_s"]
        ));
        md.push_str(&figures_markdown(phase));
    }
    if phases.len() > 1 {
        md.push_str("\n## The whole run\n\n");
        md.push_str(&figures_markdown(&report["overall"]));
    }
    md.push_str(&format!(
        "\nQueue depth peaked at {}.\n",
        report["queue_depth_max"]
    ));
    if !ceiling.is_null() {
        md.push_str(&format!(
            "\nEmulator ceiling ({} tasks, plain client): SQS send {}/s, SQS receive+delete {}/s, DynamoDB conditional put {}/s.\n",
            ceiling["concurrency"], ceiling["sqs_send_per_s"], ceiling["sqs_receive_delete_per_s"], ceiling["dynamodb_conditional_put_per_s"]
        ));
    }
    md.push_str(&format!(
        "\nInvariants: {} accounts audited (purchased = available + reserved + spent + refunded + sold, reserved 0), {} serials unique and bound to their stored documents, {} signatures valid (intact, ours, for their serial{}): {}.\n\nChart: spike.svg\n",
        accounts.len(),
        serials.len(),
        signatures_checked,
        if pdfsig { "; and by pdfsig" } else { "" },
        if problems.is_empty() { "all hold".to_string() } else { format!("{} PROBLEMS: {problems:?}", problems.len()) }
    ));
    std::fs::write(format!("{out}/summary.md"), &md).unwrap();
    println!("{md}");
    println!("report: {out}/report.json, chart: {out}/spike.svg");
    if !problems.is_empty() {
        std::process::exit(1);
    }
}

/// One phase's figures (or the whole run's): per endpoint what was offered
/// (every attempt), admitted (served) and shed (429/503, to be sent again),
/// the latencies of each apart, and the jobs its sessions had accepted.
fn figures_of(log: &Log, phase: Option<usize>) -> serde_json::Value {
    #[derive(Default)]
    struct Figures {
        admitted: Vec<f64>,
        shed: Vec<f64>,
        shed_by: BTreeMap<String, usize>,
    }
    let ours = |p: usize| phase.is_none_or(|wanted| wanted == p);
    let mut by_endpoint: BTreeMap<&str, Figures> = BTreeMap::new();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    let mut shed_without_retry_after = 0;
    let mut connections_lost = 0;
    for call in log.calls.iter().filter(|c| ours(c.phase)) {
        let figures = by_endpoint.entry(call.endpoint).or_default();
        if call.status == CONNECTION_LOST {
            connections_lost += 1;
        } else if is_shed(call.status) {
            figures.shed.push(call.millis);
            *figures
                .shed_by
                .entry(format!("{} {}", call.status, call.code))
                .or_default() += 1;
            if !call.retry_after {
                shed_without_retry_after += 1;
            }
        } else {
            figures.admitted.push(call.millis);
            if call.status >= 400 {
                *errors
                    .entry(format!("{} {} {}", call.endpoint, call.status, call.code))
                    .or_default() += 1;
            }
        }
    }
    let endpoints: serde_json::Map<String, serde_json::Value> = by_endpoint
        .iter_mut()
        .map(|(k, f)| {
            let offered = f.admitted.len() + f.shed.len();
            (
                k.to_string(),
                json!({
                    "offered": offered,
                    "admitted": summary_of(&mut f.admitted),
                    "shed": summary_of(&mut f.shed),
                    "shed_by_status_and_code": f.shed_by,
                }),
            )
        })
        .collect();
    let jobs: Vec<&JobRecord> = log.jobs.iter().filter(|j| ours(j.phase)).collect();
    let mut client: Vec<f64> = jobs.iter().filter_map(|j| j.accept_to_final_ms).collect();
    let mut server: Vec<f64> = jobs
        .iter()
        .filter_map(|j| j.server_accept_to_final_ms)
        .collect();
    let kept = jobs
        .iter()
        .filter(|j| j.kept_its_promise() == Some(true))
        .count();
    let broken = jobs
        .iter()
        .filter(|j| j.kept_its_promise() == Some(false))
        .count();
    let mut promised: Vec<f64> = jobs
        .iter()
        .filter_map(|j| Some(j.done_by_ms? - (j.finished_ms? - j.server_accept_to_final_ms?)))
        .collect();
    json!({
        "endpoints": endpoints,
        "errors": errors,
        "shed_without_retry_after": shed_without_retry_after,
        "connections_lost": connections_lost,
        "promises": {"kept": kept, "broken": broken, "promised": summary_of(&mut promised)},
        "jobs": {"accepted": jobs.len(),
                 "done": jobs.iter().filter(|j| j.status.starts_with("done")).count(),
                 "done_after_their_user_stopped_asking": jobs.iter().filter(|j| j.status == "done after its user stopped asking").count(),
                 "failed": jobs.iter().filter(|j| j.status == "failed").count(),
                 "accept_to_final_client": summary_of(&mut client),
                 "accept_to_stamped_server": summary_of(&mut server)},
    })
}

fn figures_markdown(figures: &serde_json::Value) -> String {
    let mut md = String::from("| endpoint | offered | admitted | shed | admitted p50 / p95 / p99 ms | shed p50 / p99 ms | shed by status and code |\n| --- | ---: | ---: | ---: | ---: | ---: | --- |\n");
    for (name, s) in figures["endpoints"].as_object().into_iter().flatten() {
        let (a, shed) = (&s["admitted"], &s["shed"]);
        let by = s["shed_by_status_and_code"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        md.push_str(&format!(
            "| {name} | {} | {} | {} | {} / {} / {} | {} / {} | {by} |\n",
            s["offered"],
            a["count"],
            shed["count"],
            a["p50_ms"],
            a["p95_ms"],
            a["p99_ms"],
            shed["p50_ms"],
            shed["p99_ms"],
        ));
    }
    let jobs = &figures["jobs"];
    let (client, server) = (
        &jobs["accept_to_final_client"],
        &jobs["accept_to_stamped_server"],
    );
    md.push_str(&format!(
        "\nShed answers without Retry-After: {}. Errors (4xx) by endpoint, status and code: {}.\n\nJobs: {} accepted, {} done ({} of them after their user stopped asking), {} failed. Accept -> stamped (the job's own times) p50 {} ms, p99 {} ms; as a client polling as advised saw it p50 {} ms, p99 {} ms.\n",
        figures["shed_without_retry_after"],
        if figures["errors"].as_object().is_none_or(|e| e.is_empty()) {
            "none".to_string()
        } else {
            figures["errors"].to_string()
        },
        jobs["accepted"],
        jobs["done"],
        jobs["done_after_their_user_stopped_asking"],
        jobs["failed"],
        server["p50_ms"],
        server["p99_ms"],
        client["p50_ms"],
        client["p99_ms"],
    ));
    let promises = &figures["promises"];
    md.push_str(&format!(
        "Promises (`done_by` at the accept): {} kept, {} broken; promised p50 {} ms, max {} ms. Connections lost and tried again: {}.\n",
        promises["kept"],
        promises["broken"],
        promises["promised"]["p50_ms"],
        promises["promised"]["max_ms"],
        figures["connections_lost"],
    ));
    md
}

/// Our signature on a stamped document, checked in-process: the one naming
/// `serial`, intact, by our certificate, covering the whole file.
fn signature_problem(
    document: &[u8],
    serial: &str,
    chain: &meterai_pdf::signing::Chain,
) -> Result<(), String> {
    let limits = meterai_pdf::stamp::Limits::default();
    let found = meterai_pdf::stamp::signatures::signatures(document, &limits)
        .map_err(|e| format!("unreadable: {e}"))?;
    let ours = found
        .iter()
        .find(|s| s.reason == format!("e-Meterai {serial}"))
        .ok_or("no signature names the serial")?;
    if ours.signed_len() != Some(document.len()) {
        return Err("the signature does not cover the whole file".into());
    }
    let digest = ours.digest(document).ok_or("no byte range")?;
    let check = meterai_pdf::signing::check(&ours.contents, &digest, chain)?;
    if check.is_valid() {
        Ok(())
    } else {
        Err(format!("signature invalid: {check:?}"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_api_timestamps() {
        let a = super::epoch_ms("2026-11-22T23:59:59.900Z").unwrap();
        let b = super::epoch_ms("2026-11-23T00:00:00.150Z").unwrap();
        assert!((b - a - 250.0).abs() < 1e-6, "{}", b - a);
        assert_eq!(super::epoch_ms("1970-01-01T00:00:01Z"), Some(1000.0));
        assert_eq!(super::epoch_ms("not a time"), None);
    }
}
