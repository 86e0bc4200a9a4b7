//! Idempotency keys at the edge: the `Idempotency-Key` header, the
//! request's fingerprint, and [`once`], which runs a route's operation
//! through the use case (`meterai_app::idempotency::once`) on the table's
//! keys (`meterai_aws::idempotency`) and stores a client error as the HTTP
//! answer it gets.

use sha2::{Digest, Sha256};

use crate::auth::AccountId;
use crate::error::{codes, Error, Result};
use meterai_app::ports::{IdempotencyKeys, KeyScope, SystemClock};

pub use meterai_app::ports::StoredResponse;

/// Validates an `Idempotency-Key` header: required, 1-255 visible ASCII characters.
pub fn parse_key(raw: Option<&str>) -> Result<String> {
    let key = raw.ok_or_else(|| {
        Error::invalid(
            codes::IDEMPOTENCY_KEY_MISSING,
            "the Idempotency-Key header is required",
        )
    })?;
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            codes::IDEMPOTENCY_KEY_INVALID,
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(key.to_string())
}

/// A fingerprint of the request: same route, same JSON (key order and
/// whitespace do not matter) gives the same hash.
pub fn request_hash(route: &str, body: &serde_json::Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(route.as_bytes());
    hasher.update([0]);
    hasher.update(serde_json::to_vec(body).unwrap_or_default());
    hex::encode(hasher.finalize())
}

/// What identifies one thing a keyed request makes (the `index`-th of a
/// batch): a retry with the same key and request names the same thing,
/// another account or another request never does.
pub fn seed(account: &AccountId, scope: &str, key: &str, hash: &str, index: usize) -> String {
    format!("{account}\0{scope}\0{key}\0{hash}\0{index}")
}

/// Runs `operation` once per key (see `meterai_app::idempotency::once`); a
/// client error is stored as the HTTP answer it gets, so a retry gets the
/// same answer.
pub async fn once<Fut>(
    keys: &dyn IdempotencyKeys,
    account: &AccountId,
    scope: &str,
    key: &str,
    hash: &str,
    operation: Fut,
) -> Result<(StoredResponse, bool)>
where
    Fut: std::future::Future<Output = Result<StoredResponse>>,
{
    let scope = KeyScope {
        account,
        scope,
        key,
        hash,
    };
    let answer_of = |e: &Error| StoredResponse {
        status: crate::errors::status_of(e),
        body: serde_json::to_string(&crate::errors::error_body(e, "")).unwrap_or_default(),
    };
    meterai_app::idempotency::once(keys, &SystemClock, &scope, answer_of, operation).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_is_required_and_bounded() {
        assert_eq!(
            parse_key(None).unwrap_err().code(),
            codes::IDEMPOTENCY_KEY_MISSING
        );
        assert_eq!(
            parse_key(Some("")).unwrap_err().code(),
            codes::IDEMPOTENCY_KEY_INVALID
        );
        assert_eq!(
            parse_key(Some(&"k".repeat(256))).unwrap_err().code(),
            codes::IDEMPOTENCY_KEY_INVALID
        );
        assert_eq!(
            parse_key(Some("has space")).unwrap_err().code(),
            codes::IDEMPOTENCY_KEY_INVALID
        );
        assert_eq!(
            parse_key(Some("order-2024-09-06-001")).unwrap(),
            "order-2024-09-06-001"
        );
    }

    #[test]
    fn a_seed_names_one_caller_one_request_and_one_place() {
        let a = AccountId::parse("user-1").unwrap();
        let b = AccountId::parse("user-2").unwrap();
        let one = seed(&a, "stamps", "k", "h", 0);
        assert_eq!(one, seed(&a, "stamps", "k", "h", 0));
        for other in [
            seed(&b, "stamps", "k", "h", 0),
            seed(&a, "stamps-batch", "k", "h", 0),
            seed(&a, "stamps", "k2", "h", 0),
            seed(&a, "stamps", "k", "h2", 0),
            seed(&a, "stamps", "k", "h", 1),
        ] {
            assert_ne!(one, other);
        }
    }

    #[test]
    fn hash_ignores_key_order_but_not_values_or_route() {
        let a: serde_json::Value = serde_json::from_str(r#"{"quantity": 5, "note": "x"}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"note":"x","quantity":5}"#).unwrap();
        assert_eq!(
            request_hash("POST /v1/orders", &a),
            request_hash("POST /v1/orders", &b)
        );
        assert_ne!(
            request_hash("POST /v1/orders", &a),
            request_hash("POST /v1/orders", &json!({"quantity": 6, "note": "x"}))
        );
        assert_ne!(
            request_hash("POST /v1/orders", &a),
            request_hash("POST /v1/other", &a)
        );
    }
}
