//! meterai-aws: the AWS adapters. Each implements ports of `meterai-app`
//! (or serves the entry points) with DynamoDB, SQS, S3 and KMS: conditions and
//! transactions in the table ([`keys`] is its whole layout), messages on the
//! queues, documents in the bucket, signatures by the key. Depends on the
//! domain (`meterai-core`), the documents (`meterai-pdf`) and the ports
//! (`meterai-app`); never on the Lambda or HTTP edge (`meterai`), which
//! depends on this crate (see `ARCHITECTURE.md`).

pub mod accounts;
pub mod aws;
pub mod events;
pub mod health;
pub mod idempotency;
pub mod identity;
pub mod keys;
pub mod kms;
pub mod mail;
pub mod messages;
pub mod metrics;
pub mod midtrans;
pub mod orders;
pub mod paging;
pub mod payments;
pub mod quota;
pub mod recent;
pub mod resellers;
pub mod secrets;
pub mod stamping;
pub mod store;
pub mod verification;

pub use aws::AwsClients;
pub use error::{Error, Result};
/// The domain error, as every adapter returns it.
pub use meterai_core::error;
