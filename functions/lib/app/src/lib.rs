//! meterai-app: the use cases, written against ports.
//!
//! A port ([`ports`]) is a trait the size of one business step (e.g.
//! [`ports::Orders::credit`]: mark an order paid *and* credit its quantity,
//! all or nothing), not a CRUD call. The AWS adapters in `meterai-aws` implement
//! them with DynamoDB transactions; `meterai-memory` implements them in
//! memory with the same rules (conditions, all-or-nothing), so every use case
//! here is tested without the emulator (`tests/`).

pub mod accounts;
pub mod cpu;
pub mod events;
pub mod idempotency;
pub mod orders;
pub mod payments;
pub mod ports;
pub mod quota;
pub mod resellers;
pub mod stamping;
pub mod verification;

/// What came of one queue message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Worked on; delete it from the queue.
    Done,
    /// Already worked on by an earlier delivery (SQS is at-least-once); delete it.
    Duplicate,
    /// Can never be worked on; let it reach the dead-letter queue.
    Poison(String),
    /// Failed for a passing reason (throttling, timeout); try again later.
    Retry(String),
}

impl Outcome {
    /// Whether the message stays on the queue.
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Poison(_) | Outcome::Retry(_))
    }
}
