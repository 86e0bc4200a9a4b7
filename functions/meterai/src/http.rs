//! The one place where results become HTTP responses (API Gateway payload v2).

use lambda_http::{Body, Response};
use serde::Serialize;

use crate::error::Error;

/// A JSON response with the given status.
pub fn json_response(status: u16, body: &impl Serialize) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_string());
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Body::Text(text))
        .expect("a status code and two static headers always build")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_become_json_with_their_status() {
        let response = error_response(&Error::NotFound("no route GET /v1/nope".into()));
        assert_eq!(response.status(), 404);
        assert_eq!(response.headers()["content-type"], "application/json");
        let Body::Text(text) = response.body() else {
            panic!("expected a text body")
        };
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(json["error"]["code"], "NOT_FOUND");
        assert_eq!(json["error"]["message"], "no route GET /v1/nope");
    }
}
