//! Idempotency keys at the edge and in the table: the `Idempotency-Key`
//! header, the request's fingerprint, the keys' DynamoDB adapter
//! ([`DynamoIdempotencyKeys`]) and [`once`], which runs a route's operation
//! through the use case (`meterai_app::idempotency::once`) and stores a
//! client error as the HTTP answer it gets.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use sha2::{Digest, Sha256};

use crate::auth::AccountId;
use crate::error::{codes, Error, Result};
use crate::keys;
use crate::store::{get_n, get_s, n, s};
use crate::AwsClients;
use meterai_app::idempotency::{LOCK_MS, RECORD_TTL_MS};
use meterai_app::ports::{Claimed, IdempotencyKeys, KeyScope, SystemClock};

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

/// Runs `operation` once per key (see `meterai_app::idempotency::once`); a
/// client error is stored as the HTTP answer it gets, so a retry gets the
/// same answer.
pub async fn once<Fut>(
    keys: &DynamoIdempotencyKeys,
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

/// Idempotency records in the table: `IDEM#{account}#{scope}#{key}` / `IDEM`,
/// removed by the table's TTL a day after.
#[derive(Debug, Clone)]
pub struct DynamoIdempotencyKeys {
    pub clients: AwsClients,
    pub table: String,
}

fn record_key(scope: &KeyScope<'_>) -> keys::Key {
    keys::idempotency(scope.account.as_str(), scope.scope, scope.key)
}

#[async_trait]
impl IdempotencyKeys for DynamoIdempotencyKeys {
    async fn claim(&self, scope: &KeyScope<'_>, now_ms: i64) -> Result<Claimed> {
        let item = record_key(scope).with([
            ("status".to_string(), s("in_progress")),
            ("request_hash".to_string(), s(scope.hash)),
            ("locked_until".to_string(), n(now_ms + LOCK_MS)),
            ("created_at".to_string(), n(now_ms)),
            ("expires_at".to_string(), n((now_ms + RECORD_TTL_MS) / 1000)),
        ]);
        // New key, an expired record the TTL reaper has not removed yet, or a
        // stale lock of the same request: claim it.
        let put = self
            .clients
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR expires_at < :now_s \
                 OR (#status = :in_progress AND request_hash = :hash AND locked_until < :now_ms)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now_s", n(now_ms / 1000))
            .expression_attribute_values(":now_ms", n(now_ms))
            .expression_attribute_values(":in_progress", s("in_progress"))
            .expression_attribute_values(":hash", s(scope.hash))
            .send()
            .await;
        match put {
            Ok(_) => return Ok(Claimed::Run),
            Err(e) => match e.into_service_error() {
                PutItemError::ConditionalCheckFailedException(_) => {}
                other => return Err(Error::table(DisplayErrorContext(other))),
            },
        }
        let existing = self
            .clients
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .set_key(Some(record_key(scope).map()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::table(DisplayErrorContext(e)))?
            .item
            .unwrap_or_default();
        if get_s(&existing, "request_hash") != Some(scope.hash) {
            return Ok(Claimed::Reused);
        }
        Ok(
            match (
                get_s(&existing, "status"),
                get_n(&existing, "response_status"),
                get_s(&existing, "response_body"),
            ) {
                (Some("completed"), Some(status), Some(body)) => Claimed::Replay(StoredResponse {
                    status: u16::try_from(status).unwrap_or(500),
                    body: body.to_string(),
                }),
                _ => Claimed::InProgress,
            },
        )
    }

    async fn complete(&self, scope: &KeyScope<'_>, response: &StoredResponse) -> Result<()> {
        self.clients
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(record_key(scope).map()))
            .update_expression("SET #status = :completed, response_status = :rs, response_body = :rb REMOVE locked_until")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":completed", s("completed"))
            .expression_attribute_values(":rs", n(i64::from(response.status)))
            .expression_attribute_values(":rb", s(&response.body))
            .send()
            .await
            .map_err(|e| Error::table(DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn release(&self, scope: &KeyScope<'_>) {
        if let Err(e) = self
            .clients
            .dynamodb
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(record_key(scope).map()))
            .send()
            .await
        {
            tracing::warn!(error = %DisplayErrorContext(e), "could not release an idempotency claim; it expires by itself");
        }
    }
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
