//! Portal users authenticate with a bearer JWT whose `sub` is their account id.
//!
//! The token is verified here, in our code (issuer, audience, expiry and an
//! HS256 signature with the configured secret), so authentication holds on the
//! emulator exactly as on AWS. On AWS an API Gateway JWT authorizer (Cognito)
//! may sit in front as well; see `infra/README.md`.

use jsonwebtoken::{
    decode, encode, errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};

use crate::error::{codes, Error, Result};

pub use meterai_core::AccountId;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    aud: String,
    exp: i64,
    iat: i64,
}

/// Verifies (and, for development, mints) portal tokens.
#[derive(Clone)]
pub struct Authenticator {
    issuer: String,
    audience: String,
    decoding: DecodingKey,
    encoding: EncodingKey,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self {
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            decoding: DecodingKey::from_secret(secret),
            encoding: EncodingKey::from_secret(secret),
        }
    }

    /// Checks an `Authorization` header value and returns the account it names.
    pub fn verify(&self, authorization: Option<&str>) -> Result<AccountId> {
        if authorization.is_none() {
            return Err(Error::unauthenticated(
                codes::UNAUTHENTICATED,
                "missing Authorization header",
            ));
        }
        let token = bearer(authorization).ok_or_else(|| {
            Error::unauthenticated(
                codes::UNAUTHENTICATED,
                "Authorization must be 'Bearer <token>'",
            )
        })?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.leeway = 30;
        let data =
            decode::<Claims>(token, &self.decoding, &validation).map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => {
                    Error::unauthenticated(codes::TOKEN_EXPIRED, "token has expired")
                }
                _ => Error::unauthenticated(codes::INVALID_TOKEN, format!("token rejected: {e}")),
            })?;
        let sub = &data.claims.sub;
        // Reseller pools and customers are accounts of the reseller channel,
        // reachable only with a reseller's API key.
        if meterai_core::resellers::is_reseller_channel(sub) {
            return Err(Error::unauthenticated(
                codes::INVALID_TOKEN,
                "token subject names a reseller-channel account",
            ));
        }
        AccountId::parse(sub)
    }
}

/// Who is calling: a portal user (JWT) or a reseller (API key).
pub use meterai_core::resellers::Caller;

/// The credential of a `Bearer` Authorization header.
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    authorization?
        .strip_prefix("Bearer ")
        .or_else(|| authorization?.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

impl Authenticator {
    /// Issues a token for `subject`, valid for `ttl_seconds` (negative for an
    /// already expired one, which tests use). For development and tests only:
    /// production tokens come from the identity provider.
    pub fn mint(&self, subject: &str, ttl_seconds: i64) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: subject.to_string(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + ttl_seconds,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        Authenticator::new(b"test-secret", "meterai-local", "meterai-api")
    }

    #[test]
    fn a_minted_token_verifies_to_its_subject() {
        let token = auth().mint("acct-1", 300);
        let account = auth().verify(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(account.as_str(), "acct-1");
    }

    #[test]
    fn missing_and_malformed_headers_are_unauthenticated() {
        for header in [None, Some(""), Some("Basic abc"), Some("Bearer ")] {
            let err = auth().verify(header).unwrap_err();
            assert_eq!(err.code(), codes::UNAUTHENTICATED, "{header:?}");
            assert_eq!(err.kind(), meterai_core::ErrorKind::Unauthenticated);
        }
    }

    #[test]
    fn expired_token_says_so() {
        let token = auth().mint("acct-1", -3600);
        let err = auth().verify(Some(&format!("Bearer {token}"))).unwrap_err();
        assert_eq!(err.code(), codes::TOKEN_EXPIRED);
    }

    #[test]
    fn forged_wrong_issuer_or_audience_is_invalid() {
        let forged = Authenticator::new(b"another-secret", "meterai-local", "meterai-api")
            .mint("acct-1", 300);
        let other_issuer =
            Authenticator::new(b"test-secret", "evil", "meterai-api").mint("acct-1", 300);
        let other_audience =
            Authenticator::new(b"test-secret", "meterai-local", "other").mint("acct-1", 300);
        for token in [
            forged,
            other_issuer,
            other_audience,
            "not.a.jwt".to_string(),
        ] {
            let err = auth().verify(Some(&format!("Bearer {token}"))).unwrap_err();
            assert_eq!(err.code(), codes::INVALID_TOKEN, "{token}");
        }
    }

    #[test]
    fn subject_must_be_a_safe_account_id() {
        let token = auth().mint("../../etc#passwd", 300);
        let err = auth().verify(Some(&format!("Bearer {token}"))).unwrap_err();
        assert_eq!(err.code(), codes::INVALID_TOKEN);
        let pool = auth().mint("reseller:rsl_1", 300);
        let err = auth().verify(Some(&format!("Bearer {pool}"))).unwrap_err();
        assert_eq!(
            err.code(),
            codes::INVALID_TOKEN,
            "a token cannot name a pool"
        );
    }
}
