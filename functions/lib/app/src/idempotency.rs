//! Idempotency keys, in the shape Stripe made familiar: the first request with
//! a key runs and its answer is stored; a retry with the same key and the
//! same request gets that answer back; the same key with another request is
//! refused; a retry while the first is still running is told to wait.
//!
//! Records live 24 hours. A record left `in_progress` by a function that
//! died is taken over once its lock expires ([`LOCK_MS`]).

use meterai_core::error::codes;
use meterai_core::{Error, Result};

use crate::ports::{Claimed, Clock, IdempotencyKeys, KeyScope, StoredResponse};

/// How long a request may hold its key before another may take over.
pub const LOCK_MS: i64 = 60_000;
/// How long an answer is kept for replay.
pub const RECORD_TTL_MS: i64 = 24 * 3600 * 1000;

/// Runs `operation` once per key: the first request runs it and stores its
/// answer (including a client error's answer, made by `answer_of`, as Stripe
/// does); a repeat gets the stored answer back, with `true` for "replayed".
/// A failure on our side (unavailable, or contention) is not stored, so the
/// client's retry runs again.
pub async fn once<Fut>(
    keys: &dyn IdempotencyKeys,
    clock: &dyn Clock,
    scope: &KeyScope<'_>,
    answer_of: impl Fn(&Error) -> StoredResponse,
    operation: Fut,
) -> Result<(StoredResponse, bool)>
where
    Fut: std::future::Future<Output = Result<StoredResponse>>,
{
    match keys.claim(scope, clock.now_ms()).await? {
        Claimed::Run => {}
        Claimed::Replay(stored) => return Ok((stored, true)),
        Claimed::Reused => {
            return Err(Error::rejected(
                codes::IDEMPOTENCY_KEY_REUSED,
                "this Idempotency-Key was used with a different request",
            ))
        }
        Claimed::InProgress => {
            return Err(Error::conflict(
                codes::IDEMPOTENCY_IN_PROGRESS,
                "a request with this Idempotency-Key is still being processed; retry shortly",
            ))
        }
    }
    let response = match operation.await {
        Ok(response) => response,
        Err(e) if e.is_client_error() && e.code() != codes::CONTENTION => answer_of(&e),
        Err(e) => {
            keys.release(scope).await;
            return Err(e);
        }
    };
    keys.complete(scope, &response).await?;
    Ok((response, false))
}
