//! Cold start of every function, the way Lambda runs it: the `bootstrap`
//! binary is started with `AWS_LAMBDA_RUNTIME_API` pointing at a minimal
//! Runtime API served here on loopback, gets one event, and the time from
//! process start to the first `/next` (init) and to the posted response is
//! measured. The function's AWS calls go to the local stack. Also reports the
//! zip size (`.build/<fn>.zip`, written by `infra/deploy.sh`) and the
//! process's peak resident memory.
//!
//!     target/release/meterai-cold-start [runs] [--json PATH]
//!
//! Bounded: `runs` (default 5, at most 20) starts per function, 20 s each.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::Stack;
use serde_json::json;
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn http_event(method: &str, path: &str, body: &str) -> serde_json::Value {
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "accept": "application/json"},
        "requestContext": {
            "accountId": "000000000000", "apiId": "coldstart", "domainName": "coldstart.localhost",
            "domainPrefix": "coldstart", "requestId": "cold-1", "routeKey": format!("{method} {path}"),
            "stage": "$default", "time": "22/Nov/2026:00:00:00 +0000", "timeEpoch": 1795000000000u64,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "cold-start"}
        },
        "body": body,
        "isBase64Encoded": false
    })
}

/// The first request each function gets: a realistic one that touches the
/// table where the route does (health probes all three resources; verify
/// looks a serial up), else an unauthenticated call answered before any AWS
/// call; queue consumers get an empty batch.
fn first_event(function: &str) -> serde_json::Value {
    match function {
        "health" => http_event("GET", "/v1/health", ""),
        "orders" => http_event("GET", "/v1/orders", ""),
        // The portal's page, built into the binary: no AWS call.
        "portal" => http_event("GET", "/", ""),
        "quota" => http_event("GET", "/v1/quota", ""),
        "payments" => http_event("POST", "/v1/payments/notifications", "{}"),
        "stamps" => http_event("GET", "/v1/stamps", ""),
        "resellers" => http_event("POST", "/v1/resellers/events", "{}"),
        "verify" => {
            let serial = meterai_pdf::stamp::Serial::generate();
            http_event("GET", &format!("/v1/verify/{serial}"), "")
        }
        // A key that is not one: refused before any AWS call.
        "authorizer" => json!({
            "version": "2.0", "type": "REQUEST", "routeKey": "GET /v1/quota",
            "rawPath": "/v1/quota", "rawQueryString": "",
            "identitySource": ["Bearer mk_cold"],
            "headers": {"authorization": "Bearer mk_cold"},
            "requestContext": http_event("GET", "/v1/quota", "")["requestContext"].clone(),
        }),
        // A scheduled run: EventBridge's event (one pending order checked at most).
        "settlements" => {
            json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
        }
        _ => json!({"Records": []}),
    }
}

const FUNCTIONS: [&str; 15] = [
    "audit",
    "authorizer",
    "settlements",
    "mailer",
    "health",
    "orders",
    "quota",
    "payments",
    "stamps",
    "worker",
    "reconciler",
    "resellers",
    "verify",
    "webhooks",
    "portal",
];

#[derive(Default)]
struct Seen {
    next_at: Option<Instant>,
    response_at: Option<Instant>,
    response: String,
    served: bool,
}

/// Serves the Runtime API on one connection until the process goes away.
async fn serve(mut socket: tokio::net::TcpStream, event: Arc<String>, seen: Arc<Mutex<Seen>>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        let head_end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
        let length = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().to_string())
            })
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        while buffer.len() < head_end + length {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buffer[head_end..head_end + length]).to_string();
        buffer.drain(..head_end + length);
        let line = head.lines().next().unwrap_or_default().to_string();
        let reply = if line.starts_with("GET /2018-06-01/runtime/invocation/next") {
            let first = {
                let mut s = seen.lock().unwrap();
                let first = !s.served;
                if first {
                    s.served = true;
                    s.next_at = Some(Instant::now());
                }
                first
            };
            if !first {
                // One event per process: park the second /next.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 30_000;
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: cold-1\r\n\
                 lambda-runtime-deadline-ms: {deadline}\r\nlambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:000000000000:function:cold\r\n\
                 lambda-runtime-trace-id: Root=1-00000000-000000000000000000000000\r\ncontent-length: {}\r\n\r\n{}",
                event.len(),
                event
            )
        } else {
            if line.contains("/response") || line.contains("/error") {
                let mut s = seen.lock().unwrap();
                s.response_at = Some(Instant::now());
                s.response = body.chars().take(300).collect();
            }
            "HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}".to_string()
        };
        if socket.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

struct Sample {
    init_ms: f64,
    first_response_ms: f64,
    peak_rss_kib: u64,
    response: String,
}

async fn start_once(
    binary: &PathBuf,
    function: &str,
    env: &HashMap<String, String>,
) -> Result<Sample, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let address = listener.local_addr().unwrap();
    let event = Arc::new(first_event(function).to_string());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let acceptor = {
        let (event, seen) = (event.clone(), seen.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, event.clone(), seen.clone()));
            }
        })
    };
    let started = Instant::now();
    let mut child = std::process::Command::new(binary)
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env(
            "AWS_LAMBDA_FUNCTION_NAME",
            format!("meterai-local-{function}"),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let pid = child.id();
    let limit = Instant::now() + Duration::from_secs(20);
    let result = loop {
        {
            let s = seen.lock().unwrap();
            if let (Some(next), Some(done)) = (s.next_at, s.response_at) {
                break Ok((next, done, s.response.clone()));
            }
        }
        if Instant::now() > limit {
            break Err(format!("{function}: no response within 20 s"));
        }
        if let Ok(Some(status)) = child.try_wait() {
            break Err(format!("{function} exited early: {status}"));
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    };
    let peak = peak_rss_kib(pid).unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    acceptor.abort();
    let (next, done, response) = result?;
    Ok(Sample {
        init_ms: next.duration_since(started).as_secs_f64() * 1000.0,
        first_response_ms: done.duration_since(started).as_secs_f64() * 1000.0,
        peak_rss_kib: peak,
        response,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(5)
        .clamp(1, 20);
    let json_path = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let stack = Stack::load();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut env: HashMap<String, String> = HashMap::from([
        ("TABLE_NAME", stack.get("METERAI_TABLE_NAME")),
        ("JOBS_QUEUE_URL", stack.get("METERAI_JOBS_QUEUE_URL")),
        ("BUCKET_NAME", stack.get("METERAI_BUCKET_NAME")),
        (
            "WEBHOOKS_QUEUE_URL",
            stack.get("METERAI_WEBHOOKS_QUEUE_URL"),
        ),
        (
            "WEBHOOKS_DEAD_LETTER_QUEUE_URL",
            stack.get("METERAI_WEBHOOKS_DEAD_LETTER_QUEUE_URL"),
        ),
        // Every function's own settings: a function lacking one stops at cold start.
        ("SIGNING_KEY_ID", stack.get("METERAI_SIGNING_KEY_ID")),
        ("SECRETS_KEY_ID", stack.get("METERAI_SECRETS_KEY_ID")),
        ("USER_POOL_ID", stack.get("METERAI_USER_POOL_ID")),
        (
            "USER_POOL_CLIENT_ID",
            stack.get("METERAI_USER_POOL_CLIENT_ID"),
        ),
        (
            "MIDTRANS_SERVER_KEY_SECRET",
            stack.get("METERAI_MIDTRANS_SERVER_KEY_SECRET"),
        ),
        ("MIDTRANS_SNAP_URL", stack.get("METERAI_MIDTRANS_SNAP_URL")),
        ("MIDTRANS_API_URL", stack.get("METERAI_MIDTRANS_API_URL")),
        ("SETTLE_BATCH", "1"),
        ("MAIL_FROM", "no-reply@meterai.local"),
        ("MAIL_QUEUE_URL", stack.get("METERAI_MAIL_QUEUE_URL")),
        ("STAGE", "local"),
        ("S3_FORCE_PATH_STYLE", "true"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/cold"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "cold"),
    ])
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(endpoint) = stack.endpoint() {
        env.insert("AWS_ENDPOINT_URL".into(), endpoint.to_string());
    }
    println!(
        "{:<11} {:>9} {:>11} {:>13} {:>10}  first answer",
        "function", "zip MB", "init ms", "1st resp ms", "peak MiB"
    );
    let mut rows = Vec::new();
    let mut failed = false;
    for function in FUNCTIONS {
        let binary = root.join("target/release").join(function);
        let mut samples = Vec::new();
        for _ in 0..runs {
            match start_once(&binary, function, &env).await {
                Ok(sample) => samples.push(sample),
                Err(e) => {
                    eprintln!("{e}");
                    failed = true;
                    break;
                }
            }
        }
        if samples.is_empty() {
            continue;
        }
        let zip = std::fs::metadata(root.join(format!(".build/{function}.zip")))
            .map(|m| m.len() as f64 / 1e6)
            .unwrap_or(0.0);
        let init = median(samples.iter().map(|s| s.init_ms).collect());
        let first = median(samples.iter().map(|s| s.first_response_ms).collect());
        let peak = samples.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0) as f64 / 1024.0;
        let answer: String = samples[0].response.chars().take(60).collect();
        println!("{function:<11} {zip:>9.2} {init:>11.1} {first:>13.1} {peak:>10.1}  {answer}");
        rows.push(json!({
            "function": function, "zip_mb": (zip * 100.0).round() / 100.0, "runs": samples.len(),
            "init_ms_median": (init * 10.0).round() / 10.0,
            "first_response_ms_median": (first * 10.0).round() / 10.0,
            "peak_rss_mib": (peak * 10.0).round() / 10.0,
        }));
    }
    if let Some(path) = json_path {
        std::fs::write(path, serde_json::to_string_pretty(&rows).unwrap()).unwrap();
    }
    if failed {
        std::process::exit(1);
    }
}
