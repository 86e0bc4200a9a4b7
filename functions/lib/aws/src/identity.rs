//! The user pool's published signing keys: `GET {jwks_url}`, read by the
//! authorizer on its cold start and again when a token names a key it has
//! not seen (Cognito rotates keys by publishing the new one first).

use std::time::Duration;

use crate::error::{Dependency, Error, Result};

/// A key set is a few keys; anything larger is not the user pool answering.
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// The JWKS document at `url`, as sent (the caller parses it).
pub async fn fetch_jwks(http: &reqwest::Client, url: &str, timeout: Duration) -> Result<Vec<u8>> {
    let unavailable = |detail: String| Error::unavailable(Dependency::IdentityProvider, detail);
    let mut response = http
        .get(url)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| unavailable(format!("JWKS request failed: {e}")))?;
    if !response.status().is_success() {
        return Err(unavailable(format!("JWKS answered {}", response.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| unavailable(format!("JWKS body failed: {e}")))?
    {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(unavailable("JWKS document is too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
