//! meterai-core: the domain, pure.
//!
//! Ids, quota and its movements, order rules and states, job states and
//! their transitions, serial numbers, reseller and webhook rules,
//! payment-gateway notification rules and the one domain error type. Nothing
//! here calls AWS, Lambda or the network; the layers above (see
//! `ARCHITECTURE.md`) depend on it, never the other way round.

pub mod accounts;
pub mod error;
pub mod events;
pub mod ids;
pub mod jobs;
pub mod mail;
pub mod network;
pub mod orders;
pub mod payments;
pub mod quota;
pub mod resellers;
pub mod retry;
pub mod serial;
pub mod time;
pub mod webhooks;

pub use error::{Error, ErrorKind, Result};

/// The `tracing` target of business metrics: an event with it records what
/// happened (numbers are counts, or milliseconds when the name ends `_ms`;
/// `code` says which kind), and the entry points' telemetry writes it in the
/// metrics format of the platform. No personal data, no ids as dimensions.
pub const METRIC: &str = "metric";
pub use ids::AccountId;
pub use jobs::JobStatus;
pub use serial::Serial;
