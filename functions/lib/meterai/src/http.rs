//! HTTP requests read and responses made (API Gateway HTTP API, payload
//! format 2.0). Error statuses and bodies come from [`crate::errors`].

use std::borrow::Cow;

use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

use crate::error::{codes, Error};
use crate::errors::{error_body, retry_after_of, status_of};
use crate::idempotency::StoredResponse;

/// A JSON response with the given status.
pub fn json_response(status: u16, body: &impl Serialize) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_string());
    text_response(status, text)
}

fn text_response(status: u16, text: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Body::Text(text))
        .expect("a status code and static headers always build")
}

/// A public, cacheable answer (verification): JSON, or HTML for a browser.
pub fn public_response(
    status: u16,
    content_type: &'static str,
    text: String,
    max_age_seconds: u32,
) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header(
            "cache-control",
            format!("public, max-age={max_age_seconds}"),
        )
        .header("vary", "accept")
        .body(Body::Text(text))
        .expect("a status code and header values always build")
}

/// Whether the client prefers HTML (a browser that followed the QR code).
pub fn wants_html(request: &Request) -> bool {
    header(request, "accept").is_some_and(|a| a.contains("text/html"))
}

/// The answer stored under an idempotency key; `replayed` marks a repeat.
pub fn stored_response(stored: StoredResponse, replayed: bool) -> Response<Body> {
    let mut response = text_response(stored.status, stored.body);
    if replayed {
        response.headers_mut().insert(
            "idempotent-replayed",
            "true".parse().expect("static header value"),
        );
    }
    response
}

/// The JSON error response for any error. Our own failures are logged
/// with their whole cause; the client is told only the code and request id.
pub fn error_response(error: &Error, request_id: &str) -> Response<Body> {
    let status = status_of(error);
    if status >= 500 {
        tracing::error!(code = error.code(), error = %error, "request failed");
    } else {
        tracing::info!(code = error.code(), error = %error, "request rejected");
    }
    let mut response = json_response(status, &error_body(error, request_id));
    if let Some(seconds) = retry_after_of(error) {
        response.headers_mut().insert("retry-after", seconds.into());
    }
    response
}

/// A request header, if present and valid UTF-8.
pub fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The first value of a query-string parameter.
pub fn query<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    // `?cursor=` is a client that has no cursor yet: the same as none.
    request
        .query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .filter(|v| !v.is_empty())
}

/// The request body as bytes (API Gateway's base64 is already decoded).
pub fn body(request: &Request) -> &[u8] {
    request.body().as_ref()
}

/// The path's segments after the version prefix: `/v1/orders/x` -> `["orders", "x"]`.
pub fn route_segments(request: &Request) -> Vec<&str> {
    request
        .uri()
        .path()
        .trim_start_matches("/v1")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect()
}

/// The error for a method and path no route serves.
pub fn no_route(request: &Request) -> Error {
    Error::not_found(
        codes::NOT_FOUND,
        format!("no route {} {}", request.method(), request.uri().path()),
    )
}

/// A path or query string as a client sent it, with every character a URI
/// may not hold raw (controls, space, `"`, `<`, `>`, `\\`, `^`, `` ` ``, `{`,
/// `|`, `}`, non-ASCII) percent-encoded byte by byte; unchanged (borrowed)
/// when there is none.
pub fn uri_safe(raw: &str) -> Cow<'_, str> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%[]".contains(&b);
    if raw.bytes().all(allowed) {
        return Cow::Borrowed(raw);
    }
    let mut safe = String::with_capacity(raw.len() + 16);
    for b in raw.bytes() {
        if allowed(b) {
            safe.push(b as char);
        } else {
            safe.push_str(&format!("%{b:02X}"));
        }
    }
    Cow::Owned(safe)
}

#[cfg(test)]
mod tests {

    #[test]
    fn any_path_or_query_a_client_sends_becomes_a_buildable_uri() {
        assert!(matches!(
            uri_safe("/v1/stamps?limit=5&cursor=a%2Fb"),
            Cow::Borrowed(_)
        ));
        assert_eq!(uri_safe("x=\"a\" <b>"), "x=%22a%22%20%3Cb%3E");
        assert_eq!(uri_safe("q=é"), "q=%C3%A9");
        // Every character a client could type, alone and among others.
        for c in (0u32..0x3000)
            .chain([0xFEFF, 0x1F600])
            .filter_map(char::from_u32)
        {
            let query = uri_safe(&format!("a={c}&b=1")).into_owned();
            let path = uri_safe(&format!("/v1/verify/{c}")).into_owned();
            let uri = format!("https://api.example{path}?{query}");
            assert!(
                uri.parse::<lambda_http::http::Uri>().is_ok(),
                "{c:?}: {uri}"
            );
        }
    }
    use super::*;

    #[test]
    fn a_busy_answer_says_when_to_try_again_and_a_final_one_does_not() {
        let busy = error_response(&Error::table("timed out"), "req-1");
        assert_eq!(busy.status(), 503);
        assert_eq!(busy.headers()["retry-after"], "2");
        let running = error_response(
            &Error::conflict(codes::IDEMPOTENCY_IN_PROGRESS, "running"),
            "req-2",
        );
        assert_eq!(running.headers()["retry-after"], "1");
        let refused = error_response(
            &Error::invalid(codes::INVALID_QUANTITY, "not a number"),
            "req-3",
        );
        assert!(refused.headers().get("retry-after").is_none());
    }

    #[test]
    fn errors_become_json_with_their_status() {
        let response = error_response(
            &Error::not_found("NOT_FOUND", "no route GET /v1/nope"),
            "req-1",
        );
        assert_eq!(response.status(), 404);
        assert_eq!(response.headers()["content-type"], "application/json");
        let Body::Text(text) = response.body() else {
            panic!("expected a text body")
        };
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(json["error"]["code"], "NOT_FOUND");
        assert_eq!(json["error"]["message"], "no route GET /v1/nope");
        assert!(json["error"].get("request_id").is_none());
    }

    #[test]
    fn replayed_responses_are_marked() {
        let stored = StoredResponse {
            status: 201,
            body: "{}".into(),
        };
        let replay = stored_response(stored.clone(), true);
        assert_eq!(replay.status(), 201);
        assert_eq!(replay.headers()["idempotent-replayed"], "true");
        assert!(stored_response(stored, false)
            .headers()
            .get("idempotent-replayed")
            .is_none());
    }
}
