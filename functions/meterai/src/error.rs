//! The one error type of the library, mapped once to an HTTP status and a
//! stable, machine-readable error code.

use serde::Serialize;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The function was deployed without a setting it needs.
    #[error("configuration error: {0}")]
    Config(String),
    /// The request is not what the API accepts.
    #[error("{0}")]
    BadRequest(String),
    /// No such route or resource (or it belongs to someone else).
    #[error("{0}")]
    NotFound(String),
    /// A dependency (DynamoDB, SQS, S3) failed or timed out.
    #[error("dependency {dependency} failed: {message}")]
    Dependency {
        dependency: &'static str,
        message: String,
    },
}

impl Error {
    /// HTTP status for this error. Client mistakes are 4xx; only our own
    /// failures are 5xx.
    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest(_) => 400,
            Error::NotFound(_) => 404,
            Error::Dependency { .. } => 503,
            Error::Config(_) => 500,
        }
    }

    /// Stable error code that clients may branch on; never changes meaning.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "BAD_REQUEST",
            Error::NotFound(_) => "NOT_FOUND",
            Error::Dependency { .. } => "DEPENDENCY_UNAVAILABLE",
            Error::Config(_) => "MISCONFIGURED",
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
    fn client_errors_are_4xx_with_stable_codes() {
        let bad = Error::BadRequest("page must be >= 1".into());
        assert_eq!(bad.status(), 400);
        assert_eq!(bad.code(), "BAD_REQUEST");
        let missing = Error::NotFound("no route".into());
        assert_eq!(missing.status(), 404);
        assert_eq!(missing.code(), "NOT_FOUND");
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
