//! Webhook signatures in the Standard Webhooks shape, both ways.
//!
//! A message carries `webhook-id`, `webhook-timestamp` (Unix seconds) and
//! `webhook-signature`: space-separated `v1,<base64 HMAC-SHA256>` entries over
//! `{id}.{timestamp}.{body}`, keyed with the bytes of a `whsec_<base64>`
//! secret. Verification accepts any listed `v1` entry (so a secret can be
//! rotated), compares in constant time, refuses an empty signature, and refuses
//! a timestamp more than [`TOLERANCE_SECONDS`] from now (a replay window).

use base64::Engine;
use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

use crate::error::{codes, Error, Result};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// How far a message's timestamp may be from our clock.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// A `whsec_` secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// 32 fresh random bytes.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's CSPRNG is available");
        Secret(bytes)
    }

    /// Reads `whsec_<base64>`.
    pub fn parse(text: &str) -> Option<Self> {
        let encoded = text.strip_prefix("whsec_")?;
        let bytes = B64.decode(encoded).ok()?;
        (bytes.len() >= 16).then_some(Secret(bytes))
    }

    /// The secret as it is shown to the reseller, once.
    pub fn expose(&self) -> String {
        format!("whsec_{}", B64.encode(&self.0))
    }

    /// The `v1,<base64>` signature of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", B64.encode(self.mac(id, timestamp, body)))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }
}

/// The three headers of a signed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// A message whose signature and timestamp were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub id: String,
    pub timestamp: i64,
}

/// Checks a message against `secret` at `now` (Unix seconds).
pub fn verify(secret: &Secret, headers: &Headers<'_>, body: &[u8], now: i64) -> Result<Verified> {
    let (id, timestamp, signature) = match (headers.id, headers.timestamp, headers.signature) {
        (Some(i), Some(t), Some(s)) if !i.is_empty() && i.len() <= 256 && !s.trim().is_empty() => {
            (i, t, s)
        }
        _ => {
            return Err(Error::invalid(
                codes::WEBHOOK_HEADERS_MISSING,
                "webhook-id, webhook-timestamp and webhook-signature are required",
            ))
        }
    };
    let timestamp: i64 = timestamp.trim().parse().map_err(|_| {
        Error::invalid(
            codes::WEBHOOK_TIMESTAMP_OUT_OF_RANGE,
            "webhook-timestamp must be Unix seconds",
        )
    })?;
    // abs_diff: the distance between a sender's number and ours cannot
    // overflow (with plain subtraction, timestamp = now + i64::MIN wrapped
    // into the window).
    if now.abs_diff(timestamp) > TOLERANCE_SECONDS.unsigned_abs() {
        return Err(Error::unauthenticated(
            codes::WEBHOOK_TIMESTAMP_OUT_OF_RANGE,
            "webhook-timestamp is more than 5 minutes from now",
        ));
    }
    let expected = secret.mac(id, timestamp, body);
    let matches = signature
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, encoded)| B64.decode(encoded).ok())
        .filter(|given| !given.is_empty())
        .any(|given| bool::from(given.ct_eq(&expected)));
    if !matches {
        return Err(Error::unauthenticated(
            codes::WEBHOOK_SIGNATURE_INVALID,
            "no webhook-signature entry matches",
        ));
    }
    Ok(Verified {
        id: id.to_string(),
        timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of the Standard Webhooks specification's test vectors.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1614265330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> Headers<'a> {
        Headers {
            id: Some(id),
            timestamp: Some(ts),
            signature: Some(sig),
        }
    }

    #[test]
    fn signs_like_the_specification() {
        let secret = Secret::parse(SPEC_SECRET).unwrap();
        assert_eq!(secret.sign(SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIGNATURE);
        let ts = SPEC_TS.to_string();
        let ok = verify(
            &secret,
            &headers(SPEC_ID, &ts, SPEC_SIGNATURE),
            SPEC_BODY,
            SPEC_TS + 10,
        );
        assert_eq!(ok.unwrap().id, SPEC_ID);
        // Several entries, one of them right (a rotation in progress).
        let listed = format!("v1,Zm9v {SPEC_SIGNATURE} v2,abc");
        assert!(verify(&secret, &headers(SPEC_ID, &ts, &listed), SPEC_BODY, SPEC_TS).is_ok());
    }

    #[test]
    fn forged_empty_stale_and_changed_messages_are_refused() {
        let secret = Secret::parse(SPEC_SECRET).unwrap();
        let ts = SPEC_TS.to_string();
        let code = |h: Headers<'_>, body: &[u8], now: i64| {
            verify(&secret, &h, body, now).unwrap_err().code()
        };
        assert_eq!(
            code(
                headers(SPEC_ID, &ts, SPEC_SIGNATURE),
                b"{\"test\": 1}",
                SPEC_TS
            ),
            codes::WEBHOOK_SIGNATURE_INVALID
        );
        assert_eq!(
            code(
                headers("msg_other", &ts, SPEC_SIGNATURE),
                SPEC_BODY,
                SPEC_TS
            ),
            codes::WEBHOOK_SIGNATURE_INVALID
        );
        // An empty signature, or an entry that decodes to nothing, never matches.
        assert_eq!(
            code(headers(SPEC_ID, &ts, "v1,"), SPEC_BODY, SPEC_TS),
            codes::WEBHOOK_SIGNATURE_INVALID
        );
        assert_eq!(
            code(headers(SPEC_ID, &ts, " "), SPEC_BODY, SPEC_TS),
            codes::WEBHOOK_HEADERS_MISSING
        );
        let other = Secret::generate().sign(SPEC_ID, SPEC_TS, SPEC_BODY);
        assert_eq!(
            code(headers(SPEC_ID, &ts, &other), SPEC_BODY, SPEC_TS),
            codes::WEBHOOK_SIGNATURE_INVALID
        );
        // A timestamp whose distance from now does not fit an i64 (the
        // subtraction would wrap into the window): refused, not applied.
        // now - (now + i64::MIN) is 2^63, which wraps to i64::MIN, whose
        // wrapping abs() is itself: the one value the old check let through
        // in a release build (where these tests run).
        for far in [
            SPEC_TS.wrapping_add(i64::MIN),
            i64::MIN,
            i64::MIN + 1,
            SPEC_TS.wrapping_sub(i64::MAX),
            i64::MAX,
        ] {
            let far_ts = far.to_string();
            let signed = secret.sign(SPEC_ID, far, SPEC_BODY);
            assert_eq!(
                code(headers(SPEC_ID, &far_ts, &signed), SPEC_BODY, SPEC_TS),
                codes::WEBHOOK_TIMESTAMP_OUT_OF_RANGE,
                "{far}"
            );
        }
        // Replayed later than the tolerance, or from the future.
        assert_eq!(
            code(
                headers(SPEC_ID, &ts, SPEC_SIGNATURE),
                SPEC_BODY,
                SPEC_TS + 301
            ),
            codes::WEBHOOK_TIMESTAMP_OUT_OF_RANGE
        );
        assert_eq!(
            code(
                headers(SPEC_ID, &ts, SPEC_SIGNATURE),
                SPEC_BODY,
                SPEC_TS - 301
            ),
            codes::WEBHOOK_TIMESTAMP_OUT_OF_RANGE
        );
        let missing = Headers {
            id: Some(SPEC_ID),
            timestamp: None,
            signature: Some(SPEC_SIGNATURE),
        };
        assert_eq!(
            code(missing, SPEC_BODY, SPEC_TS),
            codes::WEBHOOK_HEADERS_MISSING
        );
    }

    #[test]
    fn secrets_round_trip_and_short_ones_are_refused() {
        let secret = Secret::generate();
        assert_eq!(Secret::parse(&secret.expose()), Some(secret.clone()));
        assert!(secret.expose().starts_with("whsec_"));
        assert_eq!(Secret::parse("whsec_AAAA"), None);
        assert_eq!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), None);
        assert_eq!(format!("{secret:?}"), "Secret(..)");
    }
}
