//! The deadline, replayed against the deployed stack: an open-loop arrival of
//! users that each order, pay, upload, stamp, poll and download, ramping from
//! a base rate to a spike (10x by default) and back. Bounded in sessions and
//! time, loopback targets only (on the emulator), and it stops by itself.
//!
//!     target/release/meterai-spike [--seconds 60] [--base 1.0] [--factor 10]
//!                                  [--max-sessions 600] [--ceiling-seconds 5] [--out .build/spike]
//!
//! Writes `report.json`, `summary.md` and `spike.svg` to `--out`, prints the
//! summary, and exits 1 on any 5xx, lost job or broken invariant.
//! `--ceiling-seconds` first measures the emulator's own ceiling: raw SQS
//! sends and receives and DynamoDB conditional writes per second with a plain
//! client, so the figures can be read as a share of what the stack can do.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::{payment, unique, Portal, Stack};
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
    out: String,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The last occurrence wins, so a script's defaults can be overridden.
    let get = |name: &str| {
        args.iter()
            .rposition(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let num = |name: &str, default: f64, max: f64| {
        get(name)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(default)
            .clamp(0.0, max)
    };
    Options {
        seconds: num("--seconds", 60.0, 900.0).max(5.0),
        base: num("--base", 1.0, 50.0).max(0.1),
        factor: num("--factor", 10.0, 50.0).max(1.0),
        max_sessions: num("--max-sessions", 600.0, 5000.0) as usize,
        ceiling_seconds: num("--ceiling-seconds", 5.0, 60.0),
        out: get("--out").unwrap_or_else(|| ".build/spike".into()),
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
    endpoint: &'static str,
    at: f64,
    millis: f64,
    status: u16,
    code: String,
}

#[derive(Default)]
struct Log {
    calls: Vec<Call>,
    jobs: Vec<JobRecord>,
    sessions_failed: Vec<String>,
}

#[derive(Debug, Clone)]
struct JobRecord {
    account: String,
    job_id: String,
    status: String,
    serial: String,
    sha256: Option<String>,
    downloaded_sha256: Option<String>,
    /// The stamped document as downloaded (its signature is checked after the run).
    document: Option<Vec<u8>>,
    accept_to_final_ms: Option<f64>,
    /// The server's own times: the job's `created_at` to `finished_at`.
    server_accept_to_final_ms: Option<f64>,
}

struct Run {
    stack: Stack,
    started: Instant,
    log: Mutex<Log>,
    pdf: Vec<u8>,
}

impl Run {
    fn record(&self, endpoint: &'static str, t0: Instant, status: u16, code: &str) {
        let call = Call {
            endpoint,
            at: t0.duration_since(self.started).as_secs_f64(),
            millis: t0.elapsed().as_secs_f64() * 1000.0,
            status,
            code: code.to_string(),
        };
        self.log.lock().unwrap().calls.push(call);
    }
}

/// One user's whole journey. Returns an error text if it could not finish.
async fn session(run: Arc<Run>, deadline: Instant) -> Result<(), String> {
    let user = Portal::new(&run.stack).await;
    let timed = |endpoint: &'static str| (endpoint, Instant::now());

    let (e, t0) = timed("POST /v1/orders");
    let order = user
        .post("/v1/orders", &json!({"quantity": 1}), Some(&unique("k")))
        .await;
    run.record(e, t0, order.status, order.code());
    if order.status != 201 {
        return Err(format!("order: {}", order.status));
    }

    let (e, t0) = timed("POST /v1/payments/notifications");
    let paid = e2e::notify(
        &run.stack,
        &payment(&run.stack, &order.body, "settlement").await,
    )
    .await;
    run.record(e, t0, paid.status, paid.code());
    if paid.status != 200 {
        return Err(format!("payment: {}", paid.status));
    }

    let (e, t0) = timed("POST /v1/documents");
    let ticket = user
        .post(
            "/v1/documents",
            &json!({"filename": "lamaran.pdf", "size": run.pdf.len()}),
            None,
        )
        .await;
    run.record(e, t0, ticket.status, ticket.code());
    if ticket.status != 201 {
        return Err(format!("document: {}", ticket.status));
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
    run.record(e, t0, put, "");
    if put >= 300 {
        return Err(format!("upload: {put}"));
    }

    let (e, t0) = timed("POST /v1/stamps");
    let accepted = user
        .post(
            "/v1/stamps",
            &json!({"document_id": ticket.body["document_id"], "page": 1, "x": 450, "y": 40}),
            Some(&unique("sk")),
        )
        .await;
    run.record(e, t0, accepted.status, accepted.code());
    if accepted.status != 202 {
        return Err(format!("stamp: {} {}", accepted.status, accepted.code()));
    }
    let accepted_at = Instant::now();
    let job_id = accepted.body["job_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut record = JobRecord {
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
        server_accept_to_final_ms: None,
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
        let (e, t0) = timed("GET /v1/stamps/{id}");
        let got = user.get(&format!("/v1/stamps/{job_id}")).await;
        run.record(e, t0, got.status, got.code());
        if matches!(got.body["status"].as_str(), Some("done" | "failed")) {
            record.accept_to_final_ms = Some(accepted_at.elapsed().as_secs_f64() * 1000.0);
            break got.body;
        }
        wait = got.body["poll_after_seconds"]
            .as_u64()
            .map_or(Duration::from_secs(1), Duration::from_secs);
    };
    record.server_accept_to_final_ms = match (
        job["created_at"].as_str().and_then(epoch_ms),
        job["finished_at"].as_str().and_then(epoch_ms),
    ) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    record.status = job["status"].as_str().unwrap_or_default().to_string();
    record.sha256 = job["sha256"].as_str().map(str::to_string);
    if let Some(url) = job["download_url"].as_str() {
        let (e, t0) = timed("GET download (S3)");
        match http.get(url).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let bytes = response.bytes().await.unwrap_or_default();
                run.record(e, t0, status, "");
                record.downloaded_sha256 = Some(meterai_core::ids::sha256_hex(&bytes));
                record.document = Some(bytes.to_vec());
            }
            Err(_) => run.record(e, t0, 599, "unreachable"),
        }
    }
    run.log.lock().unwrap().jobs.push(record);
    Ok(())
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

fn chart(
    path: &str,
    seconds: f64,
    arrivals: &[(f64, f64)],
    requests: &[(f64, f64)],
    depth: &[(f64, f64)],
) {
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).ok();
    let (top, bottom) = root.split_vertically(300);
    let max_rate = requests
        .iter()
        .chain(arrivals)
        .map(|p| p.1)
        .fold(1.0, f64::max);
    if let Ok(mut c) = ChartBuilder::on(&top)
        .caption(
            "Spike: arrivals and API requests per second",
            ("sans-serif", 18),
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
        c.draw_series(LineSeries::new(requests.iter().copied(), &BLUE))
            .map(|s| {
                s.label("API requests/s")
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE))
            })
            .ok();
        c.draw_series(LineSeries::new(arrivals.iter().copied(), &RED))
            .map(|s| {
                s.label("new users/s")
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED))
            })
            .ok();
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
    let deadline = run.started + Duration::from_secs_f64(opts.seconds + 120.0);
    let mut sessions = Vec::new();
    let mut arrivals: BTreeMap<u64, f64> = BTreeMap::new();
    let mut owed = 0.0;
    let step = 0.01;
    let mut t = 0.0;
    println!(
        "spike: {} s, {:.1} -> {:.1} new users/s, at most {} users",
        opts.seconds,
        opts.base,
        opts.base * opts.factor,
        opts.max_sessions
    );
    while t < opts.seconds && sessions.len() < opts.max_sessions {
        owed += rate(t, opts.seconds, opts.base, opts.factor) * step;
        while owed >= 1.0 && sessions.len() < opts.max_sessions {
            owed -= 1.0;
            *arrivals.entry(t as u64).or_default() += 1.0;
            sessions.push(tokio::spawn(session(run.clone(), deadline)));
        }
        t += step;
        let due = run.started + Duration::from_secs_f64(t);
        tokio::time::sleep_until(due.into()).await;
    }
    let started_sessions = sessions.len();
    for outcome in join_all(sessions).await {
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => run.log.lock().unwrap().sessions_failed.push(e),
            Err(e) => run
                .log
                .lock()
                .unwrap()
                .sessions_failed
                .push(format!("panicked: {e}")),
        }
    }
    let elapsed = run.started.elapsed().as_secs_f64();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = sampler.await;

    // Invariants after the run, from the stack itself.
    let clients = stack.clients().await;
    let table = stack.get("METERAI_TABLE_NAME").to_string();
    let log = std::mem::take(&mut *run.log.lock().unwrap());
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
            "failed" => {}
            other => problems.push(format!("job {} lost in state {other}", job.job_id)),
        }
    }

    // Figures.
    let mut by_endpoint: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_second: BTreeMap<u64, f64> = BTreeMap::new();
    for call in &log.calls {
        by_endpoint
            .entry(call.endpoint)
            .or_default()
            .push(call.millis);
        if call.status >= 400 {
            *errors
                .entry(format!("{} {} {}", call.endpoint, call.status, call.code))
                .or_default() += 1;
        }
        if !call.endpoint.contains("(S3)") {
            *per_second.entry(call.at as u64).or_default() += 1.0;
        }
    }
    let server_errors: usize = log.calls.iter().filter(|c| c.status >= 500).count();
    if server_errors > 0 {
        problems.push(format!("{server_errors} answers were 5xx"));
    }
    for failed in &log.sessions_failed {
        if failed.contains("not final") {
            problems.push(failed.clone());
        }
    }
    let endpoints: serde_json::Map<String, serde_json::Value> = by_endpoint
        .iter_mut()
        .map(|(k, v)| (k.to_string(), summary_of(v)))
        .collect();
    let mut accept_to_final: Vec<f64> = log
        .jobs
        .iter()
        .filter_map(|j| j.accept_to_final_ms)
        .collect();
    let mut server_accept_to_final: Vec<f64> = log
        .jobs
        .iter()
        .filter_map(|j| j.server_accept_to_final_ms)
        .collect();
    let done = log.jobs.iter().filter(|j| j.status == "done").count();
    let failed = log.jobs.iter().filter(|j| j.status == "failed").count();
    let peak_rps = per_second.values().copied().fold(0.0, f64::max);
    let depth = depth_log.lock().unwrap().clone();
    let report = json!({
        "options": {"seconds": opts.seconds, "base_users_per_s": opts.base, "factor": opts.factor, "max_sessions": opts.max_sessions},
        "elapsed_s": (elapsed * 10.0).round() / 10.0,
        "sessions": {"started": started_sessions, "failed": log.sessions_failed.len(), "failures": log.sessions_failed.iter().take(20).collect::<Vec<_>>()},
        "requests": log.calls.len(),
        "peak_api_requests_per_s": peak_rps,
        "endpoints": endpoints,
        "errors": errors,
        "jobs": {"accepted": log.jobs.len(), "done": done, "failed": failed,
                  "accept_to_final_client": summary_of(&mut accept_to_final),
                  "accept_to_stamped_server": summary_of(&mut server_accept_to_final)},
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
    let arrivals_series: Vec<(f64, f64)> = arrivals.iter().map(|(s, n)| (*s as f64, *n)).collect();
    let request_series: Vec<(f64, f64)> = per_second.iter().map(|(s, n)| (*s as f64, *n)).collect();
    chart(
        &format!("{out}/spike.svg"),
        elapsed,
        &arrivals_series,
        &request_series,
        &depth,
    );

    let mut md = String::new();
    md.push_str(&format!(
        "# Spike run\n\n{} users over {:.0} s ({:.1} -> {:.1} new users/s), {} API and S3 requests, peak {:.0} API requests/s.\n\n",
        started_sessions, elapsed, opts.base, opts.base * opts.factor, log.calls.len(), peak_rps
    ));
    md.push_str("| endpoint | count | p50 ms | p95 ms | p99 ms | max ms |\n| --- | ---: | ---: | ---: | ---: | ---: |\n");
    for (name, s) in report["endpoints"].as_object().unwrap() {
        md.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} |\n",
            s["count"], s["p50_ms"], s["p95_ms"], s["p99_ms"], s["max_ms"]
        ));
    }
    let a = &report["jobs"]["accept_to_final_client"];
    let server = &report["jobs"]["accept_to_stamped_server"];
    md.push_str(&format!(
        "\nJobs: {} accepted, {done} done, {failed} failed. Accept -> stamped document recorded (the job's own times) p50 {} ms, p99 {} ms; as a polling client saw it (polling as advised) p50 {} ms, p99 {} ms. Queue depth peaked at {}.\n",
        log.jobs.len(), server["p50_ms"], server["p99_ms"], a["p50_ms"], a["p99_ms"], report["queue_depth_max"]
    ));
    md.push_str(&format!(
        "\nErrors by endpoint, status and code: {}\n",
        if errors.is_empty() {
            "none".to_string()
        } else {
            format!("{errors:?}")
        }
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
