//! The signing key in AWS KMS (`SIGN_VERIFY`, `RSA_2048` or `ECC_NIST_P256`):
//! the adapter behind `meterai_pdf::signing::Signer` that the worker uses, and
//! the certificate request an operator sends to a CA. Only the SHA-256 of
//! what is signed travels to KMS (`MessageType=DIGEST`).

use std::future::Future;
use std::sync::Arc;

use meterai_pdf::signing::{Chain, KeyKind, Signer, SigningError};
use sha2::{Digest, Sha256};

/// The KMS key and its certificate chain.
#[derive(Debug, Clone)]
pub struct KmsSigner {
    client: aws_sdk_kms::Client,
    key_id: String,
    chain: Arc<Chain>,
}

impl KmsSigner {
    pub fn new(client: aws_sdk_kms::Client, key_id: String, chain: Arc<Chain>) -> Self {
        Self {
            client,
            key_id,
            chain,
        }
    }
}

fn kms_algorithm(kind: KeyKind) -> aws_sdk_kms::types::SigningAlgorithmSpec {
    match kind {
        KeyKind::Rsa => aws_sdk_kms::types::SigningAlgorithmSpec::RsassaPkcs1V15Sha256,
        KeyKind::EcdsaP256 => aws_sdk_kms::types::SigningAlgorithmSpec::EcdsaSha256,
    }
}

/// `kms:Sign` of the SHA-256 of `message`: only the digest travels.
async fn kms_sign(
    client: &aws_sdk_kms::Client,
    key_id: &str,
    kind: KeyKind,
    message: &[u8],
) -> Result<Vec<u8>, SigningError> {
    use aws_sdk_kms::error::ProvideErrorMetadata;
    let digest = Sha256::digest(message).to_vec();
    let started = std::time::Instant::now();
    let out = client
        .sign()
        .key_id(key_id)
        .message(aws_sdk_kms::primitives::Blob::new(digest))
        .message_type(aws_sdk_kms::types::MessageType::Digest)
        .signing_algorithm(kms_algorithm(kind))
        .send()
        .await
        // Throttled, unreachable or a key that is disabled: the worker retries
        // them all through the queue, so they are one kind of error here;
        // throttling is counted apart, for the operators' quota alarm.
        .map_err(|e| {
            if e.code() == Some("ThrottlingException") {
                tracing::warn!(target: meterai_core::METRIC, kms_throttles = 1);
            }
            SigningError::Unavailable(aws_sdk_kms::error::DisplayErrorContext(e).to_string())
        })?;
    tracing::info!(
        target: meterai_core::METRIC,
        signing_ms = started.elapsed().as_millis() as u64
    );
    out.signature
        .map(|b| b.into_inner())
        .ok_or_else(|| SigningError::Unavailable("KMS returned no signature".into()))
}

impl Signer for KmsSigner {
    fn chain(&self) -> &Chain {
        &self.chain
    }
    fn sign(
        &self,
        signed_attributes: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>, SigningError>> + Send {
        kms_sign(
            &self.client,
            &self.key_id,
            self.chain.key_kind(),
            signed_attributes,
        )
    }
}

/// A PKCS#10 certificate request for the KMS key, signed by the key itself
/// (a CA's proof of possession), as PEM. `subject` is an RFC 4514 name,
/// e.g. `CN=meterai e-Meterai signer,O=Example,C=ID`.
pub async fn certificate_request(
    kms: &aws_sdk_kms::Client,
    key_id: &str,
    subject: &str,
) -> Result<String, SigningError> {
    let public = kms
        .get_public_key()
        .key_id(key_id)
        .send()
        .await
        .map_err(|e| SigningError::Key(aws_sdk_kms::error::DisplayErrorContext(e).to_string()))?;
    let spki_der = public
        .public_key
        .ok_or_else(|| SigningError::Key("KMS returned no public key".into()))?
        .into_inner();
    // The same call the worker makes: only the digest goes to KMS.
    meterai_pdf::signing::certificate_request(&spki_der, subject, |kind, der| async move {
        kms_sign(kms, key_id, kind, &der).await
    })
    .await
}

/// Our signing certificate chain (PEM, signer first), as installed in the
/// bucket by `infra/signing-cert.sh`.
pub async fn read_chain(
    clients: &crate::AwsClients,
    bucket: &str,
    key: &str,
) -> crate::Result<Chain> {
    use crate::error::Error;
    let object = clients
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            Error::signing_key(format!(
                "no signing certificate at {key}: {}",
                aws_sdk_s3::error::DisplayErrorContext(e)
            ))
        })?;
    let pem = object
        .body
        .collect()
        .await
        .map_err(Error::bucket)?
        .into_bytes();
    Chain::from_pem(&pem).map_err(Error::signing_key)
}
