//! Messages on our queues: the job and event envelopes (a message names one
//! item of work by its id; the item lives in the table), what makes a body
//! poison, and hiding a failed message for its backoff delay.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::aws::AwsClients;

/// The body of a message on the jobs queue. The job itself lives in the table;
/// the message only says which one to work on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobMessage {
    pub job_id: String,
}

/// Why a message cannot be worked on, ever. Retrying it will not help; it goes
/// to the dead-letter queue after `maxReceiveCount` receives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoisonMessage {
    #[error("message has no body")]
    Empty,
    #[error("message body is not a job message: {0}")]
    Malformed(String),
    #[error("id {0:?} is not valid (1-64 characters of A-Z, a-z, 0-9, '-' or '_')")]
    BadJobId(String),
}

/// The body of a message on the webhooks queue: which outbound event to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventMessage {
    pub event_id: String,
}

/// A queue message that names one item of work by its id.
pub trait Envelope: Sized + Serialize + serde::de::DeserializeOwned {
    fn id(&self) -> &str;

    /// Parses and validates a message body.
    fn parse(body: Option<&str>) -> Result<Self, PoisonMessage> {
        let body = body
            .filter(|b| !b.trim().is_empty())
            .ok_or(PoisonMessage::Empty)?;
        let message: Self =
            serde_json::from_str(body).map_err(|e| PoisonMessage::Malformed(e.to_string()))?;
        let id = message.id();
        let valid = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(PoisonMessage::BadJobId(id.to_string()));
        }
        Ok(message)
    }

    fn to_body(&self) -> String {
        serde_json::to_string(self).expect("a struct of strings always serializes")
    }
}

impl Envelope for JobMessage {
    fn id(&self) -> &str {
        &self.job_id
    }
}

impl Envelope for EventMessage {
    fn id(&self) -> &str {
        &self.event_id
    }
}

/// A failed message and how long it should stay hidden before its next try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub message_id: String,
    pub receipt_handle: Option<String>,
    pub retry_after: Duration,
}

/// Hides each failed message for its backoff delay. Best effort: if this call
/// fails the message simply returns after the queue's visibility timeout.
pub async fn delay_retries(clients: &AwsClients, queue_url: &str, failed: &[Failed]) {
    for item in failed {
        let Some(handle) = &item.receipt_handle else {
            continue;
        };
        let seconds = item.retry_after.as_secs().min(43_200) as i32;
        if let Err(e) = clients
            .sqs
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(handle)
            .visibility_timeout(seconds)
            .send()
            .await
        {
            tracing::warn!(message_id = %item.message_id, error = %aws_sdk_sqs::error::DisplayErrorContext(e), "could not shorten the retry delay");
        }
    }
}
