//! Identifiers: accounts, and the prefixed ULIDs of everything we create.

use crate::error::{codes, Error, Result};

/// The quota account a request acts for: a portal user's subject, a
/// reseller's pool (`reseller:{id}`) or a customer (`customer:{id}`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(String);

impl AccountId {
    /// Accepts 1-128 characters of `A-Z a-z 0-9 _ . @ : | -` (Cognito subjects,
    /// e-mail-like ids); anything else could not be a key in our table.
    pub fn parse(raw: &str) -> Result<Self> {
        let ok = (1..=128).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.@:|-".contains(&b));
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(Error::unauthenticated(
                codes::INVALID_TOKEN,
                "token subject is not a valid account id",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new id: `prefix` and a ULID (time-ordered, so ids sort by creation).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", ulid::Ulid::new())
}

/// A random token (time-free), for keys that only need to be unique.
pub fn nonce() -> String {
    ulid::Ulid::new().to_string()
}

/// Whether `id` is one of our ids: `prefix` and a 26-character ULID
/// (checked before any read, so a malformed id costs nothing).
pub fn is_id(id: &str, prefix: &str) -> bool {
    id.len() == prefix.len() + 26
        && id.starts_with(prefix)
        && id[prefix.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
}

/// Hex SHA-256 of some bytes (the hash a serial is bound to, an API key's record).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_safe_table_keys() {
        assert!(AccountId::parse("3f0c2a1e-9b7d-4c3e-8f00-1234567890ab").is_ok());
        assert!(AccountId::parse("reseller:rsl_1").is_ok());
        for bad in ["", "../../etc#passwd", "a b", &"a".repeat(129)] {
            let err = AccountId::parse(bad).unwrap_err();
            assert_eq!(err.code(), codes::INVALID_TOKEN, "{bad:?}");
        }
    }

    #[test]
    fn ids_have_one_shape() {
        let id = new_id("ord_");
        assert!(is_id(&id, "ord_"), "{id}");
        assert!(!is_id("ord_short", "ord_"));
        assert!(!is_id(&id.replace("ord_", "job_"), "ord_"));
        assert!(!is_id("ord_../../../../../../../../../x", "ord_"));
        assert_ne!(new_id("ord_"), new_id("ord_"));
    }
}
