//! Resellers: accounts with their own API keys, a quota pool, customers, and
//! a webhook endpoint with its own `whsec_` secret (stored sealed by KMS,
//! see `secrets`).
//!
//! | item | pk | sk | gsi1pk / gsi1sk |
//! | --- | --- | --- | --- |
//! | reseller | `RESELLER#{id}` | `PROFILE` | |
//! | API key (by id) | `RESELLER#{id}` | `KEY#{key_id}` | |
//! | API key (by hash) | `APIKEY#{sha256}` | `APIKEY` | |
//! | customer | `CUSTOMER#{id}` | `CUSTOMER` | `CUSTOMERS#{reseller}` / `{ms}#{id}` |
//!
//! API keys are shown once and stored only as their SHA-256 (a key has 192
//! random bits, so a plain hash is enough; no slow hash is needed). The pool
//! is the quota account `reseller:{id}`, a customer's is `customer:{id}`;
//! portal tokens may not name either.

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use serde::Serialize;

use crate::error::{codes, Error, Result};
use crate::keys;
use crate::quota::{self, Balance, TransferRejected};
use crate::secrets::WebhookSecrets;
use crate::store::{self, get_n, get_s, n, s, Item};
use crate::AwsClients;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use meterai_app::ports::{Customers, SaleRejected};
pub use meterai_core::resellers::{
    customer_account, is_api_key, pool_account, ResellerCaller, CUSTOMER_PREFIX, POOL_PREFIX,
};
use meterai_core::resellers::{Customer, Sale};
use meterai_core::webhooks::{self, Secret};
use meterai_core::AccountId;

/// A reseller's profile.
#[derive(Debug, Clone)]
pub struct Reseller {
    pub reseller_id: String,
    pub name: String,
    pub webhook_url: Option<String>,
    /// The webhook secret as stored.
    pub stored_secret: StoredSecret,
    pub webhook_enabled: bool,
}

/// A webhook secret as the table holds it.
#[derive(Debug, Clone)]
pub enum StoredSecret {
    /// Sealed by the secrets key (`WebhookSecrets::open`).
    Sealed(Vec<u8>),
    /// In clear, as resellers made before sealing have it until
    /// `meterai-admin reseller seal-secrets` runs (read meanwhile, so a
    /// deployment does not break them).
    Clear(Secret),
}

/// The attribute the sealed webhook secret is stored in.
const SEALED_SECRET: &str = "webhook_secret_sealed";
/// The attribute a secret in clear was stored in (before sealing).
const CLEAR_SECRET: &str = "webhook_secret";

impl Reseller {
    fn from_item(item: &Item) -> Option<Self> {
        let stored_secret = match item.get(SEALED_SECRET) {
            Some(sealed) => StoredSecret::Sealed(sealed.as_b().ok()?.as_ref().to_vec()),
            None => StoredSecret::Clear(Secret::parse(get_s(item, CLEAR_SECRET)?)?),
        };
        Some(Reseller {
            reseller_id: get_s(item, "reseller_id")?.to_string(),
            name: get_s(item, "name")?.to_string(),
            webhook_url: get_s(item, "webhook_url").map(str::to_string),
            stored_secret,
            webhook_enabled: get_s(item, "webhook_status") == Some("enabled"),
        })
    }

    /// The webhook secret, opened.
    pub async fn webhook_secret(&self, secrets: &WebhookSecrets) -> Result<Secret> {
        match &self.stored_secret {
            StoredSecret::Sealed(sealed) => secrets.open(&self.reseller_id, sealed).await,
            StoredSecret::Clear(secret) => {
                tracing::warn!(
                    reseller_id = %self.reseller_id,
                    "webhook secret not sealed yet: run meterai-admin reseller seal-secrets"
                );
                Ok(secret.clone())
            }
        }
    }
}

/// Seals every webhook secret still stored in clear, keeping its value (the
/// shops keep theirs), and removes the clear copy. Returns how many.
pub async fn seal_clear_secrets(
    clients: &AwsClients,
    secrets: &WebhookSecrets,
    table: &str,
) -> Result<usize> {
    let mut sealed_count = 0;
    let mut start = None;
    loop {
        let page = clients
            .dynamodb
            .scan()
            .table_name(table)
            .filter_expression("sk = :profile AND attribute_exists(#clear)")
            .expression_attribute_names("#clear", CLEAR_SECRET)
            .expression_attribute_values(":profile", s("PROFILE"))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| Error::table(DisplayErrorContext(e)))?;
        for item in page.items() {
            let Some(reseller) = Reseller::from_item(item) else {
                continue;
            };
            let StoredSecret::Clear(secret) = &reseller.stored_secret else {
                continue;
            };
            let ciphertext = secrets.seal(&reseller.reseller_id, secret).await?;
            // Only if the clear secret is still the one sealed (a rotation
            // meanwhile wins).
            let updated = clients
                .dynamodb
                .update_item()
                .table_name(table)
                .set_key(Some(keys::reseller(&reseller.reseller_id).map()))
                .update_expression("SET #sealed = :sealed REMOVE #clear")
                .condition_expression("#clear = :clear")
                .expression_attribute_names("#sealed", SEALED_SECRET)
                .expression_attribute_names("#clear", CLEAR_SECRET)
                .expression_attribute_values(":sealed", sealed(ciphertext))
                .expression_attribute_values(":clear", s(secret.expose()))
                .send()
                .await;
            if store::condition_held(updated)? {
                sealed_count += 1;
            }
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return Ok(sealed_count);
        }
    }
}

fn sealed(bytes: Vec<u8>) -> AttributeValue {
    AttributeValue::B(Blob::new(bytes))
}

/// Checks a webhook endpoint's form (the rule is `meterai_core::network`'s).
pub fn check_webhook_url(raw: &str, allow_loopback: bool) -> Result<()> {
    meterai_core::network::check_webhook_url(raw, allow_loopback).map(drop)
}

/// What `create` hands out, once.
#[derive(Debug, Clone, Serialize)]
pub struct Created {
    pub reseller_id: String,
    pub name: String,
    pub key_id: String,
    pub api_key: String,
    pub webhook_secret: String,
}

/// Creates a reseller with a first API key and a webhook secret.
pub async fn create(
    clients: &AwsClients,
    secrets: &WebhookSecrets,
    table: &str,
    name: &str,
    webhook_url: Option<&str>,
    allow_loopback: bool,
) -> Result<Created> {
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            codes::BAD_REQUEST,
            "a reseller's name is 1 to 100 characters",
        ));
    }
    if let Some(url) = webhook_url {
        check_webhook_url(url, allow_loopback)?;
    }
    let reseller_id = format!("rsl_{}", meterai_core::ids::nonce());
    let secret = Secret::generate();
    let sealed_secret = secrets.seal(&reseller_id, &secret).await?;
    let mut profile = keys::reseller(&reseller_id).with([
        ("reseller_id".to_string(), s(&reseller_id)),
        ("name".to_string(), s(name)),
        (SEALED_SECRET.to_string(), sealed(sealed_secret)),
        ("webhook_status".to_string(), s("enabled")),
        ("created_at".to_string(), n(meterai_core::time::now_ms())),
    ]);
    if let Some(url) = webhook_url {
        profile.insert("webhook_url".to_string(), s(url));
    }
    let (key_id, api_key, key_items) = new_key_items(table, &reseller_id, name);
    let mut items = vec![put_new(table, profile)];
    items.extend(key_items);
    quota::transact(clients, items)
        .await?
        .map_err(|_| Error::conflict(codes::CONTENTION, "id collision; retry"))?;
    Ok(Created {
        reseller_id,
        name: name.to_string(),
        key_id,
        api_key,
        webhook_secret: secret.expose(),
    })
}

fn put_new(table: &str, item: Item) -> TransactWriteItem {
    TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .expect("put is complete"),
        )
        .build()
}

fn new_key_items(
    table: &str,
    reseller_id: &str,
    name: &str,
) -> (String, String, Vec<TransactWriteItem>) {
    let key_id = format!("key_{}", meterai_core::ids::nonce());
    let api_key = meterai_core::resellers::new_api_key();
    let hash = meterai_core::ids::sha256_hex(api_key.as_bytes());
    let now = meterai_core::time::now_ms();
    let by_id = keys::api_key_by_id(reseller_id, &key_id).with([
        ("key_id".to_string(), s(&key_id)),
        ("hash".to_string(), s(&hash)),
        ("status".to_string(), s("active")),
        ("created_at".to_string(), n(now)),
    ]);
    let by_hash = keys::api_key_by_hash(&hash).with([
        ("reseller_id".to_string(), s(reseller_id)),
        ("name".to_string(), s(name)),
        ("key_id".to_string(), s(&key_id)),
        ("status".to_string(), s("active")),
        ("created_at".to_string(), n(now)),
    ]);
    (
        key_id,
        api_key,
        vec![put_new(table, by_id), put_new(table, by_hash)],
    )
}

/// Issues another API key (rotation: issue, switch, then revoke the old one).
pub async fn issue_key(
    clients: &AwsClients,
    table: &str,
    reseller_id: &str,
) -> Result<(String, String)> {
    let reseller = load(clients, table, reseller_id)
        .await?
        .ok_or_else(|| Error::not_found(codes::NOT_FOUND, format!("no reseller {reseller_id}")))?;
    let (key_id, api_key, items) = new_key_items(table, reseller_id, &reseller.name);
    quota::transact(clients, items)
        .await?
        .map_err(|_| Error::conflict(codes::CONTENTION, "id collision; retry"))?;
    Ok((key_id, api_key))
}

/// Revokes one key; requests with it are refused from then on.
pub async fn revoke_key(
    clients: &AwsClients,
    table: &str,
    reseller_id: &str,
    key_id: &str,
) -> Result<()> {
    let out = clients
        .dynamodb
        .get_item()
        .table_name(table)
        .set_key(Some(keys::api_key_by_id(reseller_id, key_id).map()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| Error::table(DisplayErrorContext(e)))?;
    let hash = out
        .item()
        .and_then(|i| get_s(i, "hash"))
        .ok_or_else(|| Error::not_found(codes::NOT_FOUND, format!("no key {key_id}")))?
        .to_string();
    let revoke = |key: keys::Key| {
        TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(table)
                    .set_key(Some(key.map()))
                    .update_expression("SET #status = :revoked, revoked_at = :now")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":revoked", s("revoked"))
                    .expression_attribute_values(":now", n(meterai_core::time::now_ms()))
                    .build()
                    .expect("update is complete"),
            )
            .build()
    };
    quota::transact(
        clients,
        vec![
            revoke(keys::api_key_by_id(reseller_id, key_id)),
            revoke(keys::api_key_by_hash(&hash)),
        ],
    )
    .await?
    .map_err(|_| Error::not_found(codes::NOT_FOUND, format!("no key {key_id}")))
}

/// Sets (and re-enables) the webhook endpoint, or rotates its secret.
pub async fn configure_webhook(
    clients: &AwsClients,
    secrets: &WebhookSecrets,
    table: &str,
    reseller_id: &str,
    url: Option<&str>,
    rotate_secret: bool,
    allow_loopback: bool,
) -> Result<Option<String>> {
    let mut sets = vec!["webhook_status = :enabled"];
    let mut update = clients
        .dynamodb
        .update_item()
        .table_name(table)
        .set_key(Some(keys::reseller(reseller_id).map()))
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_values(":enabled", s("enabled"));
    if let Some(url) = url {
        check_webhook_url(url, allow_loopback)?;
        sets.push("webhook_url = :url");
        update = update.expression_attribute_values(":url", s(url));
    }
    let secret = rotate_secret.then(Secret::generate);
    let mut remove = "";
    if let Some(secret) = &secret {
        // The clear secret of an item written before secrets were sealed
        // goes with the first rotation.
        sets.push("#sealed = :sealed");
        remove = " REMOVE #clear";
        update = update
            .expression_attribute_names("#sealed", SEALED_SECRET)
            .expression_attribute_names("#clear", CLEAR_SECRET)
            .expression_attribute_values(
                ":sealed",
                sealed(secrets.seal(reseller_id, secret).await?),
            );
    }
    update
        .update_expression(format!("SET {}{remove}", sets.join(", ")))
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception())
            {
                Error::not_found(codes::NOT_FOUND, format!("no reseller {reseller_id}"))
            } else {
                Error::table(DisplayErrorContext(e))
            }
        })?;
    Ok(secret.map(|s| s.expose()))
}

/// Marks the endpoint disabled (it answered 410 Gone).
pub async fn disable_webhook(clients: &AwsClients, table: &str, reseller_id: &str) -> Result<()> {
    clients
        .dynamodb
        .update_item()
        .table_name(table)
        .set_key(Some(keys::reseller(reseller_id).map()))
        .update_expression("SET webhook_status = :disabled, disabled_at = :now")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_values(":disabled", s("disabled"))
        .expression_attribute_values(":now", n(meterai_core::time::now_ms()))
        .send()
        .await
        .map_err(|e| Error::table(DisplayErrorContext(e)))?;
    Ok(())
}

pub async fn load(
    clients: &AwsClients,
    table: &str,
    reseller_id: &str,
) -> Result<Option<Reseller>> {
    if !meterai_core::ids::is_id(reseller_id, "rsl_") {
        return Ok(None);
    }
    let out = clients
        .dynamodb
        .get_item()
        .table_name(table)
        .set_key(Some(keys::reseller(reseller_id).map()))
        .send()
        .await
        .map_err(|e| Error::table(DisplayErrorContext(e)))?;
    Ok(out.item().and_then(Reseller::from_item))
}

/// The reseller an active API key belongs to.
pub async fn authenticate(
    clients: &AwsClients,
    table: &str,
    api_key: &str,
) -> Result<ResellerCaller> {
    let invalid = || Error::unauthenticated(codes::INVALID_API_KEY, "the API key is not valid");
    if !meterai_core::resellers::is_well_formed_api_key(api_key) {
        return Err(invalid());
    }
    let out = clients
        .dynamodb
        .get_item()
        .table_name(table)
        .set_key(Some(
            keys::api_key_by_hash(&meterai_core::ids::sha256_hex(api_key.as_bytes())).map(),
        ))
        .send()
        .await
        .map_err(|e| Error::table(DisplayErrorContext(e)))?;
    let item = out.item().ok_or_else(invalid)?;
    if get_s(item, "status") != Some("active") {
        return Err(invalid());
    }
    Ok(ResellerCaller {
        reseller_id: get_s(item, "reseller_id").ok_or_else(invalid)?.to_string(),
        name: get_s(item, "name").unwrap_or_default().to_string(),
    })
}

/// A reseller's customers in the table (`CUSTOMER#{id}`, listed by
/// `CUSTOMERS#{reseller}` on `gsi1`); a sale is a transfer between quota
/// accounts (`quota::transfer`).
#[derive(Debug, Clone)]
pub struct DynamoCustomers {
    pub clients: AwsClients,
    pub table: String,
}

fn customer_item(customer: &Customer) -> Item {
    let mut item = keys::customer(&customer.customer_id).with([
        (
            "gsi1pk".to_string(),
            s(keys::customers_of(&customer.reseller_id)),
        ),
        (
            "gsi1sk".to_string(),
            s(format!(
                "{}#{}",
                store::sortable_ms(customer.created_ms),
                customer.customer_id
            )),
        ),
        ("customer_id".to_string(), s(&customer.customer_id)),
        ("reseller_id".to_string(), s(&customer.reseller_id)),
        ("created_at".to_string(), n(customer.created_ms)),
    ]);
    if let Some(r) = &customer.reference {
        item.insert("reference".to_string(), s(r));
    }
    item
}

fn customer_from_item(item: &Item) -> Option<Customer> {
    Some(Customer {
        customer_id: get_s(item, "customer_id")?.to_string(),
        reseller_id: get_s(item, "reseller_id")?.to_string(),
        reference: get_s(item, "reference").map(str::to_string),
        created_ms: get_n(item, "created_at").unwrap_or(0),
    })
}

#[async_trait::async_trait]
impl Customers for DynamoCustomers {
    async fn create(&self, customer: &Customer) -> Result<()> {
        self.clients
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(customer_item(customer)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| Error::table(DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn load(&self, customer_id: &str) -> Result<Option<Customer>> {
        let out = self
            .clients
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::customer(customer_id).map()))
            .send()
            .await
            .map_err(|e| Error::table(DisplayErrorContext(e)))?;
        Ok(out.item().and_then(customer_from_item))
    }

    async fn list(
        &self,
        reseller_id: &str,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<quota::Page<Customer>> {
        let (items, next_cursor) = crate::paging::query_gsi1_desc(
            &self.clients,
            &self.table,
            &keys::customers_of(reseller_id),
            limit,
            cursor,
        )
        .await?;
        Ok(quota::Page {
            items: items.iter().filter_map(customer_from_item).collect(),
            next_cursor,
        })
    }

    async fn balance(&self, account: &AccountId) -> Result<Balance> {
        quota::balance(&self.clients, &self.table, account).await
    }

    async fn sell(
        &self,
        pool: &AccountId,
        customer: &AccountId,
        sale: &Sale,
    ) -> Result<std::result::Result<(), SaleRejected>> {
        let result = quota::transfer(
            &self.clients,
            &self.table,
            pool,
            customer,
            sale.quantity,
            &sale.reference(),
        )
        .await?;
        Ok(result.map_err(|rejected| match rejected {
            TransferRejected::AlreadyApplied => SaleRejected::AlreadyApplied,
            TransferRejected::Insufficient => SaleRejected::Insufficient,
        }))
    }
}

/// Verifies an inbound webhook from a reseller's shop. The reseller is named
/// by the body's `reseller_id`; the signature with that reseller's secret is
/// what proves it (an unknown reseller looks exactly like a wrong signature).
/// `body` is `raw_body` parsed (at the edge). Returns the reseller and the
/// verified `webhook-id`.
pub async fn authenticate_event(
    clients: &AwsClients,
    secrets: &WebhookSecrets,
    table: &str,
    headers: &webhooks::Headers<'_>,
    raw_body: &[u8],
    body: &serde_json::Value,
    now_seconds: i64,
) -> Result<(ResellerCaller, String)> {
    let reseller_id = body
        .get("reseller_id")
        .and_then(|r| r.as_str())
        .unwrap_or_default();
    let reseller = load(clients, table, reseller_id).await?.ok_or_else(|| {
        Error::unauthenticated(
            codes::WEBHOOK_SIGNATURE_INVALID,
            "no webhook-signature entry matches",
        )
    })?;
    let secret = reseller.webhook_secret(secrets).await?;
    let verified = webhooks::verify(&secret, headers, raw_body, now_seconds)?;
    let caller = ResellerCaller {
        reseller_id: reseller.reseller_id,
        name: reseller.name,
    };
    Ok((caller, verified.id))
}
