//! meterai-app: the use cases, written against ports.
//!
//! A port ([`ports`]) is a trait the size of one business step (e.g.
//! [`ports::Orders::credit`]: mark an order paid *and* credit its quantity,
//! all or nothing), not a CRUD call. The AWS adapters in `meterai` implement
//! them with DynamoDB transactions; `meterai-memory` implements them in
//! memory with the same rules (conditions, all-or-nothing), so every use case
//! here is tested without the emulator (`tests/`).

pub mod orders;
pub mod payments;
pub mod ports;
