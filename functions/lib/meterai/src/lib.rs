//! meterai: the use cases, their AWS adapters and the Lambda/HTTP edge shared
//! by every function. The domain rules are in `meterai-core` and the
//! documents (stamp, signature) in `meterai-pdf`; this crate depends on
//! them, never the other way round (see `ARCHITECTURE.md`).
//!
//! Handlers stay thin: they parse an event, call one function from here and map
//! the result to a response. Configuration is read once per cold start
//! ([`Config::from_env`]) and AWS clients are built once ([`AwsClients::new`]).

pub mod app;
pub mod auth;
pub mod aws;
pub mod config;
pub mod errors;
pub mod events;
pub mod health;
pub mod http;
pub mod idempotency;
pub mod jobs;
pub mod keys;
pub mod kms;
pub mod lambda;
pub mod orders;
pub mod paging;
pub mod payments;
pub mod quota;
pub mod request;
pub mod resellers;
pub mod routes;
pub mod stamping;
pub mod store;
pub mod telemetry;
pub mod verification;

#[cfg(test)]
mod adapter_errors;

pub use app::App;
pub use aws::AwsClients;
pub use config::Config;
pub use error::{Error, Result};
/// The domain error, as every module here returns it.
pub use meterai_core::error;
