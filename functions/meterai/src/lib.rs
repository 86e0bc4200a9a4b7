//! meterai: the domain rules and AWS adapters shared by every Lambda function.
//!
//! Handlers stay thin: they parse an event, call one function from here and map
//! the result to a response. Configuration is read once per cold start
//! ([`Config::from_env`]) and AWS clients are built once ([`AwsClients::new`]).

pub mod app;
pub mod auth;
pub mod aws;
pub mod config;
pub mod error;
pub mod events;
pub mod health;
pub mod http;
pub mod idempotency;
pub mod jobs;
pub mod orders;
pub mod paging;
pub mod payments;
pub mod quota;
pub mod resellers;
pub mod signing;
pub mod stamp;
pub mod stamping;
pub mod store;
pub mod telemetry;
pub mod verification;
pub mod webhooks;

pub use app::App;
pub use aws::AwsClients;
pub use config::Config;
pub use error::{Error, Result};
