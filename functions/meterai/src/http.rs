//! The one place where HTTP requests are read and results become responses
//! (API Gateway HTTP API, payload format 2.0).

use std::future::Future;

use lambda_http::{service_fn, Body, Request, RequestExt, Response};
use serde::Serialize;
use tracing::Instrument;

use crate::app::App;
use crate::error::{codes, Error, Result};
use crate::idempotency::StoredResponse;

/// Largest JSON body the API reads (larger ones are 413).
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// Runs an HTTP function: builds the [`App`] once, then serves each request in
/// its own span, mapping errors to JSON responses. Never answers with a panic.
pub async fn serve<F, Fut>(handler: F) -> std::result::Result<(), lambda_http::Error>
where
    F: Fn(&'static App, Request) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Body>>> + Send,
{
    crate::telemetry::init();
    let app: &'static App = Box::leak(Box::new(App::from_env().await?));
    lambda_http::run(service_fn(move |request: Request| async move {
        let request_id = request
            .lambda_context_ref()
            .map(|c| c.request_id.clone())
            .unwrap_or_default();
        let span = tracing::info_span!("request", %request_id, method = %request.method(), path = %request.uri().path());
        let response = async {
            let response = handler(app, request).await.unwrap_or_else(|e| error_response(&e));
            tracing::info!(status = response.status().as_u16(), "request answered");
            response
        }
        .instrument(span)
        .await;
        Ok::<_, lambda_http::Error>(response)
    }))
    .await
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

/// The JSON error response for any library error: `{"error":{"code","message"}}`.
pub fn error_response(error: &Error) -> Response<Body> {
    if error.status() >= 500 {
        tracing::error!(code = error.code(), %error, "request failed");
    } else {
        tracing::info!(code = error.code(), %error, "request rejected");
    }
    json_response(error.status(), &error.body())
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
        return Err(Error::TooLarge {
            code: codes::PAYLOAD_TOO_LARGE,
            message: format!(
                "body is {} bytes; the limit is {JSON_BODY_LIMIT}",
                bytes.len()
            ),
        });
    }
    serde_json::from_slice(bytes).map_err(|e| {
        Error::bad_request(codes::INVALID_JSON, format!("body is not valid JSON: {e}"))
    })
}

/// A JSON body that must be an object with no fields but `allowed` (unknown
/// fields are refused, as Stripe does, rather than silently ignored).
pub fn json_object<'a>(
    body: &'a serde_json::Value,
    allowed: &[&str],
) -> Result<&'a serde_json::Map<String, serde_json::Value>> {
    let object = body
        .as_object()
        .ok_or_else(|| Error::bad_request(codes::BAD_REQUEST, "body must be a JSON object"))?;
    if let Some(unknown) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(Error::bad_request(
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
        let response = error_response(&Error::not_found("NOT_FOUND", "no route GET /v1/nope"));
        assert_eq!(response.status(), 404);
        assert_eq!(response.headers()["content-type"], "application/json");
        let Body::Text(text) = response.body() else {
            panic!("expected a text body")
        };
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(json["error"]["code"], "NOT_FOUND");
        assert_eq!(json["error"]["message"], "no route GET /v1/nope");
    }

    #[test]
    fn json_bodies_are_bounded_and_parsed() {
        assert_eq!(json_body(br#"{"quantity":1}"#).unwrap()["quantity"], 1);
        let err = json_body(b"{nope").unwrap_err();
        assert_eq!((err.status(), err.code()), (400, codes::INVALID_JSON));
        let err = json_body(b"").unwrap_err();
        assert_eq!(err.code(), codes::INVALID_JSON);
        let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(JSON_BODY_LIMIT));
        let err = json_body(big.as_bytes()).unwrap_err();
        assert_eq!((err.status(), err.code()), (413, codes::PAYLOAD_TOO_LARGE));
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
