//! The one error type of the library, mapped once to an HTTP status and a
//! stable, machine-readable error code.
//!
//! Client mistakes are 4xx with a code from [`codes`]; only our own failures
//! (a dependency down, a misconfigured deployment) are 5xx.

use serde::Serialize;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Stable error codes. Clients branch on these; their meaning never changes.
pub mod codes {
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    pub const INVALID_JSON: &str = "INVALID_JSON";
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    pub const INVALID_QUANTITY: &str = "INVALID_QUANTITY";
    pub const INVALID_CURSOR: &str = "INVALID_CURSOR";
    pub const INVALID_LIMIT: &str = "INVALID_LIMIT";
    pub const IDEMPOTENCY_KEY_MISSING: &str = "IDEMPOTENCY_KEY_MISSING";
    pub const IDEMPOTENCY_KEY_INVALID: &str = "IDEMPOTENCY_KEY_INVALID";
    pub const IDEMPOTENCY_KEY_REUSED: &str = "IDEMPOTENCY_KEY_REUSED";
    pub const IDEMPOTENCY_IN_PROGRESS: &str = "IDEMPOTENCY_IN_PROGRESS";
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const TOKEN_EXPIRED: &str = "TOKEN_EXPIRED";
    pub const INVALID_TOKEN: &str = "INVALID_TOKEN";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const ORDER_NOT_FOUND: &str = "ORDER_NOT_FOUND";
    pub const ORDER_NOT_PAID: &str = "ORDER_NOT_PAID";
    pub const NOTHING_TO_REFUND: &str = "NOTHING_TO_REFUND";
    pub const REFUND_EXCEEDS_UNUSED: &str = "REFUND_EXCEEDS_UNUSED";
    pub const REFUND_WINDOW_CLOSED: &str = "REFUND_WINDOW_CLOSED";
    pub const INSUFFICIENT_QUOTA: &str = "INSUFFICIENT_QUOTA";
    pub const INVALID_SIGNATURE: &str = "INVALID_SIGNATURE";
    pub const AMOUNT_MISMATCH: &str = "AMOUNT_MISMATCH";
    pub const UNKNOWN_TRANSACTION_STATUS: &str = "UNKNOWN_TRANSACTION_STATUS";
    pub const CONTENTION: &str = "CONTENTION";
    pub const DOCUMENT_NOT_FOUND: &str = "DOCUMENT_NOT_FOUND";
    pub const DOCUMENT_TOO_LARGE: &str = "DOCUMENT_TOO_LARGE";
    pub const NOT_A_PDF: &str = "NOT_A_PDF";
    pub const INVALID_PLACEMENT: &str = "INVALID_PLACEMENT";
    pub const INVALID_FILENAME: &str = "INVALID_FILENAME";
    pub const JOB_NOT_FOUND: &str = "JOB_NOT_FOUND";
    pub const TOO_MANY_ITEMS: &str = "TOO_MANY_ITEMS";
    pub const DEPENDENCY_UNAVAILABLE: &str = "DEPENDENCY_UNAVAILABLE";
    pub const MISCONFIGURED: &str = "MISCONFIGURED";
    pub const INVALID_API_KEY: &str = "INVALID_API_KEY";
    pub const FORBIDDEN_FOR_CALLER: &str = "FORBIDDEN_FOR_CALLER";
    pub const CUSTOMER_NOT_FOUND: &str = "CUSTOMER_NOT_FOUND";
    pub const WEBHOOK_SIGNATURE_INVALID: &str = "WEBHOOK_SIGNATURE_INVALID";
    pub const WEBHOOK_TIMESTAMP_OUT_OF_RANGE: &str = "WEBHOOK_TIMESTAMP_OUT_OF_RANGE";
    pub const WEBHOOK_HEADERS_MISSING: &str = "WEBHOOK_HEADERS_MISSING";
    pub const UNKNOWN_EVENT_TYPE: &str = "UNKNOWN_EVENT_TYPE";
    pub const INVALID_SERIAL: &str = "INVALID_SERIAL";
    pub const SERIAL_NOT_FOUND: &str = "SERIAL_NOT_FOUND";
    pub const INVALID_WEBHOOK_URL: &str = "INVALID_WEBHOOK_URL";
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The function was deployed without a setting it needs.
    #[error("configuration error: {0}")]
    Config(String),
    /// Malformed request (400).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// Missing, expired or forged credentials (401).
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    /// No such resource, or it belongs to someone else (404).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// Not enough quota (402).
    #[error("{message}")]
    PaymentRequired { code: &'static str, message: String },
    /// The request is valid but the resource's state does not allow it (409).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The body exceeds what the route accepts (413).
    #[error("{message}")]
    TooLarge { code: &'static str, message: String },
    /// Well-formed but semantically wrong (422).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// A dependency (DynamoDB, SQS, S3) failed or timed out.
    #[error("dependency {dependency} failed: {message}")]
    Dependency {
        dependency: &'static str,
        message: String,
    },
}

impl Error {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Error::BadRequest {
            code,
            message: message.into(),
        }
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Error::Unauthorized {
            code,
            message: message.into(),
        }
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Error::NotFound {
            code,
            message: message.into(),
        }
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Error::Unprocessable {
            code,
            message: message.into(),
        }
    }
    pub fn table(error: impl std::fmt::Display) -> Self {
        Error::Dependency {
            dependency: "table",
            message: error.to_string(),
        }
    }
    pub fn bucket(error: impl std::fmt::Display) -> Self {
        Error::Dependency {
            dependency: "bucket",
            message: error.to_string(),
        }
    }
    pub fn signing_key(error: impl std::fmt::Display) -> Self {
        Error::Dependency {
            dependency: "signing key",
            message: error.to_string(),
        }
    }
    pub fn queue(error: impl std::fmt::Display) -> Self {
        Error::Dependency {
            dependency: "queue",
            message: error.to_string(),
        }
    }

    /// HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest { .. } => 400,
            Error::Unauthorized { .. } => 401,
            Error::PaymentRequired { .. } => 402,
            Error::NotFound { .. } => 404,
            Error::Conflict { .. } => 409,
            Error::TooLarge { .. } => 413,
            Error::Unprocessable { .. } => 422,
            Error::Dependency { .. } => 503,
            Error::Config(_) => 500,
        }
    }

    /// Stable error code that clients may branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest { code, .. }
            | Error::Unauthorized { code, .. }
            | Error::PaymentRequired { code, .. }
            | Error::NotFound { code, .. }
            | Error::Conflict { code, .. }
            | Error::TooLarge { code, .. }
            | Error::Unprocessable { code, .. } => code,
            Error::Dependency { .. } => codes::DEPENDENCY_UNAVAILABLE,
            Error::Config(_) => codes::MISCONFIGURED,
        }
    }

    /// The JSON body every error response carries.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
            },
        }
    }
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ErrorDetail {
    pub code: &'static str,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_are_4xx_with_their_codes() {
        let cases = [
            (
                Error::bad_request(codes::INVALID_JSON, "x"),
                400,
                "INVALID_JSON",
            ),
            (
                Error::unauthorized(codes::TOKEN_EXPIRED, "x"),
                401,
                "TOKEN_EXPIRED",
            ),
            (
                Error::not_found(codes::ORDER_NOT_FOUND, "x"),
                404,
                "ORDER_NOT_FOUND",
            ),
            (
                Error::conflict(codes::NOTHING_TO_REFUND, "x"),
                409,
                "NOTHING_TO_REFUND",
            ),
            (
                Error::TooLarge {
                    code: codes::PAYLOAD_TOO_LARGE,
                    message: "x".into(),
                },
                413,
                "PAYLOAD_TOO_LARGE",
            ),
            (
                Error::unprocessable(codes::AMOUNT_MISMATCH, "x"),
                422,
                "AMOUNT_MISMATCH",
            ),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status(), status, "{error:?}");
            assert_eq!(error.code(), code);
        }
    }

    #[test]
    fn body_names_code_and_message() {
        let err = Error::Dependency {
            dependency: "table",
            message: "timed out".into(),
        };
        let json = serde_json::to_value(err.body()).unwrap();
        assert_eq!(json["error"]["code"], "DEPENDENCY_UNAVAILABLE");
        assert_eq!(
            json["error"]["message"],
            "dependency table failed: timed out"
        );
        assert_eq!(err.status(), 503);
    }
}
