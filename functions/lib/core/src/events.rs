//! Outbound events to resellers: their types and their ids.
//!
//! An event's id is derived from its cause (type + job/order/refund id), so
//! emitting it twice (a redelivered job message, a retry after a crash)
//! records one event, and the id is the `webhook-id` of every attempt.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "stamp.completed")]
    StampCompleted,
    #[serde(rename = "stamp.failed")]
    StampFailed,
    #[serde(rename = "order.paid")]
    OrderPaid,
    #[serde(rename = "refund.completed")]
    RefundCompleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::StampCompleted => "stamp.completed",
            EventType::StampFailed => "stamp.failed",
            EventType::OrderPaid => "order.paid",
            EventType::RefundCompleted => "refund.completed",
        }
    }
}

/// The event's id from its cause: the same cause always gives the same id.
pub fn event_id(kind: EventType, reference: &str) -> String {
    let digest = Sha256::digest(format!("{}\0{reference}", kind.as_str()));
    format!("msg_{}", &hex::encode(digest)[..32])
}

/// Whether an event still has to reach its reseller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    /// Not delivered yet (waiting, retrying, or parked for a replay).
    Pending,
    Delivered,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Pending => "pending",
            EventStatus::Delivered => "delivered",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [EventStatus::Pending, EventStatus::Delivered]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// A recorded outbound event: what is POSTed (`payload`, signed) and to whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub event_id: String,
    pub reseller_id: String,
    pub kind: EventType,
    /// The JSON body, exactly as signed and sent on every attempt.
    pub payload: String,
    pub status: EventStatus,
    pub attempts: i64,
    pub created_ms: i64,
}

impl EventType {
    pub fn parse(raw: &str) -> Option<Self> {
        [
            EventType::StampCompleted,
            EventType::StampFailed,
            EventType::OrderPaid,
            EventType::RefundCompleted,
        ]
        .into_iter()
        .find(|k| k.as_str() == raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_stable_per_cause() {
        let a = event_id(EventType::StampCompleted, "job_1");
        assert_eq!(a, event_id(EventType::StampCompleted, "job_1"));
        assert_ne!(a, event_id(EventType::StampFailed, "job_1"));
        assert_ne!(a, event_id(EventType::StampCompleted, "job_2"));
        assert!(a.starts_with("msg_") && a.len() == 36);
    }
}
