//! meterai: the entry points shared by every function: the Lambda runtimes
//! (`lambda`), each function's routes (`routes`), requests and responses
//! (`http`, `request`), the one error-to-HTTP mapping (`errors`), settings
//! (`config`), callers (`auth`) and the [`App`] that wires the use cases
//! (`meterai-app`) to their adapters (`meterai-aws`) once per cold start.
//! Nothing below depends on this crate (see `ARCHITECTURE.md`).
//!
//! A route stays thin: it parses the request, calls one use case and maps
//! the result to a response.

pub mod app;
pub mod auth;
pub mod config;
pub mod errors;
pub mod http;
pub mod idempotency;
pub mod jobs;
pub mod lambda;
pub mod request;
pub mod routes;
pub mod telemetry;

#[cfg(test)]
mod adapter_errors;
#[cfg(test)]
mod fuzz;

/// The adapters, from `meterai-aws` (re-exported for the routes, the
/// admin tool and the end-to-end tests).
pub use meterai_aws::{
    aws, events, health, keys, kms, mail, metrics, midtrans, orders, paging, payments, quota,
    resellers, secrets, stamping, store, verification, AwsClients,
};

pub use app::App;
pub use config::Config;
pub use error::{Error, Result};
/// The domain error, as every module here returns it.
pub use meterai_core::error;
