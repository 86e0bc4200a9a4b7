//! The route table of every function: for each route, parse the request,
//! call one use case, map the result. Futures are boxed here, in the
//! library, so the async code behind them is compiled once, not once per
//! function; each `functions/<name>/src/main.rs` only wires its routes to
//! the Lambda runtime.

pub mod audit;
pub mod authorizer;
pub mod health;
pub mod mailer;
pub mod orders;
pub mod payments;
pub mod portal;
pub mod quota;
pub mod reconciler;
pub mod resellers;
pub mod settlements;
pub mod stamps;
pub mod verify;
pub mod webhooks;
pub mod worker;
