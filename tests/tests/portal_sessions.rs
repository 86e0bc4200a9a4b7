//! The portal's own routes through the deployed API Gateway: the session
//! routes under `/auth/` in front of the user pool (what a user typed is
//! refused with a stable code before the pool is asked; the refresh token
//! lives only in an HttpOnly cookie scoped to `/auth/`), and the page and its
//! assets (security headers, immutable hashed files, nothing else served).

use e2e::{unique, Stack, TEST_PASSWORD};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    fn set_cookie(&self) -> String {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

async fn auth(stack: &Stack, action: &str, body: &str, cookie: Option<&str>) -> Answer {
    let mut request = stack
        .http()
        .post(format!("{}/auth/{action}", stack.api_url()))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("/auth/{action} answered {status} with non-JSON: {text}"));
    Answer {
        status,
        headers,
        body,
    }
}

/// The `meterai_session=...` pair of a Set-Cookie header, as a browser would
/// send it back.
fn session_pair(set_cookie: &str) -> String {
    set_cookie
        .lines()
        .find(|c| c.starts_with("meterai_session="))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie is set")
        .to_string()
}

#[tokio::test]
async fn what_a_user_types_wrong_gets_a_stable_code_and_nothing_else_answers() {
    let stack = Stack::load();
    let good = format!("{}@example.test", unique("ketik"));
    let cases: [(&str, String, u16, &str); 9] = [
        (
            "sign-up",
            json!({"username": "bukan alamat", "password": TEST_PASSWORD}).to_string(),
            400,
            "INVALID_USERNAME",
        ),
        (
            "sign-up",
            json!({"username": good, "password": "pendek1"}).to_string(),
            400,
            "WEAK_PASSWORD",
        ),
        (
            "sign-up",
            json!({"username": good, "password": "TANPAHURUFKECIL1"}).to_string(),
            400,
            "WEAK_PASSWORD",
        ),
        (
            "confirm",
            json!({"username": good, "code": "12ab"}).to_string(),
            400,
            "WRONG_CODE",
        ),
        (
            "sign-in",
            json!({"username": 628123, "password": TEST_PASSWORD}).to_string(),
            400,
            "BAD_REQUEST",
        ),
        ("sign-in", "{\"username\":".to_string(), 400, "INVALID_JSON"),
        (
            "sign-in",
            json!({"username": "a".repeat(200_000)}).to_string(),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        ("refresh", "{}".to_string(), 401, "SESSION_ENDED"),
        ("become-admin", "{}".to_string(), 404, "NOT_FOUND"),
    ];
    for (action, body, status, code) in cases {
        let answer = auth(&stack, action, &body, None).await;
        assert_eq!(
            (answer.status, answer.code()),
            (status, code),
            "/auth/{action} {body}: {}",
            answer.body
        );
    }
    // A form on another site posting to sign-in (login CSRF: its answer's
    // cookie would sign the visitor in to the sender's account) is refused
    // before the pool is asked: a form's text/plain body, or JSON sent from
    // another origin.
    let form_body =
        format!("{{\"username\":\"{good}\",\"password\":\"{TEST_PASSWORD}\",\"x\":\"=\"}}");
    let sign_in = format!("{}/auth/sign-in", stack.api_url());
    for (content_type, origin, code) in [
        ("text/plain", None, "UNSUPPORTED_MEDIA_TYPE"),
        (
            "application/x-www-form-urlencoded",
            None,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "application/json",
            Some("https://evil.example"),
            "CROSS_SITE_REQUEST",
        ),
    ] {
        let mut request = stack
            .http()
            .post(&sign_in)
            .header("content-type", content_type)
            .body(form_body.clone());
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let answer = request.send().await.unwrap();
        assert!(answer.headers().get("set-cookie").is_none());
        let status = answer.status().as_u16();
        let body: Value = answer.json().await.unwrap();
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{content_type} {origin:?}"
        );
    }

    // A refresh cookie that is not one of ours ends the session (and clears
    // the cookie) rather than failing.
    let forged = auth(
        &stack,
        "refresh",
        "{}",
        Some("meterai_session=eyJhbGciOiJub25lIn0.e30.x"),
    )
    .await;
    assert_eq!((forged.status, forged.code()), (401, "SESSION_ENDED"));
    assert!(
        forged.set_cookie().contains("Max-Age=0"),
        "{}",
        forged.set_cookie()
    );
    // The pool's own words never reach the caller.
    let text = forged.body.to_string();
    assert!(
        !text.contains("Exception") && !text.to_lowercase().contains("cognito"),
        "{text}"
    );
}

#[tokio::test]
async fn a_session_lives_in_an_http_only_cookie_and_ends_at_sign_out() {
    let stack = Stack::load();
    let address = format!("{}@example.test", unique("sesi"));
    let credentials = json!({"username": address, "password": TEST_PASSWORD}).to_string();

    let signed_up = auth(&stack, "sign-up", &credentials, None).await;
    assert_eq!(signed_up.status, 201, "{}", signed_up.body);
    let told = signed_up.body["code_sent_to"]["destination"]
        .as_str()
        .unwrap();
    assert!(!told.is_empty(), "{}", signed_up.body);
    let again = auth(&stack, "sign-up", &credentials, None).await;
    assert_eq!((again.status, again.code()), (409, "ACCOUNT_EXISTS"));

    let early = auth(&stack, "sign-in", &credentials, None).await;
    assert_eq!((early.status, early.code()), (409, "ACCOUNT_NOT_CONFIRMED"));
    // (A wrong six-digit code is the pool's to refuse; the emulator's
    // ConfirmSignUp accepts any, so only the code's form is tested here.)
    let code = stack.code_mailed_to(&address).await;
    let confirmed = auth(
        &stack,
        "confirm",
        &json!({"username": address.to_uppercase(), "code": code}).to_string(),
        None,
    )
    .await;
    assert_eq!(
        confirmed.status, 200,
        "the name is not case-sensitive: {}",
        confirmed.body
    );

    // A wrong password and an unknown name are the same answer.
    let bad_password = auth(
        &stack,
        "sign-in",
        &json!({"username": address, "password": "Bukan-sandinya-9"}).to_string(),
        None,
    )
    .await;
    let nobody = auth(
        &stack,
        "sign-in",
        &json!({"username": format!("{}@example.test", unique("tidakada")), "password": TEST_PASSWORD}).to_string(),
        None,
    )
    .await;
    for refused in [&bad_password, &nobody] {
        assert_eq!((refused.status, refused.code()), (401, "WRONG_CREDENTIALS"));
        assert!(refused.set_cookie().is_empty());
    }
    assert_eq!(bad_password.body, nobody.body);

    // Signed in: the access token in the answer, the refresh token only in
    // a cookie no script can read, sent only to /auth/, never cross-site.
    let signed_in = auth(&stack, "sign-in", &credentials, None).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    let access = signed_in.body["access_token"].as_str().unwrap().to_string();
    assert!(signed_in.body["expires_in"].as_i64().unwrap() > 0);
    assert!(
        signed_in.body.get("refresh_token").is_none(),
        "{}",
        signed_in.body
    );
    let cookie = signed_in.set_cookie();
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/auth/",
        "Max-Age=2592000",
    ] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    let session = session_pair(&cookie);
    let quota = |token: String| {
        let stack = &stack;
        async move {
            stack
                .http()
                .get(format!("{}/v1/quota", stack.api_url()))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(quota(access).await, 200);

    let refreshed = auth(&stack, "refresh", "", Some(&session)).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_eq!(
        quota(refreshed.body["access_token"].as_str().unwrap().to_string()).await,
        200
    );

    let out = auth(&stack, "sign-out", "{}", Some(&session)).await;
    assert_eq!(out.status, 200);
    assert!(
        out.set_cookie().contains("meterai_session=;"),
        "{}",
        out.set_cookie()
    );
    assert!(out.set_cookie().contains("Max-Age=0"));
    // The token was revoked, not only forgotten by the browser.
    let after = auth(&stack, "refresh", "{}", Some(&session)).await;
    assert_eq!(
        (after.status, after.code()),
        (401, "SESSION_ENDED"),
        "{}",
        after.body
    );
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_security_headers_and_nothing_else() {
    let stack = Stack::load();
    let http = stack.http();
    let page = http
        .get(format!("{}/", stack.api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "script-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-cache");
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>"), "no inline script");
    assert!(
        !html
            .split_whitespace()
            .any(|w| w.starts_with("on") && w.contains('=')),
        "no inline handler: {html}"
    );

    // Every asset the page names is served, immutable, by its hashed name.
    let assets: Vec<&str> = html
        .split('"')
        .filter(|part| part.starts_with("/assets/"))
        .collect();
    assert!(assets.len() >= 3, "{html}");
    for asset in &assets {
        let answer = http
            .get(format!("{}{asset}", stack.api_url()))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{asset}");
        assert_eq!(
            answer.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert!(answer.bytes().await.unwrap().len() > 100, "{asset}");
    }

    // Nothing else: no listing, no way out of the asset list, no other verb.
    for (method, path) in [
        ("GET", "/assets/"),
        ("GET", "/assets/..%2f..%2fCargo.toml"),
        ("GET", "/assets/app.js"),
        ("GET", "/assets/%00"),
        ("GET", "/index.html"),
        ("DELETE", "/"),
        ("PUT", assets[0]),
    ] {
        let answer = http
            .request(
                method.parse().unwrap(),
                format!("{}{path}", stack.api_url()),
            )
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        assert!((400..500).contains(&status), "{method} {path}: {status}");
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        assert!(
            body["error"]["code"].is_string() || body["message"].is_string(),
            "{method} {path}: {body}"
        );
    }

    // Characters a URI may not hold raw, as a careless client sends them
    // (reqwest would encode them, so the request is written by hand): the
    // route answers as if they were encoded, never a 502.
    for (target, expected) in [
        ("/?x=\"a\"", 200),
        ("/assets/nothing.js?x=<b>", 404),
        ("/v1/verify/ABC?x=\"", 400),
    ] {
        let status = raw_get(&stack, target).await;
        assert_eq!(status, expected, "GET {target}");
    }
}

/// A GET written straight onto the socket, with the target as given.
async fn raw_get(stack: &Stack, target: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = reqwest::Url::parse(stack.api_url()).unwrap();
    let host = format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port_or_known_default().unwrap()
    );
    let mut socket =
        tokio::net::TcpStream::connect(("127.0.0.1", url.port_or_known_default().unwrap()))
            .await
            .unwrap();
    socket
        .write_all(
            format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{text}"))
}
