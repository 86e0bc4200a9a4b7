//! The one error type of the domain: what went wrong, in the domain's words,
//! with a stable machine-readable code. It carries no HTTP status: the entry
//! points map each [`ErrorKind`] to one, in one place
//! (`meterai::http::status_of`).
//!
//! A failed dependency ([`Error::Unavailable`]) keeps its cause (the SDK's
//! whole error chain) for the logs; [`Error::message`] never shows it, so no
//! SDK text, ARN, bucket key or queue URL reaches a client.

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
    pub const CORRECTION_EXISTS: &str = "CORRECTION_EXISTS";
    pub const INVALID_SIGNATURE: &str = "INVALID_SIGNATURE";
    pub const AMOUNT_MISMATCH: &str = "AMOUNT_MISMATCH";
    pub const UNKNOWN_TRANSACTION_STATUS: &str = "UNKNOWN_TRANSACTION_STATUS";
    pub const GATEWAY_STATUS_INCONSISTENT: &str = "GATEWAY_STATUS_INCONSISTENT";
    pub const CONTENTION: &str = "CONTENTION";
    pub const DOCUMENT_NOT_FOUND: &str = "DOCUMENT_NOT_FOUND";
    pub const DOCUMENT_TOO_LARGE: &str = "DOCUMENT_TOO_LARGE";
    /// The upload was replaced after the job was accepted.
    pub const DOCUMENT_CHANGED: &str = "DOCUMENT_CHANGED";
    /// A file that takes longer to read than a request may take.
    pub const PDF_TOO_COMPLEX: &str = "PDF_TOO_COMPLEX";
    /// A verifier still busy with a file that ran over its time.
    pub const VERIFIER_BUSY: &str = "VERIFIER_BUSY";
    pub const NOT_A_PDF: &str = "NOT_A_PDF";
    pub const INVALID_PLACEMENT: &str = "INVALID_PLACEMENT";
    pub const INVALID_FILENAME: &str = "INVALID_FILENAME";
    pub const JOB_NOT_FOUND: &str = "JOB_NOT_FOUND";
    pub const TOO_MANY_ITEMS: &str = "TOO_MANY_ITEMS";
    pub const DEPENDENCY_UNAVAILABLE: &str = "DEPENDENCY_UNAVAILABLE";
    pub const MISCONFIGURED: &str = "MISCONFIGURED";
    pub const INVALID_API_KEY: &str = "INVALID_API_KEY";
    pub const FORBIDDEN_FOR_CALLER: &str = "FORBIDDEN_FOR_CALLER";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UNSUPPORTED_MEDIA_TYPE";
    pub const CROSS_SITE_REQUEST: &str = "CROSS_SITE_REQUEST";
    pub const CUSTOMER_NOT_FOUND: &str = "CUSTOMER_NOT_FOUND";
    pub const WEBHOOK_SIGNATURE_INVALID: &str = "WEBHOOK_SIGNATURE_INVALID";
    pub const WEBHOOK_TIMESTAMP_OUT_OF_RANGE: &str = "WEBHOOK_TIMESTAMP_OUT_OF_RANGE";
    pub const WEBHOOK_HEADERS_MISSING: &str = "WEBHOOK_HEADERS_MISSING";
    pub const UNKNOWN_EVENT_TYPE: &str = "UNKNOWN_EVENT_TYPE";
    pub const INVALID_SERIAL: &str = "INVALID_SERIAL";
    pub const SERIAL_NOT_FOUND: &str = "SERIAL_NOT_FOUND";
    pub const INVALID_WEBHOOK_URL: &str = "INVALID_WEBHOOK_URL";
    pub const INVALID_USERNAME: &str = "INVALID_USERNAME";
    pub const WEAK_PASSWORD: &str = "WEAK_PASSWORD";
    pub const WRONG_CODE: &str = "WRONG_CODE";
    pub const ACCOUNT_EXISTS: &str = "ACCOUNT_EXISTS";
    pub const WRONG_CREDENTIALS: &str = "WRONG_CREDENTIALS";
    pub const ACCOUNT_NOT_CONFIRMED: &str = "ACCOUNT_NOT_CONFIRMED";
    pub const SESSION_ENDED: &str = "SESSION_ENDED";
}

/// What kind of failure an error is: the entry points choose the answer
/// (an HTTP status, a retry) by kind, the client branches on the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or out of bounds.
    Invalid,
    /// Missing, expired or forged credentials.
    Unauthenticated,
    /// No such thing, or it belongs to someone else.
    NotFound,
    /// Not enough quota for what was asked.
    QuotaExhausted,
    /// Valid, but the current state does not allow it.
    Conflict,
    /// Larger than allowed.
    TooLarge,
    /// Well-formed but refused on its meaning (a mismatched amount, a reused key).
    Rejected,
    /// A dependency (table, queue, bucket, signing key) failed or timed out.
    Unavailable,
    /// The deployment lacks a setting the code needs.
    Misconfigured,
}

/// The dependencies whose failures are told apart in logs and answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    Table,
    Queue,
    Bucket,
    SigningKey,
    /// The user pool's published signing keys (JWKS).
    IdentityProvider,
    /// The payment gateway (Midtrans).
    PaymentGateway,
    /// The e-mail service (SES).
    Mail,
    /// The key that seals stored secrets (KMS).
    SecretsKey,
    /// The metrics service (CloudWatch), for the operators' alarms.
    Metrics,
}

impl Dependency {
    pub fn as_str(self) -> &'static str {
        match self {
            Dependency::Table => "table",
            Dependency::Queue => "queue",
            Dependency::Bucket => "bucket",
            Dependency::SigningKey => "signing key",
            Dependency::IdentityProvider => "identity provider",
            Dependency::PaymentGateway => "payment gateway",
            Dependency::Mail => "mail",
            Dependency::SecretsKey => "secrets key",
            Dependency::Metrics => "metrics",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A client mistake or a refusal by a domain rule, with its stable code.
    #[error("{message}")]
    Domain {
        kind: ErrorKind,
        code: &'static str,
        message: String,
    },
    /// A dependency failed; `detail` (the full cause chain) is for the logs only.
    #[error("dependency {} failed: {detail}", dependency.as_str())]
    Unavailable {
        dependency: Dependency,
        detail: String,
    },
    /// The function was deployed without a setting it needs.
    #[error("configuration error: {0}")]
    Misconfigured(String),
}

impl Error {
    fn domain(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Error::Domain {
            kind,
            code,
            message: message.into(),
        }
    }
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::domain(ErrorKind::Invalid, code, message)
    }
    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        Self::domain(ErrorKind::Unauthenticated, code, message)
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::domain(ErrorKind::NotFound, code, message)
    }
    pub fn quota_exhausted(code: &'static str, message: impl Into<String>) -> Self {
        Self::domain(ErrorKind::QuotaExhausted, code, message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::domain(ErrorKind::Conflict, code, message)
    }
    pub fn too_large(code: &'static str, message: impl Into<String>) -> Self {
        Self::domain(ErrorKind::TooLarge, code, message)
    }
    pub fn rejected(code: &'static str, message: impl Into<String>) -> Self {
        Self::domain(ErrorKind::Rejected, code, message)
    }
    /// We cannot take this request now (no dependency failed): 503, retry.
    pub fn busy(code: &'static str, message: impl Into<String>) -> Self {
        Self::domain(ErrorKind::Unavailable, code, message)
    }
    pub fn unavailable(dependency: Dependency, detail: impl std::fmt::Display) -> Self {
        Error::Unavailable {
            dependency,
            detail: detail.to_string(),
        }
    }
    pub fn table(detail: impl std::fmt::Display) -> Self {
        Self::unavailable(Dependency::Table, detail)
    }
    pub fn bucket(detail: impl std::fmt::Display) -> Self {
        Self::unavailable(Dependency::Bucket, detail)
    }
    pub fn queue(detail: impl std::fmt::Display) -> Self {
        Self::unavailable(Dependency::Queue, detail)
    }
    pub fn signing_key(detail: impl std::fmt::Display) -> Self {
        Self::unavailable(Dependency::SigningKey, detail)
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Domain { kind, .. } => *kind,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Misconfigured(_) => ErrorKind::Misconfigured,
        }
    }

    /// Stable error code that clients may branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Domain { code, .. } => code,
            Error::Unavailable { .. } => codes::DEPENDENCY_UNAVAILABLE,
            Error::Misconfigured(_) => codes::MISCONFIGURED,
        }
    }

    /// Whether the caller is at fault (and a retry of the same request will
    /// get the same answer), as opposed to our side failing.
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self.kind(),
            ErrorKind::Unavailable | ErrorKind::Misconfigured
        )
    }

    /// What a client may be told: the domain's words for a domain error, a
    /// generic sentence for our own failures (their detail goes to the logs).
    pub fn message(&self) -> String {
        match self {
            Error::Domain { message, .. } => message.clone(),
            Error::Unavailable { dependency, .. } => format!(
                "a dependency ({}) is unavailable; retry shortly",
                dependency.as_str()
            ),
            Error::Misconfigured(_) => "the service is misconfigured".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_errors_keep_their_kind_code_and_words() {
        let e = Error::invalid(codes::INVALID_JSON, "body is not valid JSON");
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert_eq!(e.code(), "INVALID_JSON");
        assert_eq!(e.message(), "body is not valid JSON");
        assert!(e.is_client_error());
        for (e, kind) in [
            (Error::unauthenticated("X", "m"), ErrorKind::Unauthenticated),
            (Error::not_found("X", "m"), ErrorKind::NotFound),
            (Error::quota_exhausted("X", "m"), ErrorKind::QuotaExhausted),
            (Error::conflict("X", "m"), ErrorKind::Conflict),
            (Error::too_large("X", "m"), ErrorKind::TooLarge),
            (Error::rejected("X", "m"), ErrorKind::Rejected),
        ] {
            assert_eq!(e.kind(), kind);
        }
    }

    #[test]
    fn a_dependency_failure_keeps_its_cause_for_the_logs_only() {
        let detail = "ResourceNotFoundException: arn:aws:sqs:us-east-1:123456789012:jobs";
        let e = Error::queue(detail);
        assert_eq!(e.code(), codes::DEPENDENCY_UNAVAILABLE);
        assert!(!e.is_client_error());
        assert!(e.to_string().contains(detail), "the log line has the cause");
        let told = e.message();
        assert!(
            !told.contains("arn:") && !told.contains("123456789012"),
            "{told}"
        );
        assert!(told.contains("queue"));
        let m = Error::Misconfigured("JWT_SECRET is not set".into());
        assert_eq!(m.kind(), ErrorKind::Misconfigured);
        assert!(!m.message().contains("JWT_SECRET"));
    }
}
