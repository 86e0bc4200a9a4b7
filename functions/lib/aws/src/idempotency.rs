//! Idempotency keys in the table ([`DynamoIdempotencyKeys`]): the
//! adapter of `meterai_app::ports::IdempotencyKeys`.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;

use crate::error::{Error, Result};
use crate::keys;
use crate::store::{self, get_n, get_s, n, s};
use crate::AwsClients;
use meterai_app::idempotency::{LOCK_MS, RECORD_TTL_MS};
use meterai_app::ports::{Claimed, IdempotencyKeys, KeyScope};

use meterai_app::ports::StoredResponse;

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

impl DynamoIdempotencyKeys {
    /// One claim: what the key says, or `None` when its record vanished
    /// between our conditional write and our read.
    async fn try_claim(&self, scope: &KeyScope<'_>, now_ms: i64) -> Result<Option<Claimed>> {
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
        if store::condition_held(put)? {
            return Ok(Some(Claimed::Run));
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
        if existing.is_empty() {
            return Ok(None);
        }
        if get_s(&existing, "request_hash") != Some(scope.hash) {
            return Ok(Some(Claimed::Reused));
        }
        Ok(Some(
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
        ))
    }
}

#[async_trait]
impl IdempotencyKeys for DynamoIdempotencyKeys {
    async fn claim(&self, scope: &KeyScope<'_>, now_ms: i64) -> Result<Claimed> {
        // A record that stopped our write can be gone when we read it (its
        // request failed and gave the key back): claim again rather than
        // call the key reused. Bounded: a key given back over and over is in
        // progress as far as this request can tell.
        for _ in 0..3 {
            if let Some(claimed) = self.try_claim(scope, now_ms).await? {
                return Ok(claimed);
            }
        }
        Ok(Claimed::InProgress)
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
        // Only a claim still in progress for this request: a slow attempt
        // whose lock another took over must not delete that one's answer.
        let released = self
            .clients
            .dynamodb
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(record_key(scope).map()))
            .condition_expression("#status = :in_progress AND request_hash = :hash")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s("in_progress"))
            .expression_attribute_values(":hash", s(scope.hash))
            .send()
            .await;
        if let Err(e) = store::condition_held(released) {
            tracing::warn!(error = %e, "could not release an idempotency claim; it expires by itself");
        }
    }
}
