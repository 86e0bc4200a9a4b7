//! The stamp's digital signature: a PAdES baseline B-B CMS `SignedData`
//! (detached, SHA-256, `signingCertificateV2`, no `signingTime`; the time is
//! the signature dictionary's `/M`).
//!
//! Two signers sit behind [`Signer`] and produce the same structure: AWS KMS
//! (the private key never leaves it; the worker sends the digest of the
//! signed attributes to `kms:Sign`), and a local key file, used only by the
//! benchmark and the tests to show what the stamping itself costs.
//!
//! The key may be RSA (2048 to 8192 bits, PKCS#1 v1.5 with SHA-256) or ECDSA
//! P-256: the algorithm follows from the signer's certificate. The template
//! creates an `RSA_2048` key by default, because at the deadline the limit is
//! KMS itself and RSA 2048 has the higher request quota (500/s against 300/s
//! for ECC) at a fifth of the price per request; see `infra/CAPACITY.md`.

use std::future::Future;

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{Any, ObjectIdentifier, OctetString, SetOfVec};
use der::{Decode, Encode, Sequence};
use sha2::{Digest, Sha256};
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

pub const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
pub const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
pub const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
pub const ID_MESSAGE_DIGEST: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
pub const ID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
pub const ID_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
pub const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
pub const ID_ECDSA_WITH_SHA256: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
pub const ID_SHA256_WITH_RSA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
pub const ID_RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
pub const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
pub const ID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// The signing key's algorithm, as the signer's certificate says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA, PKCS#1 v1.5 signatures with SHA-256.
    Rsa,
    /// ECDSA on NIST P-256 with SHA-256.
    EcdsaP256,
}

impl KeyKind {
    /// From a certificate's (or KMS's) SubjectPublicKeyInfo.
    pub fn of(spki: &x509_cert::spki::SubjectPublicKeyInfoOwned) -> Option<Self> {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        match spki.algorithm.oid {
            ID_RSA_ENCRYPTION => Some(KeyKind::Rsa),
            ID_EC_PUBLIC_KEY if curve == Some(ID_P256) => Some(KeyKind::EcdsaP256),
            _ => None,
        }
    }

    /// The CMS `signatureAlgorithm`.
    pub fn signature_algorithm(self) -> AlgorithmIdentifierOwned {
        match self {
            KeyKind::Rsa => AlgorithmIdentifierOwned {
                oid: ID_SHA256_WITH_RSA,
                parameters: Some(Any::null()),
            },
            KeyKind::EcdsaP256 => algorithm(ID_ECDSA_WITH_SHA256),
        }
    }
}

/// Why a signature could not be made. `Unavailable`: KMS did not sign
/// (throttled, unreachable, key disabled); the others are faults in the
/// local key, the chain or the encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    #[error("the signing certificate chain is unusable: {0}")]
    Chain(String),
    #[error("the signing key is unusable: {0}")]
    Key(String),
    #[error("the signing service is unavailable: {0}")]
    Unavailable(String),
    #[error("could not encode the signature: {0}")]
    Encoding(String),
}

impl From<der::Error> for SigningError {
    fn from(e: der::Error) -> Self {
        SigningError::Encoding(e.to_string())
    }
}

/// The signer's certificate first, then the CAs above it (as they go into
/// the CMS `certificates` set, so validators can build the path).
#[derive(Debug, Clone)]
pub struct Chain {
    certificates: Vec<Certificate>,
    der: Vec<Vec<u8>>,
    kind: KeyKind,
}

impl Chain {
    /// Reads PEM certificates, the signer's first.
    pub fn from_pem(pem: &[u8]) -> Result<Self, SigningError> {
        let certificates = Certificate::load_pem_chain(pem)
            .map_err(|e| SigningError::Chain(format!("not PEM certificates: {e}")))?;
        if certificates.is_empty() {
            return Err(SigningError::Chain("no certificate in the PEM".into()));
        }
        let der = certificates
            .iter()
            .map(|c| c.to_der())
            .collect::<Result<Vec<_>, _>>()?;
        let kind = KeyKind::of(&certificates[0].tbs_certificate.subject_public_key_info)
            .ok_or_else(|| {
                SigningError::Chain(
                    "the signer's certificate holds neither an RSA nor a P-256 key".into(),
                )
            })?;
        Ok(Self {
            certificates,
            der,
            kind,
        })
    }

    pub fn key_kind(&self) -> KeyKind {
        self.kind
    }

    pub fn leaf(&self) -> &Certificate {
        &self.certificates[0]
    }

    pub fn leaf_der(&self) -> &[u8] {
        &self.der[0]
    }

    /// The signer's public key: an uncompressed EC point, or a DER
    /// `RSAPublicKey`.
    pub fn leaf_public_key(&self) -> &[u8] {
        self.leaf()
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes()
    }

    /// Bytes to reserve for the CMS in the PDF's `/Contents`: the chain plus
    /// room for the attributes, identifiers and signature, rounded up.
    pub fn contents_capacity(&self) -> usize {
        let certs: usize = self.der.iter().map(Vec::len).sum();
        (certs + 2048).div_ceil(1024) * 1024
    }
}

/// Something that signs the DER of CMS signed attributes with the key of
/// [`Signer::chain`]'s first certificate, by [`Chain::key_kind`] (with
/// SHA-256; an ECDSA signature DER-encoded).
pub trait Signer: Sync {
    fn chain(&self) -> &Chain;
    fn sign(
        &self,
        signed_attributes: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>, SigningError>> + Send;
}

/// A PKCS#8 key file: only for the benchmark and the tests.
pub struct LocalSigner {
    key: LocalKey,
    chain: Chain,
}

enum LocalKey {
    Rsa(aws_lc_rs::signature::RsaKeyPair),
    EcdsaP256(aws_lc_rs::signature::EcdsaKeyPair),
}

impl LocalSigner {
    pub fn from_pem(key_pem: &str, chain_pem: &[u8]) -> Result<Self, SigningError> {
        use aws_lc_rs::signature::KeyPair;
        let (label, der) = der::pem::decode_vec(key_pem.as_bytes())
            .map_err(|e| SigningError::Key(format!("not a PEM key: {e}")))?;
        if label != "PRIVATE KEY" {
            return Err(SigningError::Key(format!(
                "expected a PKCS#8 PRIVATE KEY, found {label}"
            )));
        }
        let chain = Chain::from_pem(chain_pem)?;
        let (key, public) = match chain.key_kind() {
            KeyKind::Rsa => {
                let key = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der)
                    .map_err(|e| SigningError::Key(format!("not an RSA PKCS#8 key: {e}")))?;
                let public = key.public_key().as_ref().to_vec();
                (LocalKey::Rsa(key), public)
            }
            KeyKind::EcdsaP256 => {
                let key = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
                    &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                    &der,
                )
                .map_err(|e| SigningError::Key(format!("not a P-256 PKCS#8 key: {e}")))?;
                let public = key.public_key().as_ref().to_vec();
                (LocalKey::EcdsaP256(key), public)
            }
        };
        if public != chain.leaf_public_key() {
            return Err(SigningError::Key(
                "the key does not match the signer's certificate".into(),
            ));
        }
        Ok(Self { key, chain })
    }

    /// Signs synchronously (the trait's future never waits).
    pub fn sign_now(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let failed = |_| SigningError::Key("signing with the local key failed".into());
        match &self.key {
            LocalKey::Rsa(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(
                    &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    &rng,
                    message,
                    &mut signature,
                )
                .map_err(failed)?;
                Ok(signature)
            }
            LocalKey::EcdsaP256(key) => key
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(failed),
        }
    }
}

impl Signer for LocalSigner {
    fn chain(&self) -> &Chain {
        &self.chain
    }
    fn sign(
        &self,
        signed_attributes: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>, SigningError>> + Send {
        std::future::ready(self.sign_now(signed_attributes))
    }
}

/// A PKCS#10 certificate request for the key with `public_key` (its
/// SubjectPublicKeyInfo DER), signed by that key through `sign` (a CA's
/// proof of possession), as PEM. `subject` is an RFC 4514 name, e.g.
/// `CN=meterai e-Meterai signer,O=Example,C=ID`. `sign` gets the key's kind
/// and the DER to sign (SHA-256 with that algorithm).
pub async fn certificate_request<F, Fut>(
    public_key: &[u8],
    subject: &str,
    sign: F,
) -> Result<String, SigningError>
where
    F: FnOnce(KeyKind, Vec<u8>) -> Fut,
    Fut: Future<Output = Result<Vec<u8>, SigningError>>,
{
    use std::str::FromStr;
    use x509_cert::request::{CertReq, CertReqInfo, Version};
    let public_key = x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(public_key)?;
    let kind = KeyKind::of(&public_key)
        .ok_or_else(|| SigningError::Key("the key is neither RSA nor P-256".into()))?;
    let info = CertReqInfo {
        version: Version::V1,
        subject: x509_cert::name::Name::from_str(subject)
            .map_err(|e| SigningError::Chain(format!("not an RFC 4514 name: {e}")))?,
        public_key,
        attributes: SetOfVec::new(),
    };
    let signature = sign(kind, info.to_der()?).await?;
    let request = CertReq {
        info,
        algorithm: kind.signature_algorithm(),
        signature: der::asn1::BitString::from_bytes(&signature)?,
    };
    Ok(der::EncodePem::to_pem(&request, der::pem::LineEnding::LF)?)
}

/// ESS `SigningCertificateV2` (RFC 5035): binds the signer's certificate
/// into the signed attributes so it cannot be swapped.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
}

/// `hashAlgorithm` is left out: its DEFAULT is SHA-256, which DER omits.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct EssCertIdV2 {
    cert_hash: OctetString,
    issuer_serial: IssuerSerial,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct IssuerSerial {
    issuer: Vec<GeneralName>,
    serial_number: SerialNumber,
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, SigningError> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value])?,
    })
}

fn algorithm(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: None,
    }
}

/// The signed attributes for a document digest: content type, message
/// digest and the signer's certificate; deliberately no signing time.
pub fn signed_attributes(
    document_digest: &[u8; 32],
    chain: &Chain,
) -> Result<SetOfVec<Attribute>, SigningError> {
    let leaf = chain.leaf();
    let signing_certificate = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            cert_hash: OctetString::new(Sha256::digest(chain.leaf_der()).to_vec())?,
            issuer_serial: IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(
                    leaf.tbs_certificate.issuer.clone(),
                )],
                serial_number: leaf.tbs_certificate.serial_number.clone(),
            },
        }],
    };
    Ok(SetOfVec::try_from(vec![
        attribute(ID_CONTENT_TYPE, Any::encode_from(&ID_DATA)?)?,
        attribute(
            ID_MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(document_digest.to_vec())?)?,
        )?,
        attribute(
            ID_SIGNING_CERTIFICATE_V2,
            Any::encode_from(&signing_certificate)?,
        )?,
    ])?)
}

/// A detached CMS `SignedData` (in its `ContentInfo`) over a document whose
/// SHA-256 is `document_digest`.
pub async fn sign_document<S: Signer>(
    signer: &S,
    document_digest: &[u8; 32],
) -> Result<Vec<u8>, SigningError> {
    let chain = signer.chain();
    let attributes = signed_attributes(document_digest, chain)?;
    let signature = signer.sign(&attributes.to_der()?).await?;
    let leaf = chain.leaf();
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: leaf.tbs_certificate.issuer.clone(),
            serial_number: leaf.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: algorithm(ID_SHA256),
        signed_attrs: Some(attributes),
        signature_algorithm: chain.kind.signature_algorithm(),
        signature: OctetString::new(signature)?,
        unsigned_attrs: None,
    };
    let certificates = chain
        .certificates
        .iter()
        .cloned()
        .map(CertificateChoices::Certificate)
        .collect::<Vec<_>>();
    let signed_data = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![algorithm(ID_SHA256)])?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet(SetOfVec::try_from(certificates)?)),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info])?),
    };
    Ok(ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(&signed_data)?,
    }
    .to_der()?)
}

/// [`sign_document`] with a local key, without a runtime: its future is
/// ready at the first poll.
pub fn sign_document_now(
    signer: &LocalSigner,
    document_digest: &[u8; 32],
) -> Result<Vec<u8>, SigningError> {
    let mut future = std::pin::pin!(sign_document(signer, document_digest));
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(result) => result,
        std::task::Poll::Pending => Err(SigningError::Key("a local signer waited".into())),
    }
}

/// What a CMS signature says about a document, judged against our chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmsCheck {
    /// The signed `messageDigest` equals the digest of the signed bytes.
    pub digest_matches: bool,
    /// The signature over the signed attributes verifies with the signer's
    /// certificate.
    pub signature_verifies: bool,
    /// The signer's certificate is ours (the chain's first).
    pub signer_is_ours: bool,
    /// `signingCertificateV2` names the signer's certificate.
    pub certificate_bound: bool,
}

impl CmsCheck {
    pub fn is_valid(&self) -> bool {
        self.digest_matches
            && self.signature_verifies
            && self.signer_is_ours
            && self.certificate_bound
    }
}

/// Reads a detached CMS signature (trailing zero padding from the PDF's
/// `/Contents` is ignored) and checks it against `document_digest` and our
/// chain. `Err` when it is not a readable CMS `SignedData`.
pub fn check(contents: &[u8], document_digest: &[u8], ours: &Chain) -> Result<CmsCheck, String> {
    let mut reader = der::SliceReader::new(contents).map_err(|e| e.to_string())?;
    let info = ContentInfo::decode(&mut reader).map_err(|e| format!("not CMS: {e}"))?;
    if info.content_type != ID_SIGNED_DATA {
        return Err("not CMS SignedData".into());
    }
    let signed: SignedData = info
        .content
        .decode_as()
        .map_err(|e| format!("not CMS SignedData: {e}"))?;
    let signer = signed
        .signer_infos
        .0
        .iter()
        .next()
        .ok_or("no signer in the signature")?;
    let SignerIdentifier::IssuerAndSerialNumber(sid) = &signer.sid else {
        return Err("the signer is not named by issuer and serial".into());
    };
    let certificate = signed
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .find_map(|choice| match choice {
            CertificateChoices::Certificate(c)
                if c.tbs_certificate.issuer == sid.issuer
                    && c.tbs_certificate.serial_number == sid.serial_number =>
            {
                Some(c)
            }
            _ => None,
        })
        .ok_or("the signer's certificate is not in the signature")?;
    let certificate_der = certificate.to_der().map_err(|e| e.to_string())?;
    let attributes = signer
        .signed_attrs
        .as_ref()
        .ok_or("the signature has no signed attributes")?;
    let value = |oid: ObjectIdentifier| {
        attributes
            .iter()
            .find(|a| a.oid == oid)
            .and_then(|a| a.values.iter().next())
    };
    let digest_matches = value(ID_MESSAGE_DIGEST)
        .and_then(|v| v.decode_as::<OctetString>().ok())
        .is_some_and(|d| d.as_bytes() == document_digest);
    let certificate_hash = Sha256::digest(&certificate_der);
    let certificate_bound = value(ID_SIGNING_CERTIFICATE_V2)
        .and_then(|v| v.decode_as::<SigningCertificateV2>().ok())
        .is_some_and(|s| {
            s.certs
                .first()
                .is_some_and(|c| c.cert_hash.as_bytes() == certificate_hash.as_slice())
        });
    let signed_bytes = attributes.to_der().map_err(|e| e.to_string())?;
    let key = certificate
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    let scheme: Option<&'static dyn aws_lc_rs::signature::VerificationAlgorithm> =
        match signer.signature_algorithm.oid {
            ID_ECDSA_WITH_SHA256 => Some(&aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1),
            ID_SHA256_WITH_RSA => Some(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256),
            // rsaEncryption with the digest algorithm giving the hash.
            ID_RSA_ENCRYPTION if signer.digest_alg.oid == ID_SHA256 => {
                Some(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256)
            }
            _ => None,
        };
    let signature_verifies = scheme.is_some_and(|scheme| {
        aws_lc_rs::signature::UnparsedPublicKey::new(scheme, key)
            .verify(&signed_bytes, signer.signature.as_bytes())
            .is_ok()
    });
    Ok(CmsCheck {
        digest_matches,
        signature_verifies,
        signer_is_ours: certificate_der == ours.leaf_der(),
        certificate_bound,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const TEST_KEY: &str = include_str!("../testdata/signing/signer.key.pem");
    pub const TEST_CHAIN: &[u8] = include_bytes!("../testdata/signing/chain.pem");

    /// Whether the signed attributes carry a signing time (PAdES B-B forbids it).
    fn has_signing_time(contents: &[u8]) -> bool {
        let Ok(mut reader) = der::SliceReader::new(contents) else {
            return false;
        };
        ContentInfo::decode(&mut reader)
            .ok()
            .and_then(|info| info.content.decode_as::<SignedData>().ok())
            .is_some_and(|signed| {
                signed.signer_infos.0.iter().any(|s| {
                    s.signed_attrs
                        .as_ref()
                        .is_some_and(|a| a.iter().any(|a| a.oid == ID_SIGNING_TIME))
                })
            })
    }

    pub fn test_signer() -> LocalSigner {
        LocalSigner::from_pem(TEST_KEY, TEST_CHAIN).expect("test key and chain")
    }

    pub fn test_rsa_signer() -> LocalSigner {
        LocalSigner::from_pem(
            include_str!("../testdata/signing/signer-rsa.key.pem"),
            include_bytes!("../testdata/signing/chain-rsa.pem"),
        )
        .expect("test RSA key and chain")
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_signature_checks_against_its_digest_and_our_chain_only() {
        for (signer, kind) in [
            (test_signer(), KeyKind::EcdsaP256),
            (test_rsa_signer(), KeyKind::Rsa),
        ] {
            assert_eq!(signer.chain().key_kind(), kind);
            checks_against_digest_and_chain(&signer);
        }
    }

    fn checks_against_digest_and_chain(signer: &LocalSigner) {
        let digest: [u8; 32] = Sha256::digest(b"the signed bytes").into();
        let cms = block_on(sign_document(signer, &digest)).unwrap();
        // Padding as in a PDF's /Contents hole.
        let mut padded = cms.clone();
        padded.resize(cms.len() + 500, 0);
        let good = check(&padded, &digest, signer.chain()).unwrap();
        assert!(good.is_valid(), "{good:?}");
        assert!(!has_signing_time(&cms));

        let other_digest = Sha256::digest(b"other bytes");
        let tampered = check(&cms, &other_digest, signer.chain()).unwrap();
        assert!(!tampered.digest_matches && tampered.signature_verifies);
        assert!(!tampered.is_valid());

        // A flipped byte inside the signature value breaks it.
        let mut broken = cms.clone();
        let at = broken.len() - 10;
        broken[at] ^= 0x01;
        let result = check(&broken, &digest, signer.chain());
        assert!(
            result.map_or(true, |c| !c.signature_verifies),
            "flipped signature"
        );

        // Judged against another chain (the CA alone), the signer is not ours.
        let ca_only = Chain::from_pem(include_bytes!("../testdata/signing/ca.pem")).unwrap();
        let foreign = check(&cms, &digest, &ca_only).unwrap();
        assert!(!foreign.signer_is_ours && foreign.signature_verifies);
        assert!(check(b"not cms at all", &digest, signer.chain()).is_err());
    }

    #[test]
    fn the_key_must_match_the_certificate_and_capacity_covers_the_chain() {
        let ca_only = include_bytes!("../testdata/signing/ca.pem");
        assert!(matches!(
            LocalSigner::from_pem(TEST_KEY, ca_only),
            Err(SigningError::Key(_))
        ));
        // An RSA key with the P-256 signer's chain.
        assert!(LocalSigner::from_pem(
            include_str!("../testdata/signing/signer-rsa.key.pem"),
            TEST_CHAIN
        )
        .is_err());
        assert!(matches!(
            Chain::from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            Err(SigningError::Chain(_))
        ));
        let signer = test_signer();
        let digest = [7u8; 32];
        let cms = block_on(sign_document(&signer, &digest)).unwrap();
        assert!(cms.len() < signer.chain().contents_capacity());
        assert!(cms.len() > signer.chain().leaf_der().len());
    }
}
