//! The one place where HTTP requests are read and results become responses
//! (API Gateway HTTP API, payload format 2.0), and where a domain error
//! becomes an HTTP status ([`status_of`]): the domain knows kinds and codes,
//! only this module knows statuses.

use std::future::Future;
use std::pin::Pin;

use lambda_http::{service_fn, Body, Request, RequestExt, Response};
use meterai_core::ErrorKind;
use serde::Serialize;
use tracing::Instrument;

use crate::app::App;
use crate::error::{codes, Error, Result};
use crate::idempotency::StoredResponse;

/// Largest JSON body the API reads (larger ones are 413).
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// What a route answers: a response or a domain error.
pub type Answer = Pin<Box<dyn Future<Output = Result<Response<Body>>> + Send>>;

/// A function's route table: every request goes through it.
pub type Router = fn(&'static App, Request) -> Answer;

/// Runs an HTTP function: builds the [`App`] once (a missing setting stops
/// the cold start), then serves each request in its own span, mapping errors
/// to JSON responses. Not generic: the Lambda runtime is compiled once, here,
/// not once per function.
pub fn serve(router: Router) -> std::result::Result<(), lambda_http::Error> {
    tokio::runtime::Runtime::new()?.block_on(serve_async(router))
}

async fn serve_async(router: Router) -> std::result::Result<(), lambda_http::Error> {
    crate::telemetry::init();
    let app: &'static App = Box::leak(Box::new(App::from_env().await?));
    lambda_http::run(service_fn(move |request: Request| async move {
        let request_id = request
            .lambda_context_ref()
            .map(|c| c.request_id.clone())
            .unwrap_or_default();
        let span = tracing::info_span!("request", %request_id, method = %request.method(), path = %request.uri().path());
        let response = async {
            let response = router(app, request)
                .await
                .unwrap_or_else(|e| error_response(&e, &request_id));
            tracing::info!(status = response.status().as_u16(), "request answered");
            response
        }
        .instrument(span)
        .await;
        Ok::<_, lambda_http::Error>(response)
    }))
    .await
}

/// The HTTP status of every kind of domain error.
pub fn status_of(error: &Error) -> u16 {
    match error.kind() {
        ErrorKind::Invalid => 400,
        ErrorKind::Unauthenticated => 401,
        ErrorKind::QuotaExhausted => 402,
        ErrorKind::NotFound => 404,
        ErrorKind::Conflict => 409,
        ErrorKind::TooLarge => 413,
        ErrorKind::Rejected => 422,
        ErrorKind::Misconfigured => 500,
        ErrorKind::Unavailable => 503,
    }
}

/// The JSON body of every error answer: `{"error": {"code", "message"}}`,
/// and for our own failures the request id to quote (their cause is logged
/// under it, never sent).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ErrorDetail {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

pub fn error_body(error: &Error, request_id: &str) -> ErrorBody {
    let ours = !error.is_client_error();
    ErrorBody {
        error: ErrorDetail {
            code: error.code(),
            message: match (ours, request_id.is_empty()) {
                (true, false) => format!("{} (request {request_id})", error.message()),
                _ => error.message(),
            },
            request_id: (ours && !request_id.is_empty()).then(|| request_id.to_string()),
        },
    }
}

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
    json_response(status, &error_body(error, request_id))
}

/// A request header, if present and valid UTF-8.
pub fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The first value of a query-string parameter.
pub fn query<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .query_string_parameters_ref()
        .and_then(|q| q.first(name))
}

/// The request body as bytes (API Gateway's base64 is already decoded).
pub fn body(request: &Request) -> &[u8] {
    request.body().as_ref()
}

/// Parses a JSON body of at most [`JSON_BODY_LIMIT`] bytes.
pub fn json_body(bytes: &[u8]) -> Result<serde_json::Value> {
    if bytes.len() > JSON_BODY_LIMIT {
        return Err(Error::too_large(
            codes::PAYLOAD_TOO_LARGE,
            format!(
                "body is {} bytes; the limit is {JSON_BODY_LIMIT}",
                bytes.len()
            ),
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid(codes::INVALID_JSON, format!("body is not valid JSON: {e}")))
}

/// A JSON body that must be an object with no fields but `allowed` (unknown
/// fields are refused, as Stripe does, rather than silently ignored).
pub fn json_object<'a>(
    body: &'a serde_json::Value,
    allowed: &[&str],
) -> Result<&'a serde_json::Map<String, serde_json::Value>> {
    let object = body
        .as_object()
        .ok_or_else(|| Error::invalid(codes::BAD_REQUEST, "body must be a JSON object"))?;
    if let Some(unknown) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(Error::invalid(
            codes::BAD_REQUEST,
            format!("unknown field {unknown:?}"),
        ));
    }
    Ok(object)
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn every_kind_has_its_status() {
        let cases = [
            (Error::invalid(codes::INVALID_JSON, "x"), 400),
            (Error::unauthenticated(codes::TOKEN_EXPIRED, "x"), 401),
            (Error::quota_exhausted(codes::INSUFFICIENT_QUOTA, "x"), 402),
            (Error::not_found(codes::ORDER_NOT_FOUND, "x"), 404),
            (Error::conflict(codes::NOTHING_TO_REFUND, "x"), 409),
            (Error::too_large(codes::PAYLOAD_TOO_LARGE, "x"), 413),
            (Error::rejected(codes::AMOUNT_MISMATCH, "x"), 422),
            (Error::Misconfigured("x".into()), 500),
            (Error::table("x"), 503),
        ];
        for (error, status) in cases {
            assert_eq!(status_of(&error), status, "{error:?}");
        }
    }

    #[test]
    fn our_failures_tell_the_client_nothing_but_the_code_and_request_id() {
        let detail = "service error: QueueDoesNotExist: https://sqs.us-east-1.amazonaws.com/123456789012/meterai-prod-jobs \
                      arn:aws:sqs:us-east-1:123456789012:meterai-prod-jobs";
        let response = error_response(&Error::queue(detail), "req-42");
        assert_eq!(response.status(), 503);
        let Body::Text(text) = response.body() else {
            panic!("expected a text body")
        };
        for leak in [
            "amazonaws",
            "arn:",
            "123456789012",
            "QueueDoesNotExist",
            "meterai-prod",
        ] {
            assert!(!text.contains(leak), "{leak} in {text}");
        }
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(json["error"]["code"], "DEPENDENCY_UNAVAILABLE");
        assert_eq!(json["error"]["request_id"], "req-42");
        assert!(json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("req-42"));
    }

    #[test]
    fn json_bodies_are_bounded_and_parsed() {
        assert_eq!(json_body(br#"{"quantity":1}"#).unwrap()["quantity"], 1);
        let err = json_body(b"{nope").unwrap_err();
        assert_eq!((status_of(&err), err.code()), (400, codes::INVALID_JSON));
        let err = json_body(b"").unwrap_err();
        assert_eq!(err.code(), codes::INVALID_JSON);
        let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(JSON_BODY_LIMIT));
        let err = json_body(big.as_bytes()).unwrap_err();
        assert_eq!(
            (status_of(&err), err.code()),
            (413, codes::PAYLOAD_TOO_LARGE)
        );
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
