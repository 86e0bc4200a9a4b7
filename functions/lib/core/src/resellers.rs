//! Resellers: their quota pools, their customers' accounts and their API keys.
//!
//! The pool is the quota account `reseller:{id}`, a customer's is
//! `customer:{id}`; portal tokens may not name either. API keys are `mk_` and
//! 48 hex characters (192 random bits), shown once and stored as SHA-256.

use serde::Serialize;

use crate::ids::AccountId;
use crate::quota::Balance;

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

/// Who is calling: a portal user or a reseller (by one of its API keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Portal(AccountId),
    Reseller(ResellerCaller),
}

impl Caller {
    /// The quota account the caller acts for: the user's own, or the reseller's pool.
    pub fn account(&self) -> AccountId {
        match self {
            Caller::Portal(account) => account.clone(),
            Caller::Reseller(reseller) => reseller.pool(),
        }
    }
}

/// A reseller's customer (its quota account is [`customer_account`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub customer_id: String,
    pub reseller_id: String,
    /// The reseller's own id for it.
    pub reference: Option<String>,
    pub created_ms: i64,
}

impl Customer {
    pub fn account(&self) -> AccountId {
        customer_account(&self.customer_id)
    }

    /// As a listing shows it (no quota: that would cost a read per row).
    pub fn summary(&self) -> CustomerSummary {
        CustomerSummary {
            created_at: crate::time::rfc3339(self.created_ms),
            customer_id: self.customer_id.clone(),
            reference: self.reference.clone(),
        }
    }

    /// As its reseller sees it, with its quota.
    pub fn view(&self, quota: Balance) -> CustomerView {
        CustomerView {
            customer_id: self.customer_id.clone(),
            reference: self.reference.clone(),
            created_at: crate::time::rfc3339(self.created_ms),
            quota,
        }
    }
}

/// A customer as its reseller sees it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CustomerView {
    pub customer_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub created_at: String,
    pub quota: Balance,
}

/// A customer in a listing (fields in the order the API has always sent them).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CustomerSummary {
    pub created_at: String,
    pub customer_id: String,
    pub reference: Option<String>,
}

/// A sale reported by the reseller's shop: `quantity` stamps of its pool
/// go to one of its customers, once per `sale_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sale {
    pub sale_id: String,
    pub customer_id: String,
    pub quantity: i64,
}

impl Sale {
    /// The ledger reference of the sale on both accounts.
    pub fn reference(&self) -> String {
        format!("sale-{}", self.sale_id)
    }
}

/// What came of a sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SaleStatus {
    Applied,
    /// The sale was applied before; nothing changed.
    Duplicate,
}

/// The answer to a sale (fields in the order the API has always sent them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SaleOutcome {
    pub customer_id: String,
    pub quantity: i64,
    pub sale_id: String,
    pub status: SaleStatus,
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
