//! Helpers for the end-to-end tests: where the deployed stack is and clients
//! that reach it. Nothing here fakes an AWS call; every test talks to the
//! deployed API Gateway, SQS queues and DynamoDB table.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The deployed stack's outputs, as written by `infra/deploy.sh`.
#[derive(Debug, Clone)]
pub struct Stack {
    vars: HashMap<String, String>,
}

impl Stack {
    /// Reads `$METERAI_STACK_ENV` (default `.build/meterai-local.env`); process
    /// variables of the same name win, so a test can point at another stack.
    pub fn load() -> Self {
        let path = std::env::var("METERAI_STACK_ENV")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.build/meterai-local.env")
            });
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "no deployed stack described at {}: {e}. Run scripts/test, or infra/deploy.sh first",
                path.display()
            )
        });
        let mut vars: HashMap<String, String> = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        for (k, v) in std::env::vars() {
            if k.starts_with("METERAI_") && vars.contains_key(&k) {
                vars.insert(k, v);
            }
        }
        Self { vars }
    }

    pub fn get(&self, name: &str) -> &str {
        self.vars
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("stack output {name} is missing"))
    }

    pub fn api_url(&self) -> &str {
        self.get("METERAI_API_URL").trim_end_matches('/')
    }

    /// The emulator's endpoint, or `None` on AWS.
    pub fn endpoint(&self) -> Option<&str> {
        self.vars
            .get("METERAI_ENDPOINT_URL")
            .map(String::as_str)
            .filter(|e| !e.is_empty())
    }

    /// An HTTP client for the API. On the emulator the API answers at
    /// `{id}.execute-api.localhost`, which the system resolver may not know, so
    /// that host is pinned to the loopback port it is served on.
    pub fn http(&self) -> reqwest::Client {
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
        let url = reqwest::Url::parse(self.api_url()).expect("API URL parses");
        if let Some(host) = url.host_str().filter(|h| h.ends_with(".localhost")) {
            let port = url.port_or_known_default().unwrap_or(80);
            let addr: SocketAddr = ("127.0.0.1", port)
                .to_socket_addrs()
                .expect("loopback resolves")
                .next()
                .expect("one loopback address");
            builder = builder.resolve(host, addr);
        }
        builder.build().expect("HTTP client builds")
    }

    async fn sdk_config(&self) -> aws_config::SdkConfig {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(endpoint) = self.endpoint() {
            loader = loader
                .endpoint_url(endpoint)
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                    "test", "test", None, None, "emulator",
                ));
        }
        loader.load().await
    }

    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk_config().await)
    }

    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk_config().await)
    }
}

/// A name no earlier run used, so tests never trip over stale state.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!("{prefix}-{nanos:x}-{}", std::process::id())
}

/// Polls `check` until it returns `Some`, or panics with `what` after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if started.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
