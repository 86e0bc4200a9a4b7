//! Resellers: their quota pools, their customers' accounts and their API keys.
//!
//! The pool is the quota account `reseller:{id}`, a customer's is
//! `customer:{id}`; portal tokens may not name either. API keys are `mk_` and
//! 48 hex characters (192 random bits), shown once and stored as SHA-256.

use crate::ids::AccountId;

pub const POOL_PREFIX: &str = "reseller:";
pub const CUSTOMER_PREFIX: &str = "customer:";
pub const KEY_PREFIX: &str = "mk_";
/// Hex characters of randomness after the key prefix.
pub const KEY_HEX_LEN: usize = 48;

/// A reseller authenticated by one of its API keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResellerCaller {
    pub reseller_id: String,
    pub name: String,
}

impl ResellerCaller {
    /// The reseller's quota pool.
    pub fn pool(&self) -> AccountId {
        pool_account(&self.reseller_id)
    }
}

pub fn pool_account(reseller_id: &str) -> AccountId {
    AccountId::parse(&format!("{POOL_PREFIX}{reseller_id}")).expect("reseller ids are valid")
}

pub fn customer_account(customer_id: &str) -> AccountId {
    AccountId::parse(&format!("{CUSTOMER_PREFIX}{customer_id}")).expect("customer ids are valid")
}

/// Whether an account belongs to the reseller channel (a pool or a customer),
/// which only a reseller's API key may act for.
pub fn is_reseller_channel(account: &str) -> bool {
    account.starts_with(POOL_PREFIX) || account.starts_with(CUSTOMER_PREFIX)
}

/// Whether a bearer credential is a reseller API key (rather than a JWT).
pub fn is_api_key(credential: &str) -> bool {
    credential.starts_with(KEY_PREFIX)
}

/// Whether a credential has an API key's exact shape (checked before any read).
pub fn is_well_formed_api_key(credential: &str) -> bool {
    credential.len() == KEY_PREFIX.len() + KEY_HEX_LEN && is_api_key(credential)
}

/// A fresh API key.
pub fn new_api_key() -> String {
    let mut bytes = [0u8; KEY_HEX_LEN / 2];
    getrandom::fill(&mut bytes).expect("the operating system's CSPRNG is available");
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_and_keys_have_distinct_shapes() {
        assert_eq!(pool_account("rsl_1").as_str(), "reseller:rsl_1");
        assert_eq!(customer_account("cus_1").as_str(), "customer:cus_1");
        assert!(is_reseller_channel("reseller:rsl_1") && is_reseller_channel("customer:c"));
        assert!(!is_reseller_channel("acct-1"));
        assert!(is_api_key("mk_0123"));
        assert!(!is_api_key("eyJhbGciOi"));
        let key = new_api_key();
        assert!(is_well_formed_api_key(&key), "{key}");
        assert_ne!(key, new_api_key());
        assert!(!is_well_formed_api_key("mk_0123"));
    }
}
