//! The one mapping from a domain error to an HTTP answer: its status (by the
//! error's kind) and its JSON body. The domain knows kinds and codes; only
//! this module knows statuses.

use meterai_core::ErrorKind;
use serde::Serialize;

use crate::error::{codes, Error};

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

/// Seconds a client should wait before sending the same request again
/// (`Retry-After`): for a 503 (a dependency failed or did not answer within
/// its time budget: nearly always a passing state, and a retry with the same
/// idempotency key is safe), for the same idempotency key still being worked
/// on, and for a write that lost a race. Nothing for an answer a client's
/// own request decides, which would come out the same.
pub fn retry_after_of(error: &Error) -> Option<u32> {
    match (error.kind(), error.code()) {
        (ErrorKind::Unavailable, _) => Some(2),
        (_, codes::IDEMPOTENCY_IN_PROGRESS | codes::CONTENTION) => Some(1),
        _ => None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answers_worth_sending_again_say_when() {
        let busy = Error::table("the table did not answer in time");
        assert_eq!(retry_after_of(&busy), Some(2));
        let running = Error::conflict(codes::IDEMPOTENCY_IN_PROGRESS, "still running");
        assert_eq!(retry_after_of(&running), Some(1));
        let lost = Error::conflict(codes::CONTENTION, "lost a race");
        assert_eq!(retry_after_of(&lost), Some(1));
        let verifier = Error::busy(codes::VERIFIER_BUSY, "busy with another file");
        assert_eq!(
            (status_of(&verifier), retry_after_of(&verifier)),
            (503, Some(2))
        );
        assert_eq!(error_body(&verifier, "").error.code, codes::VERIFIER_BUSY);
        let spent = Error::quota_exhausted(codes::INSUFFICIENT_QUOTA, "no stamps left");
        assert_eq!(retry_after_of(&spent), None);
        let invalid = Error::invalid(codes::INVALID_QUANTITY, "bad");
        assert_eq!(retry_after_of(&invalid), None);
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
        let error = Error::queue(detail);
        assert_eq!(status_of(&error), 503);
        let text = &serde_json::to_string(&error_body(&error, "req-42")).unwrap();
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
}
