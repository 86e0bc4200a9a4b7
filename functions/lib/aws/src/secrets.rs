//! Reseller webhook secrets at rest, sealed by a symmetric KMS key.
//!
//! The table is read by many functions; a secret stored in it in clear could
//! be used by any of them (or by anyone holding a table backup). Sealed, it
//! opens only for a role allowed `kms:Decrypt` on this key (the deliverer
//! and the inbound webhook), and only under an encryption context naming its
//! reseller: a sealed secret copied onto another reseller's item does not
//! open. A secret is 32 bytes, well under KMS's 4 KB, so no data key is needed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_kms::error::DisplayErrorContext;
use aws_sdk_kms::primitives::Blob;

use crate::error::{Dependency, Error, Result};
use meterai_core::webhooks::Secret;

/// Why a secret is sealed; part of every encryption context, and what the
/// roles' `kms:EncryptionContext:purpose` condition names.
pub const PURPOSE: &str = "webhook-secret";

/// Opened secrets kept per cold start (a delivery must not cost a KMS call
/// each); a rotation writes a new ciphertext, so it is never served stale.
const KEPT: usize = 1024;

/// Opened secrets by reseller and ciphertext.
type Opened = HashMap<(String, Vec<u8>), Secret>;

/// The sealing key, and the secrets this process has opened.
#[derive(Clone)]
pub struct WebhookSecrets {
    kms: aws_sdk_kms::Client,
    key_id: String,
    opened: Arc<Mutex<Opened>>,
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSecrets")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

fn unavailable(detail: impl std::fmt::Display) -> Error {
    Error::unavailable(Dependency::SecretsKey, detail)
}

impl WebhookSecrets {
    pub fn new(kms: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self {
            kms,
            key_id: key_id.into(),
            opened: Arc::default(),
        }
    }

    fn context(reseller_id: &str) -> HashMap<String, String> {
        HashMap::from([
            ("purpose".to_string(), PURPOSE.to_string()),
            ("reseller".to_string(), reseller_id.to_string()),
        ])
    }

    /// The ciphertext to store for `reseller_id`'s `secret`.
    pub async fn seal(&self, reseller_id: &str, secret: &Secret) -> Result<Vec<u8>> {
        let out = self
            .kms
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(secret.expose().into_bytes()))
            .set_encryption_context(Some(Self::context(reseller_id)))
            .send()
            .await
            .map_err(|e| unavailable(DisplayErrorContext(e)))?;
        out.ciphertext_blob
            .map(Blob::into_inner)
            .ok_or_else(|| unavailable("KMS returned no ciphertext"))
    }

    /// `reseller_id`'s secret from its stored ciphertext. A ciphertext that
    /// is not this reseller's, or not this key's, does not open.
    pub async fn open(&self, reseller_id: &str, sealed: &[u8]) -> Result<Secret> {
        let id = (reseller_id.to_string(), sealed.to_vec());
        if let Some(secret) = self.opened.lock().expect("not poisoned").get(&id) {
            return Ok(secret.clone());
        }
        let out = self
            .kms
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(sealed))
            .set_encryption_context(Some(Self::context(reseller_id)))
            .send()
            .await
            .map_err(|e| unavailable(DisplayErrorContext(e)))?;
        let secret = out
            .plaintext
            .and_then(|p| String::from_utf8(p.into_inner()).ok())
            .and_then(|text| Secret::parse(&text))
            .ok_or_else(|| unavailable("the sealed webhook secret is not a secret"))?;
        let mut opened = self.opened.lock().expect("not poisoned");
        if opened.len() >= KEPT {
            opened.clear();
        }
        opened.insert(id, secret.clone());
        Ok(secret)
    }
}
