//! Helpers for the end-to-end tests: where the deployed stack is and clients
//! that reach it. Nothing here fakes an AWS call; every test talks to the
//! deployed API Gateway, SQS queues and DynamoDB table.

pub mod oracles;

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
        self.http_with(reqwest::Client::builder())
    }

    /// [`Stack::http`] that does not follow redirects (to see them).
    pub fn http_without_redirects(&self) -> reqwest::Client {
        self.http_with(reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()))
    }

    fn http_with(&self, builder: reqwest::ClientBuilder) -> reqwest::Client {
        let mut builder = builder.timeout(Duration::from_secs(30));
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

    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
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

    /// The library's clients, pointed at the deployed stack, for checks such as
    /// the quota audit (real DynamoDB calls, never fakes).
    pub async fn clients(&self) -> meterai::AwsClients {
        meterai::AwsClients::from_sdk_config(&self.sdk_config().await, self.endpoint().is_some())
    }

    /// The stack's user pool, through Cognito's own API (admin calls are
    /// signed; on AWS they need the caller's IAM rights on the pool).
    pub async fn cognito(&self) -> aws_sdk_cognitoidentityprovider::Client {
        aws_sdk_cognitoidentityprovider::Client::new(&self.sdk_config().await)
    }

    /// Creates a confirmed user of the stack's user pool with `username`
    /// (an e-mail address or a +62 mobile number) and `password`; returns
    /// its `sub`, which is its portal account id.
    pub async fn create_user(&self, username: &str, password: &str) -> String {
        let cognito = self.cognito().await;
        let pool = self.get("METERAI_USER_POOL_ID");
        let attribute = |name: &str, value: &str| {
            aws_sdk_cognitoidentityprovider::types::AttributeType::builder()
                .name(name)
                .value(value)
                .build()
                .expect("attribute builds")
        };
        let contact = if username.starts_with('+') {
            vec![
                attribute("phone_number", username),
                attribute("phone_number_verified", "true"),
            ]
        } else {
            vec![
                attribute("email", username),
                attribute("email_verified", "true"),
            ]
        };
        let created = cognito
            .admin_create_user()
            .user_pool_id(pool)
            .username(username)
            .set_user_attributes(Some(contact))
            .message_action(aws_sdk_cognitoidentityprovider::types::MessageActionType::Suppress)
            .send()
            .await
            .expect("AdminCreateUser succeeds");
        cognito
            .admin_set_user_password()
            .user_pool_id(pool)
            .username(username)
            .password(password)
            .permanent(true)
            .send()
            .await
            .expect("AdminSetUserPassword succeeds");
        created
            .user()
            .and_then(|u| u.attributes().iter().find(|a| a.name() == "sub"))
            .and_then(|a| a.value())
            .expect("a new user has a sub")
            .to_string()
    }

    /// Signs in as the portal does (USER_PASSWORD_AUTH on the portal's app
    /// client): the access, ID and refresh tokens.
    pub async fn sign_in(&self, username: &str, password: &str) -> Tokens {
        self.sign_in_on(self.get("METERAI_USER_POOL_CLIENT_ID"), username, password)
            .await
    }

    /// Signs in on any app client of any pool of the stack's Cognito.
    pub async fn sign_in_on(&self, client_id: &str, username: &str, password: &str) -> Tokens {
        let answer = self
            .cognito()
            .await
            .initiate_auth()
            .client_id(client_id)
            .auth_flow(aws_sdk_cognitoidentityprovider::types::AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", username)
            .auth_parameters("PASSWORD", password)
            .send()
            .await
            .expect("InitiateAuth succeeds");
        let result = answer
            .authentication_result()
            .expect("sign-in without a challenge");
        Tokens {
            access: result.access_token().expect("access token").to_string(),
            id: result.id_token().expect("ID token").to_string(),
            refresh: result.refresh_token().unwrap_or_default().to_string(),
        }
    }

    /// The confirmation code the user pool e-mailed to `address`, read from the
    /// emulator's record of what SES sent.
    pub async fn code_mailed_to(&self, address: &str) -> String {
        let endpoint = self
            .endpoint()
            .expect("the SES record is the emulator's")
            .to_string();
        eventually(
            &format!("a confirmation code for {address}"),
            Duration::from_secs(20),
            || {
                let url = format!("{endpoint}/_ministack/ses/messages");
                let address = address.to_string();
                async move {
                    let sent: serde_json::Value =
                        reqwest::get(&url).await.ok()?.json().await.ok()?;
                    let text = sent.to_string();
                    let at = text.rfind(&address)?;
                    // The message text around the address carries the code: the
                    // first run of exactly six digits after "Kode verifikasi".
                    let after = &text[at.saturating_sub(2_000)..];
                    let start = after.find("Kode verifikasi")?;
                    after[start..]
                        .split(|c: char| !c.is_ascii_digit())
                        .find(|run| run.len() == 6)
                        .map(str::to_string)
                }
            },
        )
        .await
    }

    /// The e-mails SES sent to `address`, oldest first: (subject, text). Read
    /// from the emulator's record of what SES sent.
    pub async fn mails_to(&self, address: &str) -> Vec<(String, String)> {
        let endpoint = self.endpoint().expect("the SES record is the emulator's");
        let sent: serde_json::Value = reqwest::get(format!("{endpoint}/_ministack/ses/messages"))
            .await
            .expect("the emulator answers")
            .json()
            .await
            .expect("the SES record is JSON");
        let mut found = Vec::new();
        for messages in sent["messages"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            for message in messages.as_array().into_iter().flatten() {
                let to_them = message["To"]
                    .as_array()
                    .is_some_and(|to| to.iter().any(|t| t == address));
                if to_them {
                    found.push((
                        message["Subject"].as_str().unwrap_or("").to_string(),
                        message["BodyText"].as_str().unwrap_or("").to_string(),
                    ));
                }
            }
        }
        found
    }

    /// Signs payment notifications as the gateway would (local stage only).
    pub fn midtrans(&self) -> meterai_core::payments::Midtrans {
        meterai_core::payments::Midtrans::new(self.get("METERAI_MIDTRANS_SERVER_KEY"))
    }

    /// `POST /v1/verify` with a PDF body: status and report.
    pub async fn verify_file(&self, bytes: Vec<u8>) -> (u16, serde_json::Value) {
        // Verification has a small pool on the emulator: a throttle is waited out.
        let answer = patiently(true, || async {
            let response = self
                .http()
                .post(format!("{}/v1/verify", self.api_url()))
                .header("content-type", "application/pdf")
                .body(bytes.clone())
                .send()
                .await
                .expect("API answers");
            answer(response).await
        })
        .await;
        (answer.status, answer.body)
    }

    /// The signing certificate chain the stack's functions use (PEM).
    pub async fn signing_chain_pem(&self) -> Vec<u8> {
        self.clients()
            .await
            .s3
            .get_object()
            .bucket(self.get("METERAI_BUCKET_NAME"))
            .key("signing/chain.pem")
            .send()
            .await
            .expect("the stack has a signing chain (infra/signing-cert.sh)")
            .body
            .collect()
            .await
            .expect("the chain downloads")
            .into_bytes()
            .to_vec()
    }

    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk_config().await)
    }

    /// Sets the stack's alarm `<stack>-{name}` to OK, whatever an earlier run left.
    pub async fn reset_alarm(&self, name: &str) {
        aws_sdk_cloudwatch::Client::new(&self.sdk_config().await)
            .set_alarm_state()
            .alarm_name(format!("{}-{name}", self.get("METERAI_STACK")))
            .state_value(aws_sdk_cloudwatch::types::StateValue::Ok)
            .state_reason("e2e: reset")
            .send()
            .await
            .unwrap_or_else(|e| panic!("the {name} alarm exists: {e:?}"));
    }

    /// The stack's alarm `<stack>-{name}`, once it is in ALARM (within `within`).
    pub async fn alarmed(
        &self,
        name: &str,
        within: Duration,
    ) -> aws_sdk_cloudwatch::types::MetricAlarm {
        let cloudwatch = aws_sdk_cloudwatch::Client::new(&self.sdk_config().await);
        let alarm = format!("{}-{name}", self.get("METERAI_STACK"));
        eventually(&format!("the {name} alarm in ALARM"), within, || async {
            cloudwatch
                .describe_alarms()
                .alarm_names(&alarm)
                .send()
                .await
                .expect("describe alarms")
                .metric_alarms()
                .first()
                .filter(|a| a.state_value() == Some(&aws_sdk_cloudwatch::types::StateValue::Alarm))
                .cloned()
        })
        .await
    }

    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk_config().await)
    }

    /// The lines function `name` (`worker`, `stamps`, ...) logged that
    /// contain `text`, as an operator would read them.
    pub async fn logged(&self, name: &str, text: &str) -> Vec<String> {
        let logs = aws_sdk_cloudwatchlogs::Client::new(&self.sdk_config().await);
        let group = format!("/aws/lambda/{}-{name}", self.get("METERAI_STACK"));
        let mut lines = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = logs
                .filter_log_events()
                .log_group_name(&group)
                .filter_pattern(format!("\"{text}\""))
                .set_next_token(next.take())
                .send()
                .await
                .expect("the function's log group is readable");
            lines.extend(
                page.events()
                    .iter()
                    .filter_map(|e| e.message().map(str::to_string)),
            );
            match page.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_string()),
                _ => break,
            }
        }
        lines.retain(|l| l.contains(text));
        lines
    }
}

/// A tool's command line: `--name value` options (the last occurrence
/// wins, so a script's defaults can be overridden) and `--flag`s.
pub struct Args(Vec<String>);

impl Args {
    pub fn from_env() -> Self {
        Args(std::env::args().skip(1).collect())
    }

    pub fn get(&self, name: &str) -> Option<String> {
        let at = self.0.iter().rposition(|a| a == name)?;
        self.0.get(at + 1).cloned()
    }

    pub fn has(&self, flag: &str) -> bool {
        self.0.iter().any(|a| a == flag)
    }

    /// A number, `default` when absent or unreadable, held to `0..=max`.
    pub fn num(&self, name: &str, default: f64, max: f64) -> f64 {
        self.get(name)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(default)
            .clamp(0.0, max)
    }
}

/// A name no earlier run used, so tests never trip over stale state.
pub fn unique(prefix: &str) -> String {
    // The clock alone repeats between tasks on different threads (its
    // resolution is coarser than a nanosecond here): a counter does not.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{nanos:x}-{}-{n}", std::process::id())
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

/// What a sign-in returns.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub id: String,
    pub refresh: String,
}

/// A password the user pool's policy accepts.
pub const TEST_PASSWORD: &str = "Meterai-test-2026!";

/// A portal user of the deployed API: a fresh account and its token.
#[derive(Clone)]
pub struct Portal {
    pub account: String,
    pub token: String,
    /// The user's e-mail address (empty for another credential).
    pub email: String,
    /// Whether a throttle answer (429 or 503) is sent again after a pause, as
    /// the portal does (on by default; the load generator counts sheds
    /// itself).
    pub patient: bool,
    base: String,
    http: reqwest::Client,
}

/// Status and JSON body of a response (`Null` when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
    pub replayed: bool,
    /// The `Retry-After` header in seconds, when the answer carries one.
    pub retry_after: Option<u64>,
    /// The `x-request-id` header: the id our logs and the access log carry.
    pub request_id: Option<String>,
}

impl Answer {
    /// The stable error code of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// What an answer that did not come from our code says it is: the
    /// platform's error type (a Lambda error or throttle, an API Gateway
    /// message), for load reports. Empty for our own answers.
    pub fn platform_error(&self) -> &str {
        if !self.code().is_empty() {
            return "";
        }
        ["errorType", "Type", "__type", "message", "Message"]
            .iter()
            .find_map(|k| self.body[*k].as_str())
            .unwrap_or(if self.status >= 400 {
                "(no JSON body)"
            } else {
                ""
            })
    }
}

impl Portal {
    /// A new user of the stack's user pool, signed in: its account is its `sub`.
    pub async fn new(stack: &Stack) -> Self {
        let username = format!("{}@example.test", unique("user"));
        let account = stack.create_user(&username, TEST_PASSWORD).await;
        let token = stack.sign_in(&username, TEST_PASSWORD).await.access;
        Self {
            account,
            token,
            email: username,
            patient: true,
            base: stack.api_url().to_string(),
            http: stack.http(),
        }
    }

    pub fn account_id(&self) -> meterai_core::AccountId {
        meterai_core::AccountId::parse(&self.account).expect("test accounts are valid")
    }

    /// Sends a request with this user's token (or `auth` instead, if given).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.token));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let patient = self.patient;
        patiently(patient, || async {
            let request = request
                .try_clone()
                .expect("a request with a body in memory");
            answer(request.send().await.expect("API answers")).await
        })
        .await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None, &[]).await
    }

    pub async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
        idempotency_key: Option<&str>,
    ) -> Answer {
        let headers: Vec<(&str, &str)> = idempotency_key
            .map(|k| ("idempotency-key", k))
            .into_iter()
            .collect();
        self.send(
            reqwest::Method::POST,
            path,
            Some(body.to_string().into_bytes()),
            &headers,
        )
        .await
    }

    /// Creates an order of `quantity` stamps and returns it.
    pub async fn order(&self, quantity: i64) -> serde_json::Value {
        let created = self
            .post(
                "/v1/orders",
                &serde_json::json!({ "quantity": quantity }),
                Some(&unique("key")),
            )
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        created.body
    }

    pub async fn quota(&self) -> serde_json::Value {
        let answer = self.get("/v1/quota").await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        answer.body
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = response.bytes().await.expect("body arrives");
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Answer {
        status,
        body,
        replayed,
        retry_after,
        request_id,
    }
}

/// Sends `attempt` again while it answers a shed (429 or 503 with a
/// `Retry-After`, or the platform's throttle, which has none), up to 60 s, as
/// a well-behaved client does; the first answer when `patient` is false.
/// Tests run many requests at once against functions whose concurrency is
/// reserved, so a throttle there is the platform working, not the test's subject.
pub async fn patiently<F, Fut>(patient: bool, attempt: F) -> Answer
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    let mut backoff = Backoff::new();
    loop {
        let got = attempt().await;
        let shed = got.status == 429 || (got.status == 503 && got.retry_after.is_some());
        if !patient || !shed || !backoff.wait(got.retry_after).await {
            return got;
        }
    }
}

/// Sends a raw request again while the platform sheds it (429), as
/// [`patiently`] does: for tests that read headers `Answer` does not keep.
pub async fn send_patiently(request: reqwest::RequestBuilder) -> reqwest::Response {
    let mut backoff = Backoff::new();
    loop {
        let attempt = request
            .try_clone()
            .expect("a request with a body in memory");
        let response = attempt.send().await.expect("API answers");
        if response.status().as_u16() != 429 || !backoff.wait(None).await {
            return response;
        }
    }
}

/// The pauses between a shed request's attempts, for up to 60 s.
struct Backoff {
    give_up: Instant,
    pause: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self {
            give_up: Instant::now() + Duration::from_secs(60),
            pause: Duration::from_millis(200),
        }
    }

    /// Waits before the next attempt: the server's `Retry-After` (at most
    /// 5 s), else 200 ms doubling to 2 s, jittered as the portal does
    /// (clients shed together and back in step are shed together again: CI
    /// once saw a poller throttled for 30 s straight among sixty in
    /// lockstep). False, without waiting, once the time is up.
    async fn wait(&mut self, retry_after: Option<u64>) -> bool {
        if Instant::now() >= self.give_up {
            return false;
        }
        let wait =
            retry_after.map_or_else(|| jittered(self.pause), |s| Duration::from_secs(s.min(5)));
        tokio::time::sleep(wait).await;
        self.pause = (self.pause * 2).min(Duration::from_secs(2));
        true
    }
}

/// A pause drawn evenly from half of `pause` to all of it.
pub fn jittered(pause: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write(unique("jitter").as_bytes());
    let fraction = (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64;
    pause.mul_f64(0.5 + fraction / 2.0)
}

/// Sends a payment notification to the deployed callback (again after a
/// throttle, as the gateway does).
pub async fn notify(stack: &Stack, notification: &serde_json::Value) -> Answer {
    patiently(true, || notify_once(stack, notification)).await
}

/// Sends a payment notification once, whatever the answer.
pub async fn notify_once(stack: &Stack, notification: &serde_json::Value) -> Answer {
    let response = stack
        .http()
        .post(format!("{}/v1/payments/notifications", stack.api_url()))
        .header("content-type", "application/json")
        .body(notification.to_string())
        .send()
        .await
        .expect("API answers");
    answer(response).await
}

/// The gateway (the local simulator) now says `status` for the order, for
/// its total; and a correctly signed notification saying so. Our side acts
/// on what the gateway's status API says, so both are set.
pub async fn payment(stack: &Stack, order: &serde_json::Value, status: &str) -> serde_json::Value {
    let order_id = order["order_id"].as_str().expect("order id");
    let total = order["total"].as_i64().expect("order total");
    simulator(
        stack,
        "/_sim/status",
        &serde_json::json!({
            "order_id": order_id,
            "transaction_status": status,
            "gross_amount": format!("{total}.00"),
        }),
    )
    .await;
    let note = stack
        .midtrans()
        .notification(order_id, status, total, &unique("tx"));
    serde_json::to_value(note).expect("notification serializes")
}

/// A control call to the local Midtrans simulator (see `simulators/midtrans.py`).
pub async fn simulator(stack: &Stack, path: &str, body: &serde_json::Value) -> serde_json::Value {
    let url = format!("{}{path}", stack.get("METERAI_MIDTRANS_SIMULATOR_URL"));
    let response = reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .expect("the Midtrans simulator answers (simulators/start.sh)");
    response.json().await.unwrap_or_default()
}

/// Fails the test unless the quota audit holds for the account.
pub async fn assert_audit(stack: &Stack, portal: &Portal) -> meterai::quota::AuditReport {
    let clients = stack.clients().await;
    let report = meterai::quota::audit(
        &clients,
        stack.get("METERAI_TABLE_NAME"),
        &portal.account_id(),
    )
    .await
    .expect("audit runs");
    assert!(
        report.holds(),
        "audit of {} fails: {:?}",
        portal.account,
        report
    );
    report
}

impl Portal {
    /// Orders `quantity` stamps and has the gateway settle the order.
    pub async fn buy(&self, stack: &Stack, quantity: i64) {
        let order = self.order(quantity).await;
        let paid = notify(stack, &payment(stack, &order, "settlement").await).await;
        assert_eq!(paid.body["result"], "credited", "{:?}", paid.body);
    }

    /// Uploads a file through a presigned URL and returns its document id.
    pub async fn upload(&self, bytes: &[u8]) -> String {
        let ticket = self
            .post(
                "/v1/documents",
                &serde_json::json!({"filename": "letter.pdf", "size": bytes.len()}),
                None,
            )
            .await;
        assert_eq!(ticket.status, 201, "{:?}", ticket.body);
        let url = ticket.body["upload_url"].as_str().expect("upload URL");
        let put = self
            .http
            .put(url)
            .header("content-type", "application/pdf")
            .body(bytes.to_vec())
            .send()
            .await
            .expect("upload answers");
        assert!(put.status().is_success(), "upload failed: {}", put.status());
        ticket.body["document_id"].as_str().unwrap().to_string()
    }

    /// Requests a stamp (with a fresh idempotency key).
    pub async fn stamp(&self, document_id: &str, page: u32, x: f64, y: f64) -> Answer {
        let body = serde_json::json!({"document_id": document_id, "page": page, "x": x, "y": y});
        self.post("/v1/stamps", &body, Some(&unique("sk"))).await
    }

    /// Polls a job until it is done or failed, as often as each read's
    /// `poll_after_seconds` says (at most every 5 s here, jittered). The
    /// limit is generous: tests queue up to a hundred jobs at once on two
    /// cores, and their promised times are checked where they are the subject.
    pub async fn wait_job(&self, job_id: &str) -> serde_json::Value {
        let limit = Duration::from_secs(300);
        let started = Instant::now();
        loop {
            let job = self.get(&format!("/v1/stamps/{job_id}")).await;
            assert_eq!(job.status, 200, "{:?}", job.body);
            if matches!(job.body["status"].as_str(), Some("done") | Some("failed")) {
                return job.body;
            }
            assert!(
                started.elapsed() <= limit,
                "timed out after {limit:?} waiting for job {job_id} to finish"
            );
            let after = job.body["poll_after_seconds"]
                .as_u64()
                .unwrap_or(1)
                .clamp(1, 5);
            tokio::time::sleep(jittered(Duration::from_secs(after))).await;
        }
    }

    /// Downloads a finished job's stamped document.
    pub async fn download(&self, job: &serde_json::Value) -> Vec<u8> {
        let url = job["download_url"]
            .as_str()
            .expect("a done job has a download URL");
        let response = self.http.get(url).send().await.expect("download answers");
        assert!(
            response.status().is_success(),
            "download: {}",
            response.status()
        );
        let bytes = response.bytes().await.unwrap().to_vec();
        // Every document the stack stamps is signed: poppler's pdfsig judges
        // every signature in it valid (its text, not its exit code).
        let scratch = oracles::Scratch::new("download");
        let file = scratch.write("stamped.pdf", &bytes);
        let (_, text) = oracles::run("pdfsig", &[oracles::s(&file)]);
        let signatures = text.matches("Signature Validation:").count();
        assert!(
            signatures >= 1
                && text
                    .matches("Signature Validation: Signature is Valid.")
                    .count()
                    == signatures,
            "pdfsig on job {}'s document: {text}",
            job["job_id"]
        );
        bytes
    }
}

impl Portal {
    /// A client of the API with another bearer credential (a reseller's API
    /// key); `account` is the quota account it acts for.
    pub fn with_credential(stack: &Stack, account: &str, credential: &str) -> Self {
        Self {
            account: account.to_string(),
            token: credential.to_string(),
            email: String::new(),
            patient: true,
            base: stack.api_url().to_string(),
            http: stack.http(),
        }
    }
}

/// Signed-in users of the stack's pool, made before they are needed (a
/// deadline's applicants signed up days before), 8 at a time. The emulator's
/// user pool now and then fails a call under concurrent sign-ins (an
/// internal error), so a user that could not be made is made again.
pub async fn make_users(stack: &Stack, n: usize) -> Vec<Portal> {
    use futures::stream::{self, StreamExt};
    stream::iter(0..n)
        .map(|_| async move {
            for _ in 0..5 {
                let stack = stack.clone();
                if let Ok(user) = tokio::spawn(async move { Portal::new(&stack).await }).await {
                    return Some(user);
                }
            }
            None
        })
        .buffer_unordered(8)
        .filter_map(|user| async move { user })
        .collect()
        .await
}

/// Fails the test unless the quota audit holds for `account`.
pub async fn assert_audit_of(stack: &Stack, account: &str) -> meterai::quota::AuditReport {
    let clients = stack.clients().await;
    let account = meterai_core::AccountId::parse(account).expect("valid account id");
    let report = meterai::quota::audit(&clients, stack.get("METERAI_TABLE_NAME"), &account)
        .await
        .expect("audit runs");
    assert!(report.holds(), "audit of {account} fails: {report:?}");
    report
}

/// Runs the operator command `meterai-admin` (built with the workspace)
/// against the deployed stack and returns its JSON answer.
pub fn admin(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&admin_text(args)).expect("meterai-admin prints JSON")
}

/// `meterai-admin` against the deployed stack, whatever it answers.
pub fn admin_output(args: &[&str]) -> std::process::Output {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let env_file = std::env::var("METERAI_STACK_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join(".build/meterai-local.env"));
    std::process::Command::new(root.join("target/release/meterai-admin"))
        .arg("--env-file")
        .arg(env_file)
        .args(args)
        .output()
        .expect("meterai-admin runs (built by scripts/test)")
}

/// `meterai-admin` against the deployed stack; its standard output.
pub fn admin_text(args: &[&str]) -> String {
    let out = admin_output(args);
    assert!(
        out.status.success(),
        "meterai-admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("meterai-admin prints text")
}

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub answered: u16,
}

/// A small HTTP server on loopback standing in for a reseller's webhook
/// endpoint: it answers each event (by `webhook-id`) with `statuses` in turn
/// (the last one from then on) and records every request.
pub struct Receiver {
    pub url: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
}

impl Receiver {
    pub async fn start(statuses: Vec<u16>) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds loopback");
        let url = format!("http://{}/hooks/meterai", listener.local_addr().unwrap());
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Received>::new()));
        let log = received.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head_end, length) = loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break (None, 0);
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (Some(end + 4), length);
                    }
                };
                let Some(head_end) = head_end else { continue };
                while buffer.len() < head_end + length {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
                let headers: HashMap<String, String> = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
                    .collect();
                let status = {
                    let mut log = log.lock().unwrap();
                    let attempt = log
                        .iter()
                        .filter(|r| r.headers.get("webhook-id") == headers.get("webhook-id"))
                        .count();
                    let status = statuses
                        .get(attempt)
                        .or(statuses.last())
                        .copied()
                        .unwrap_or(200);
                    log.push(Received {
                        headers,
                        body: buffer[head_end..(head_end + length).min(buffer.len())].to_vec(),
                        answered: status,
                    });
                    status
                };
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = socket.write_all(reply.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        Self { url, received }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}
