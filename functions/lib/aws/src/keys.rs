//! The one table's key layout: every item kind, its `pk` / `sk`, and the
//! `gsi1` partitions that list items newest first. Every adapter takes its
//! keys from here, so this file is the whole map of what the table holds.
//!
//! | item | pk | sk | gsi1pk (listing) |
//! | --- | --- | --- | --- |
//! | balance | `ACCT#{account}` | `BALANCE` | |
//! | ledger entry | `LEDGER#{account}` | `{kind}#{reference}` | `LEDGER#{account}` |
//! | order | `ORDER#{order}` | `ORDER` | `ORDERS#{account}` |
//! | refund | `ORDER#{order}` | `REFUND#{seq:06}` | |
//! | payment notification | `PAYMENT#{order}` | `EVENT#{ms}#{nonce}` | |
//! | idempotency record | `IDEM#{account}#{scope}#{key}` | `IDEM` | |
//! | job | `JOB#{job}` | `JOB` | `JOBS#{owner}` |
//! | serial | `SERIAL#{serial}` | `SERIAL` | |
//! | dead letter | `DEADLETTER#{message id}` | `DEADLETTER` | |
//! | reseller | `RESELLER#{id}` | `PROFILE` | |
//! | API key (by id) | `RESELLER#{id}` | `KEY#{key id}` | |
//! | API key (by hash) | `APIKEY#{sha256}` | `APIKEY` | |
//! | customer | `CUSTOMER#{id}` | `CUSTOMER` | `CUSTOMERS#{reseller}` |
//! | outbound event | `EVENT#{event}` | `EVENT` | |
//! | e-mail sent | `MAIL#{event id}` | `MAIL` | |
//! | order awaiting payment | `PENDING#{shard}` | `{since:013}#{order}` | |
//! | jobs ended in a minute | `DRAIN#{minute}` | `DRAIN` | |
//! | unfinished job | `UNFINISHED#{shard}` | `{accepted:013}#{job}` | |
//!
//! Orders awaiting payment are spread over [`PENDING_SHARDS`] partitions
//! (by the order id's last character) so that a deadline's burst of orders
//! is not one hot partition; the reconciler reads them all, oldest mark
//! first. A mark's time is the order's creation, moved later each time the
//! reconciler finds it still pending (the back of the line).
//!
//! A listing's `gsi1sk` is `{ms:013}#{id}` ([`sort_key`]), so it sorts by time.
//! Ledger sort keys are the movement's cause (`credit#ord_…`), written with
//! `attribute_not_exists`, so the same movement never applies twice.

use aws_sdk_dynamodb::types::AttributeValue;

use crate::store::{s, Item};

/// An item's primary key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    fn new(pk: String, sk: impl Into<String>) -> Self {
        Key { pk, sk: sk.into() }
    }

    /// The key as the SDK's key map (`set_key` of a get, update or delete).
    pub fn map(&self) -> Item {
        Item::from([
            ("pk".to_string(), s(&self.pk)),
            ("sk".to_string(), s(&self.sk)),
        ])
    }

    /// A whole item: this key and `attributes`.
    pub fn with<const N: usize>(&self, attributes: [(String, AttributeValue); N]) -> Item {
        let mut item = self.map();
        item.extend(attributes);
        item
    }
}

/// The balance item's partition prefix (the audit reads it off the stream).
pub const ACCOUNT_PREFIX: &str = "ACCT#";

pub fn balance(account: &str) -> Key {
    Key::new(format!("{ACCOUNT_PREFIX}{account}"), "BALANCE")
}

pub fn ledger_entry(account: &str, entry: &str) -> Key {
    Key::new(ledger_partition(account), entry)
}

/// The partition of an account's ledger (its entries, and their listing).
pub fn ledger_partition(account: &str) -> String {
    format!("LEDGER#{account}")
}

pub fn order(order_id: &str) -> Key {
    Key::new(format!("ORDER#{order_id}"), "ORDER")
}

/// The listing of an account's orders.
pub fn orders_of(account: &str) -> String {
    format!("ORDERS#{account}")
}

pub fn refund(order_id: &str, seq: i64) -> Key {
    Key::new(format!("ORDER#{order_id}"), format!("REFUND#{seq:06}"))
}

pub fn payment_notification(order_id: &str, received_ms: i64, nonce: &str) -> Key {
    Key::new(
        format!("PAYMENT#{order_id}"),
        format!("EVENT#{}#{nonce}", crate::store::sortable_ms(received_ms)),
    )
}

pub fn idempotency(account: &str, scope: &str, key: &str) -> Key {
    Key::new(format!("IDEM#{account}#{scope}#{key}"), "IDEM")
}

pub fn job(job_id: &str) -> Key {
    Key::new(format!("JOB#{job_id}"), "JOB")
}

/// The listing of the jobs an account sees.
pub fn jobs_of(owner: &str) -> String {
    format!("JOBS#{owner}")
}

pub fn serial(serial: &str) -> Key {
    Key::new(format!("SERIAL#{serial}"), "SERIAL")
}

pub fn dead_letter(message_id: &str) -> Key {
    Key::new(format!("DEADLETTER#{message_id}"), "DEADLETTER")
}

pub fn reseller(reseller_id: &str) -> Key {
    Key::new(format!("RESELLER#{reseller_id}"), "PROFILE")
}

pub fn api_key_by_id(reseller_id: &str, key_id: &str) -> Key {
    Key::new(format!("RESELLER#{reseller_id}"), format!("KEY#{key_id}"))
}

pub fn api_key_by_hash(hash: &str) -> Key {
    Key::new(format!("APIKEY#{hash}"), "APIKEY")
}

pub fn customer(customer_id: &str) -> Key {
    Key::new(format!("CUSTOMER#{customer_id}"), "CUSTOMER")
}

/// The listing of a reseller's customers.
pub fn customers_of(reseller_id: &str) -> String {
    format!("CUSTOMERS#{reseller_id}")
}

pub fn event(event_id: &str) -> Key {
    Key::new(format!("EVENT#{event_id}"), "EVENT")
}

/// The record that one e-mail was sent (the mailer sends it once).
pub fn mail_sent(mail_id: &str) -> Key {
    Key::new(format!("MAIL#{mail_id}"), "MAIL")
}

/// The count of jobs that ended in one minute (minutes since the epoch): the
/// queue's measured drain. One item per minute, added to, never contended in
/// a transaction.
pub fn drain(minute: i64) -> Key {
    Key::new(format!("DRAIN#{minute}"), "DRAIN")
}

/// Partitions of the orders awaiting payment.
pub const PENDING_SHARDS: u32 = 8;

/// The marker of an order awaiting payment (written with the order, moved
/// by the reconciler).
pub fn pending_order(order_id: &str, since_ms: i64) -> Key {
    let shard = order_id
        .bytes()
        .last()
        .map_or(0, |b| u32::from(b) % PENDING_SHARDS);
    Key::new(pending_shard(shard), sort_key(since_ms, order_id))
}

/// One partition of the orders awaiting payment.
pub fn pending_shard(shard: u32) -> String {
    format!("PENDING#{shard}")
}

/// The marker of an unfinished job: written with the job, deleted in the
/// step that ends it; the schedule reads the old ones (a lost message).
pub fn unfinished_job(job_id: &str, accepted_ms: i64) -> Key {
    let shard = job_id
        .bytes()
        .last()
        .map_or(0, |b| u32::from(b) % PENDING_SHARDS);
    Key::new(unfinished_shard(shard), sort_key(accepted_ms, job_id))
}

/// One partition of the unfinished jobs.
pub fn unfinished_shard(shard: u32) -> String {
    format!("UNFINISHED#{shard}")
}

/// A listing's sort key: time first (zero-padded milliseconds), then the id.
pub fn sort_key(created_ms: i64, id: &str) -> String {
    format!("{}#{id}", crate::store::sortable_ms(created_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_prefix_and_items_carry_their_key() {
        let keys = [
            balance("a"),
            ledger_entry("a", "credit#ord_1"),
            order("ord_1"),
            refund("ord_1", 2),
            payment_notification("ord_1", 5, "n"),
            idempotency("a", "orders", "k"),
            job("job_1"),
            serial("S"),
            dead_letter("m"),
            reseller("r"),
            api_key_by_id("r", "k"),
            api_key_by_hash("h"),
            customer("c"),
            event("e"),
            pending_order("ord_1", 5),
            unfinished_job("job_1", 5),
            mail_sent("order.paid:ord_1"),
        ];
        let unique: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len(), "no two kinds share a key");
        assert_eq!(refund("ord_1", 2).sk, "REFUND#000002");
        assert_eq!(
            payment_notification("ord_1", 5, "n").sk,
            "EVENT#0000000000005#n"
        );
        let item = job("job_1").with([("status".to_string(), s("queued"))]);
        assert_eq!(item["pk"], s("JOB#job_1"));
        assert_eq!(item["sk"], s("JOB"));
        assert_eq!(item["status"], s("queued"));
        assert_eq!(sort_key(42, "x"), "0000000000042#x");
    }

    /// The items functions delete, and the key prefixes the template's
    /// roles may delete under (`dynamodb:LeadingKeys`, held by
    /// `infra/check_policies.py`): a key moved out of its prefix would be
    /// refused on AWS, where the emulator would not notice.
    #[test]
    fn deleted_items_stay_under_the_prefixes_the_roles_may_delete() {
        let template = include_str!("../../../../infra/template.yaml");
        for (key, prefix) in [
            (idempotency("a", "stamps", "k"), "IDEM#"),
            (pending_order("ord_1", 5), "PENDING#"),
            (unfinished_job("job_1", 5), "UNFINISHED#"),
            (mail_sent("order.paid:ord_1"), "MAIL#"),
        ] {
            assert!(key.pk.starts_with(prefix), "{} under {prefix}", key.pk);
            assert!(
                template.contains(&format!("dynamodb:LeadingKeys: [\"{prefix}*\"]")),
                "no role may delete under {prefix}"
            );
        }
    }

    /// The items ending a job writes (the worker, the dead-letter
    /// reconciler), under the prefixes their roles may write.
    #[test]
    fn a_jobs_end_writes_only_under_the_prefixes_its_roles_may_write() {
        let template = include_str!("../../../../infra/template.yaml");
        let allowed = "dynamodb:LeadingKeys: [\"JOB#*\", \"SERIAL#*\", \"ACCT#*\", \"LEDGER#*\", \"EVENT#*\", \"DRAIN#*\", \"DEADLETTER#*\"]";
        assert_eq!(
            template.matches(allowed).count(),
            2,
            "worker and reconciler"
        );
        for key in [
            job("job_1"),
            serial("S"),
            balance("customer:c"),
            ledger_entry("customer:c", "spend#job_1"),
            event("e"),
            drain(5),
            dead_letter("m"),
        ] {
            let kind = key.pk.split('#').next().unwrap();
            assert!(allowed.contains(&format!("\"{kind}#*\"")), "{}", key.pk);
        }
    }
}
