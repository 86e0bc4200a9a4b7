//! Who is calling.
//!
//! API Gateway runs our Lambda REQUEST authorizer (`routes::authorizer`)
//! before any authenticated route: it accepts a Cognito **access token**
//! (RS256, checked against the user pool's published keys: issuer, client,
//! expiry, not-before, `token_use`) or a reseller **API key** (`mk_…`), and
//! hands the caller to the function in the request's authorizer context.
//! Functions read the caller from that context ([`caller_of`]), never from
//! the `Authorization` header: a route without the authorizer has no caller.

use std::collections::HashMap;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, errors::ErrorKind, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{codes, Dependency, Error, Result};

pub use meterai_core::resellers::{Caller, ResellerCaller};
pub use meterai_core::AccountId;

/// The user pool whose access tokens are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPool {
    /// `https://cognito-idp.{region}.amazonaws.com/{pool id}`: the tokens' `iss`.
    pub issuer: String,
    /// The app client the portal signs in with: the access tokens' `client_id`.
    pub client_id: String,
    /// Where the pool publishes its signing keys.
    pub jwks_url: String,
}

impl UserPool {
    /// The pool `pool_id` of `region`. Its keys are published under the
    /// issuer, except on an emulator (`endpoint`), which serves them itself.
    pub fn new(region: &str, pool_id: &str, client_id: &str, endpoint: Option<&str>) -> Self {
        let issuer = format!("https://cognito-idp.{region}.amazonaws.com/{pool_id}");
        let jwks_url = match endpoint.map(|e| e.trim_end_matches('/')) {
            Some(endpoint) if !endpoint.is_empty() => {
                format!("{endpoint}/{pool_id}/.well-known/jwks.json")
            }
            _ => format!("{issuer}/.well-known/jwks.json"),
        };
        Self {
            issuer,
            client_id: client_id.to_string(),
            jwks_url,
        }
    }
}

#[derive(Debug, Deserialize)]
struct AccessClaims {
    sub: String,
    token_use: String,
    #[serde(default)]
    client_id: Option<String>,
    /// With e-mail or phone as the sign-in name, Cognito's user name is the
    /// user's immutable id, the same as `sub`.
    #[serde(default)]
    username: Option<String>,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::unauthenticated(codes::INVALID_TOKEN, message)
}

/// The key id a token's header names (`kid`), for finding its key. A token
/// whose header does not parse, or names an algorithm other than RS256
/// (`none` included), is refused here.
pub fn key_id(token: &str) -> Result<String> {
    let header = decode_header(token).map_err(|_| invalid("the token's header is not valid"))?;
    if header.alg != Algorithm::RS256 {
        return Err(invalid("the token is not signed with RS256"));
    }
    header
        .kid
        .ok_or_else(|| invalid("the token names no signing key"))
}

/// Verifies a Cognito access token with `key` (the pool's key named by its
/// `kid`) and returns the account it names: the user's `sub`.
pub fn verify_access_token(pool: &UserPool, token: &str, key: &DecodingKey) -> Result<AccountId> {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[&pool.issuer]);
    // Access tokens carry `client_id`, not `aud` (checked below).
    validation.validate_aud = false;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "sub", "iss"]);
    validation.leeway = 5;
    let claims = decode::<AccessClaims>(token, key, &validation)
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => {
                Error::unauthenticated(codes::TOKEN_EXPIRED, "token has expired")
            }
            ErrorKind::ImmatureSignature => invalid("token is not valid yet"),
            ErrorKind::InvalidIssuer => invalid("token is from another issuer"),
            ErrorKind::InvalidSignature => invalid("token signature does not verify"),
            _ => invalid("token rejected"),
        })?
        .claims;
    if claims.token_use != "access" {
        return Err(invalid(
            "send the access token (not the ID or refresh token)",
        ));
    }
    // Defence in depth: a `sub` that is not the user's own id (it never
    // changes in Cognito) is not trusted.
    if claims.username.as_deref().is_some_and(|u| u != claims.sub) {
        return Err(invalid("token subject does not match its user"));
    }
    if claims.client_id.as_deref() != Some(pool.client_id.as_str()) {
        return Err(invalid("token was issued to another client"));
    }
    // Reseller pools and customers are accounts of the reseller channel,
    // reachable only with a reseller's API key.
    if meterai_core::resellers::is_reseller_channel(&claims.sub) {
        return Err(invalid("token subject names a reseller-channel account"));
    }
    AccountId::parse(&claims.sub).map_err(|_| invalid("token subject is not an account id"))
}

/// The pool's signing keys, read once per cold start and again (at most
/// once per `refresh_after`) when a token names a key not in the set.
pub struct Keys {
    pool: UserPool,
    http: reqwest::Client,
    refresh_after: std::time::Duration,
    max_age: std::time::Duration,
    fetch_timeout: std::time::Duration,
    cached: tokio::sync::Mutex<Option<(std::time::Instant, JwkSet)>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl Keys {
    pub fn new(pool: UserPool, fetch_timeout: std::time::Duration) -> Self {
        Self {
            pool,
            http: reqwest::Client::new(),
            refresh_after: std::time::Duration::from_secs(60),
            max_age: KEY_SET_MAX_AGE,
            fetch_timeout,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    pub fn pool(&self) -> &UserPool {
        &self.pool
    }

    /// The account a bearer access token names, or why not.
    pub async fn verify(&self, token: &str) -> Result<AccountId> {
        let kid = key_id(token)?;
        let key = self.key(&kid).await?;
        verify_access_token(&self.pool, token, &key)
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey> {
        let mut cached = self.cached.lock().await;
        let age = cached.as_ref().map(|(read, _)| read.elapsed());
        let known = cached.as_ref().and_then(|(_, set)| set.find(kid)).cloned();
        let set = match (known, age) {
            // A known key, read less than an hour ago.
            (Some(jwk), Some(age)) if age < self.max_age => {
                return DecodingKey::from_jwk(&jwk)
                    .map_err(|_| invalid("signing key is not usable"))
            }
            // A known key, read long ago: read the set again, so a key the
            // pool has retired stops being trusted. If the pool cannot be
            // reached, the key we had still holds.
            (Some(jwk), _) => match self.fetch().await {
                Ok(set) => set,
                Err(e) => {
                    tracing::warn!(error = %e, "signing keys not re-read; the cached ones hold");
                    return DecodingKey::from_jwk(&jwk)
                        .map_err(|_| invalid("signing key is not usable"));
                }
            },
            // An unknown key: the pool may have a new one, asked at most once
            // a minute.
            (None, Some(age)) if age < self.refresh_after => {
                return Err(invalid("token names an unknown signing key"))
            }
            (None, _) => self.fetch().await?,
        };
        let key = set.find(kid).map(DecodingKey::from_jwk);
        *cached = Some((std::time::Instant::now(), set));
        match key {
            Some(Ok(key)) => Ok(key),
            Some(Err(_)) => Err(invalid("signing key is not usable")),
            None => Err(invalid("token names an unknown signing key")),
        }
    }

    /// The pool's key set, read now.
    async fn fetch(&self) -> Result<JwkSet> {
        let body =
            meterai_aws::identity::fetch_jwks(&self.http, &self.pool.jwks_url, self.fetch_timeout)
                .await?;
        serde_json::from_slice(&body).map_err(|e| {
            Error::unavailable(
                Dependency::IdentityProvider,
                format!("JWKS is not a key set: {e}"),
            )
        })
    }
}

/// How long a key set read from the pool is trusted before it is read
/// again (a retired key is refused after at most this long).
const KEY_SET_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// The credential of a `Bearer` Authorization header.
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?;
    // The scheme is case-insensitive (RFC 9110).
    let (scheme, credential) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credential.trim())
        .filter(|t| !t.is_empty())
}

/// What the authorizer hands the function: who the caller is, as the
/// string-only context API Gateway carries (`requestContext.authorizer.lambda`).
pub fn context_of(caller: &Caller) -> HashMap<String, Value> {
    let pairs: Vec<(&str, &str)> = match caller {
        Caller::Portal(account) => vec![("caller", "portal"), ("account", account.as_str())],
        Caller::Reseller(reseller) => vec![
            ("caller", "reseller"),
            ("reseller_id", reseller.reseller_id.as_str()),
            ("name", reseller.name.as_str()),
        ],
    };
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect()
}

/// The context of a refused credential. API Gateway would answer a denial
/// with a bare `403 {"message":"Forbidden"}`; instead the function answers
/// `401` with our error body and its stable code (`TOKEN_EXPIRED` tells a
/// client to refresh, `INVALID_TOKEN` to sign in again) before any use case
/// runs or any data is read.
pub fn refused_context(refusal: &Error) -> HashMap<String, Value> {
    HashMap::from([
        ("caller".to_string(), Value::from("refused")),
        ("code".to_string(), Value::from(refusal.code())),
        ("message".to_string(), Value::from(refusal.message())),
    ])
}

/// The context of a request the authorizer let through although it could
/// not decide (the user pool's keys or the table were unreachable): the
/// function answers 503, so a user is never told their sign-in is wrong
/// because of our outage.
pub fn undecided_context() -> HashMap<String, Value> {
    HashMap::from([("caller".to_string(), Value::from("undecided"))])
}

/// The caller the authorizer put in `context`. No context (a route deployed
/// without the authorizer) is no caller: fail closed.
pub fn caller_from_context(context: Option<&HashMap<String, Value>>) -> Result<Caller> {
    let text = |name: &str| context.and_then(|c| c.get(name)).and_then(Value::as_str);
    match text("caller") {
        Some("portal") => text("account")
            .and_then(|a| AccountId::parse(a).ok())
            .map(Caller::Portal)
            .ok_or_else(|| Error::Misconfigured("authorizer context lacks the account".into())),
        Some("reseller") => text("reseller_id")
            .map(|id| {
                Caller::Reseller(ResellerCaller {
                    reseller_id: id.to_string(),
                    name: text("name").unwrap_or_default().to_string(),
                })
            })
            .ok_or_else(|| Error::Misconfigured("authorizer context lacks the reseller".into())),
        Some("refused") => {
            let code = [
                codes::TOKEN_EXPIRED,
                codes::INVALID_TOKEN,
                codes::INVALID_API_KEY,
            ]
            .into_iter()
            .find(|known| text("code") == Some(*known))
            .unwrap_or(codes::UNAUTHENTICATED);
            Err(Error::unauthenticated(
                code,
                text("message").unwrap_or("the credential was refused"),
            ))
        }
        Some("undecided") => Err(Error::unavailable(
            Dependency::IdentityProvider,
            "the authorizer could not check the credential",
        )),
        _ => Err(Error::unauthenticated(
            codes::UNAUTHENTICATED,
            "this route needs 'Authorization: Bearer <access token or API key>'",
        )),
    }
}

/// The caller of an API Gateway request, from its authorizer context.
pub fn caller_of(request: &lambda_http::Request) -> Result<Caller> {
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt;
    let context = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => {
            context.authorizer.as_ref().map(|a| &a.fields)
        }
        _ => None,
    };
    caller_from_context(context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};

    const POOL_KEY: &[u8] = include_bytes!("../testdata/identity/pool.key.der");
    const OTHER_KEY: &[u8] = include_bytes!("../testdata/identity/other.key.der");
    const JWKS: &str = include_str!("../testdata/identity/jwks.json");

    fn pool() -> UserPool {
        UserPool::new("ap-southeast-3", "ap-southeast-3_Pool", "client-1", None)
    }

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    fn claims() -> serde_json::Value {
        serde_json::json!({
            "sub": "5f0c3a52-2b7e-4d43-9a54-8c9b0c3f1e77",
            "iss": pool().issuer,
            "client_id": "client-1",
            "token_use": "access",
            "iat": now(),
            "exp": now() + 3600,
        })
    }

    fn sign(claims: &serde_json::Value, key: &[u8], kid: &str) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_string());
        encode(&header, claims, &EncodingKey::from_rsa_der(key)).unwrap()
    }

    fn check(token: &str) -> Result<AccountId> {
        let set: JwkSet = serde_json::from_str(JWKS).unwrap();
        let kid = key_id(token)?;
        let jwk = set.find(&kid).ok_or_else(|| invalid("unknown key"))?;
        verify_access_token(&pool(), token, &DecodingKey::from_jwk(jwk).unwrap())
    }

    fn with(change: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut c = claims();
        change(&mut c);
        sign(&c, POOL_KEY, "pool-key-1")
    }

    /// A pool's JWKS endpoint on loopback serving whatever `jwks` holds
    /// ("" = down: the connection is closed without an answer).
    async fn jwks_server(jwks: std::sync::Arc<std::sync::Mutex<String>>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                let body = jwks.lock().unwrap().clone();
                if body.is_empty() {
                    continue;
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        format!("http://{address}")
    }

    #[tokio::test]
    async fn a_key_the_pool_retires_stops_being_trusted_but_an_outage_does_not_lock_users_out() {
        let served = std::sync::Arc::new(std::sync::Mutex::new(JWKS.to_string()));
        let endpoint = jwks_server(served.clone()).await;
        let pool = UserPool::new(
            "ap-southeast-3",
            "ap-southeast-3_Pool",
            "client-1",
            Some(&endpoint),
        );
        let mut keys = Keys::new(pool, std::time::Duration::from_secs(2));
        keys.max_age = std::time::Duration::ZERO; // every use re-reads the set
        let token = with(|_| {});
        assert!(keys.verify(&token).await.is_ok());
        // The pool cannot be reached: the key read before still holds.
        *served.lock().unwrap() = String::new();
        assert!(keys.verify(&token).await.is_ok());
        // The pool retired the key: refused.
        *served.lock().unwrap() = r#"{"keys":[]}"#.to_string();
        let err = keys.verify(&token).await.unwrap_err();
        assert_eq!(err.code(), codes::INVALID_TOKEN);
    }

    #[test]
    fn the_pools_access_token_names_its_user() {
        let account = check(&with(|_| {})).unwrap();
        assert_eq!(account.as_str(), "5f0c3a52-2b7e-4d43-9a54-8c9b0c3f1e77");
    }

    #[test]
    fn expired_tokens_say_so() {
        let err = check(&with(|c| c["exp"] = (now() - 600).into())).unwrap_err();
        assert_eq!(err.code(), codes::TOKEN_EXPIRED);
    }

    #[test]
    fn every_forgery_and_misuse_is_an_invalid_token() {
        let id_token = with(|c| {
            c["token_use"] = "id".into();
            c["aud"] = "client-1".into();
            c.as_object_mut().unwrap().remove("client_id");
        });
        let other_client = with(|c| c["client_id"] = "client-2".into());
        let other_pool = with(|c| {
            c["iss"] =
                "https://cognito-idp.ap-southeast-3.amazonaws.com/ap-southeast-3_Other".into()
        });
        let not_yet = with(|c| c["nbf"] = (now() + 600).into());
        let other_key = sign(&claims(), OTHER_KEY, "pool-key-1");
        let unknown_kid = sign(&claims(), POOL_KEY, "rotated-away");
        let reseller_pool = with(|c| c["sub"] = "reseller:rsl_1".into());
        let bad_subject = with(|c| c["sub"] = "../../etc#passwd".into());
        let swapped_subject = with(|c| {
            c["username"] = "5f0c3a52-2b7e-4d43-9a54-8c9b0c3f1e77".into();
            c["sub"] = "0b1c2d3e-0000-4000-8000-000000000000".into();
        });
        // The payload edited after signing: the signature no longer covers it.
        let good = with(|_| {});
        let parts: Vec<&str> = good.split('.').collect();
        let mut edited = claims();
        edited["sub"] = "someone-else".into();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            base64url(serde_json::to_vec(&edited).unwrap()),
            parts[2]
        );
        // `alg: none`, no signature.
        let unsigned = format!(
            "{}.{}.",
            base64url(br#"{"alg":"none","typ":"JWT","kid":"pool-key-1"}"#.to_vec()),
            base64url(serde_json::to_vec(&claims()).unwrap())
        );
        // HS256 with the public key as the secret (key confusion).
        let hs256 = format!(
            "{}.{}.AAAA",
            base64url(br#"{"alg":"HS256","typ":"JWT","kid":"pool-key-1"}"#.to_vec()),
            base64url(serde_json::to_vec(&claims()).unwrap())
        );
        for (name, token) in [
            ("id token", id_token),
            ("other client", other_client),
            ("other pool", other_pool),
            ("not yet valid", not_yet),
            ("signed by another key", other_key),
            ("unknown key id", unknown_kid),
            ("reseller pool subject", reseller_pool),
            ("unsafe subject", bad_subject),
            ("subject not its user's", swapped_subject),
            ("tampered payload", tampered),
            ("alg none", unsigned),
            ("hs256", hs256),
            ("not a jwt", "not.a.jwt".to_string()),
        ] {
            let err = check(&token).unwrap_err();
            assert_eq!(err.code(), codes::INVALID_TOKEN, "{name}");
            assert_eq!(
                err.kind(),
                meterai_core::ErrorKind::Unauthenticated,
                "{name}"
            );
        }
    }

    fn base64url(bytes: Vec<u8>) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn the_jwks_url_is_the_issuers_on_aws_and_the_emulators_locally() {
        assert_eq!(
            pool().jwks_url,
            "https://cognito-idp.ap-southeast-3.amazonaws.com/ap-southeast-3_Pool/.well-known/jwks.json"
        );
        let local = UserPool::new(
            "us-east-1",
            "us-east-1_X",
            "c",
            Some("http://127.0.0.1:4566/"),
        );
        assert_eq!(
            local.jwks_url,
            "http://127.0.0.1:4566/us-east-1_X/.well-known/jwks.json"
        );
        assert_eq!(
            local.issuer,
            "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_X"
        );
    }

    #[test]
    fn the_context_carries_the_caller_both_ways() {
        let portal = Caller::Portal(AccountId::parse("acct-1").unwrap());
        let reseller = Caller::Reseller(ResellerCaller {
            reseller_id: "rsl_1".into(),
            name: "Toko".into(),
        });
        for caller in [portal, reseller] {
            let back = caller_from_context(Some(&context_of(&caller))).unwrap();
            assert_eq!(back.account(), caller.account());
        }
    }

    #[test]
    fn no_or_foreign_context_is_no_caller() {
        let none = caller_from_context(None).unwrap_err();
        assert_eq!(none.code(), codes::UNAUTHENTICATED);
        let forged = HashMap::from([("caller".to_string(), Value::from("admin"))]);
        assert_eq!(
            caller_from_context(Some(&forged)).unwrap_err().code(),
            codes::UNAUTHENTICATED
        );
        let expired = Error::unauthenticated(codes::TOKEN_EXPIRED, "token has expired");
        let refused = caller_from_context(Some(&refused_context(&expired))).unwrap_err();
        assert_eq!(refused.code(), codes::TOKEN_EXPIRED);
        assert_eq!(refused.kind(), meterai_core::ErrorKind::Unauthenticated);
        let mut made_up = refused_context(&expired);
        made_up.insert("code".into(), Value::from("ANYTHING"));
        let refused = caller_from_context(Some(&made_up)).unwrap_err();
        assert_eq!(refused.code(), codes::UNAUTHENTICATED);
        let undecided = caller_from_context(Some(&undecided_context())).unwrap_err();
        assert_eq!(undecided.code(), codes::DEPENDENCY_UNAVAILABLE);
    }

    #[test]
    fn bearer_reads_the_credential() {
        assert_eq!(bearer(Some("Bearer abc ")), Some("abc"));
        assert_eq!(bearer(Some("bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("BEARER abc")), Some("abc"));
        for header in [None, Some(""), Some("Basic abc"), Some("Bearer ")] {
            assert_eq!(bearer(header), None, "{header:?}");
        }
    }
}
