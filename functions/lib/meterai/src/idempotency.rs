//! Idempotency keys, in the shape Stripe made familiar: the first request with
//! a key runs and its response is stored; a retry with the same key and the
//! same body gets that response back; the same key with another body is 422;
//! a retry while the first is still running is 409.
//!
//! Records live 24 hours (TTL). A record left `in_progress` by a function that
//! died is taken over once its lock expires.

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use sha2::{Digest, Sha256};

use crate::auth::AccountId;
use crate::error::{codes, Error, Result};
use crate::store::{get_n, get_s, n, s, Item};
use crate::AwsClients;

const RECORD_TTL_SECONDS: i64 = 24 * 3600;
/// How long a request may hold its key before another may take over.
const LOCK_MS: i64 = 60_000;

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

/// A stored response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// A claimed key: finish it with [`complete`] or [`release`].
#[derive(Debug, Clone)]
pub struct Claim {
    pk: String,
}

pub enum Begin {
    /// First time (or a takeover): run the request.
    Run(Claim),
    /// Already answered: return this.
    Replay(StoredResponse),
}

fn record_pk(account: &AccountId, scope: &str, key: &str) -> String {
    format!("IDEM#{account}#{scope}#{key}")
}

/// Claims `key` for this request, or finds the earlier answer.
pub async fn begin(
    clients: &AwsClients,
    table: &str,
    account: &AccountId,
    scope: &str,
    key: &str,
    hash: &str,
) -> Result<Begin> {
    let pk = record_pk(account, scope, key);
    let now = meterai_core::time::now_ms();
    let item = Item::from([
        ("pk".to_string(), s(&pk)),
        ("sk".to_string(), s("IDEM")),
        ("status".to_string(), s("in_progress")),
        ("request_hash".to_string(), s(hash)),
        ("locked_until".to_string(), n(now + LOCK_MS)),
        ("created_at".to_string(), n(now)),
        ("expires_at".to_string(), n(now / 1000 + RECORD_TTL_SECONDS)),
    ]);
    // New key, an expired record the TTL reaper has not removed yet, or a
    // stale lock of the same request: claim it.
    let put = clients
        .dynamodb
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(
            "attribute_not_exists(pk) OR expires_at < :now_s \
             OR (#status = :in_progress AND request_hash = :hash AND locked_until < :now_ms)",
        )
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":now_s", n(now / 1000))
        .expression_attribute_values(":now_ms", n(now))
        .expression_attribute_values(":in_progress", s("in_progress"))
        .expression_attribute_values(":hash", s(hash))
        .send()
        .await;
    match put {
        Ok(_) => return Ok(Begin::Run(Claim { pk })),
        Err(e) => match e.into_service_error() {
            PutItemError::ConditionalCheckFailedException(_) => {}
            other => return Err(Error::table(DisplayErrorContext(other))),
        },
    }
    let existing = clients
        .dynamodb
        .get_item()
        .table_name(table)
        .key("pk", s(&pk))
        .key("sk", s("IDEM"))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| Error::table(DisplayErrorContext(e)))?
        .item
        .unwrap_or_default();
    if get_s(&existing, "request_hash") != Some(hash) {
        return Err(Error::rejected(
            codes::IDEMPOTENCY_KEY_REUSED,
            "this Idempotency-Key was used with a different request",
        ));
    }
    match (
        get_s(&existing, "status"),
        get_n(&existing, "response_status"),
        get_s(&existing, "response_body"),
    ) {
        (Some("completed"), Some(status), Some(body)) => Ok(Begin::Replay(StoredResponse {
            status: status as u16,
            body: body.to_string(),
        })),
        _ => Err(Error::conflict(
            codes::IDEMPOTENCY_IN_PROGRESS,
            "a request with this Idempotency-Key is still being processed; retry shortly",
        )),
    }
}

/// Stores the answer so that retries get it back.
pub async fn complete(
    clients: &AwsClients,
    table: &str,
    claim: &Claim,
    response: &StoredResponse,
) -> Result<()> {
    clients
        .dynamodb
        .update_item()
        .table_name(table)
        .key("pk", s(&claim.pk))
        .key("sk", s("IDEM"))
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

/// Forgets the claim after a failure on our side, so a retry can run again.
pub async fn release(clients: &AwsClients, table: &str, claim: &Claim) {
    if let Err(e) = clients
        .dynamodb
        .delete_item()
        .table_name(table)
        .key("pk", s(&claim.pk))
        .key("sk", s("IDEM"))
        .send()
        .await
    {
        tracing::warn!(error = %DisplayErrorContext(e), "could not release an idempotency claim; it expires by itself");
    }
}

/// Runs `operation` once per key: the first request runs it and stores its
/// answer (including a 4xx answer, as Stripe does); a repeat gets the stored
/// answer back, with `true` for "replayed". A failure on our side (5xx, or
/// contention) is not stored, so the client's retry runs again.
pub async fn once<Fut>(
    clients: &AwsClients,
    table: &str,
    account: &AccountId,
    scope: &str,
    key: &str,
    hash: &str,
    operation: Fut,
) -> Result<(StoredResponse, bool)>
where
    Fut: std::future::Future<Output = Result<StoredResponse>>,
{
    let claim = match begin(clients, table, account, scope, key, hash).await? {
        Begin::Replay(stored) => return Ok((stored, true)),
        Begin::Run(claim) => claim,
    };
    let response = match operation.await {
        Ok(response) => response,
        Err(e) if e.is_client_error() && e.code() != codes::CONTENTION => StoredResponse {
            status: crate::errors::status_of(&e),
            body: serde_json::to_string(&crate::errors::error_body(&e, "")).unwrap_or_default(),
        },
        Err(e) => {
            release(clients, table, &claim).await;
            return Err(e);
        }
    };
    complete(clients, table, &claim, &response).await?;
    Ok((response, false))
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
