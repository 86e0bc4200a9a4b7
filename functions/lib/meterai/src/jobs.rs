//! Stamp jobs on the queue: the message envelope, how a batch is worked
//! through, and when a failed message comes back.
//!
//! A batch never fails as a whole: each message is judged on its own and only
//! the ones that failed are reported back (`SqsBatchResponse`), so one poison
//! message cannot drag good ones into the dead-letter queue with it.

use std::future::Future;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::aws::AwsClients;
use crate::config::Config;
pub use meterai_core::retry::RetryPolicy;

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

pub use meterai_app::Outcome;

/// A failed message and how long it should stay hidden before its next try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub message_id: String,
    pub receipt_handle: Option<String>,
    pub retry_after: Duration,
}

fn receive_count(message: &SqsMessage) -> u32 {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// The jobs queue's retry policy, from the function's settings.
pub fn retry_policy(config: &Config) -> RetryPolicy {
    RetryPolicy {
        base: config.retry_base,
        max: config.retry_max,
        max_receives: config.max_receive_count,
        jitter: false,
    }
}

/// Works through a batch, one message at a time, each in its own span, and
/// returns the failures to report plus when each should be retried.
pub async fn process_batch<M, F, Fut>(
    event: SqsEvent,
    retry: RetryPolicy,
    mut work: F,
) -> (SqsBatchResponse, Vec<Failed>)
where
    M: Envelope,
    F: FnMut(M, String) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let mut response = SqsBatchResponse::default();
    let mut failed = Vec::new();
    for message in event.records {
        let message_id = message.message_id.clone().unwrap_or_default();
        let receives = receive_count(&message);
        let span = tracing::info_span!("message", message_id = %message_id, id = tracing::field::Empty, receive_count = receives);
        let outcome = async {
            match M::parse(message.body.as_deref()) {
                Err(poison) => Outcome::Poison(poison.to_string()),
                Ok(item) => {
                    tracing::Span::current().record("id", item.id());
                    work(item, message_id.clone()).await
                }
            }
        }
        .instrument(span.clone())
        .await;
        let _entered = span.enter();
        match &outcome {
            Outcome::Done => tracing::info!("message processed"),
            Outcome::Duplicate => tracing::info!("duplicate delivery acknowledged"),
            Outcome::Poison(reason) => {
                tracing::error!(reason = %reason, "poison message; it will reach the dead-letter queue")
            }
            Outcome::Retry(reason) => {
                tracing::warn!(reason = %reason, "message will be retried")
            }
        }
        if outcome.is_failure() {
            let mut item = BatchItemFailure::default();
            item.item_identifier = message_id.clone();
            response.batch_item_failures.push(item);
            failed.push(Failed {
                message_id,
                receipt_handle: message.receipt_handle.clone(),
                retry_after: retry.delay(receives),
            });
        }
    }
    (response, failed)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn message(id: &str, body: &str, receives: u32) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.receipt_handle = Some(format!("rh-{id}"));
        m.body = Some(body.into());
        m.attributes =
            HashMap::from([("ApproximateReceiveCount".to_string(), receives.to_string())]);
        m
    }

    fn batch(messages: Vec<SqsMessage>) -> SqsEvent {
        let mut e = SqsEvent::default();
        e.records = messages;
        e
    }

    #[test]
    fn parses_a_job_message() {
        let job = JobMessage::parse(Some(r#"{"job_id":"job_01HX-abc"}"#)).unwrap();
        assert_eq!(job.job_id, "job_01HX-abc");
        assert_eq!(JobMessage::parse(Some(&job.to_body())).unwrap(), job);
    }

    #[test]
    fn rejects_poison_bodies() {
        assert_eq!(JobMessage::parse(None), Err(PoisonMessage::Empty));
        assert_eq!(JobMessage::parse(Some("  ")), Err(PoisonMessage::Empty));
        assert!(matches!(
            JobMessage::parse(Some("not json")),
            Err(PoisonMessage::Malformed(_))
        ));
        assert!(matches!(
            JobMessage::parse(Some(r#"{"job_id":"a","extra":1}"#)),
            Err(PoisonMessage::Malformed(_))
        ));
        assert!(matches!(
            JobMessage::parse(Some(r#"{"job_id":"../etc"}"#)),
            Err(PoisonMessage::BadJobId(_))
        ));
        let long = format!(r#"{{"job_id":"{}"}}"#, "a".repeat(65));
        assert!(matches!(
            JobMessage::parse(Some(&long)),
            Err(PoisonMessage::BadJobId(_))
        ));
    }

    fn policy(max_receives: u32) -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(30),
            max_receives,
            jitter: false,
        }
    }

    #[tokio::test]
    async fn one_poison_message_fails_alone() {
        let event = batch(vec![
            message("m1", r#"{"job_id":"a"}"#, 1),
            message("m2", "{broken", 3),
            message("m3", r#"{"job_id":"b"}"#, 1),
        ]);
        let mut seen = Vec::new();
        let (response, failed) = process_batch(event, policy(5), |job: JobMessage, _message_id| {
            seen.push(job.job_id);
            async { Outcome::Done }
        })
        .await;
        assert_eq!(seen, vec!["a", "b"]);
        let ids: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(ids, vec!["m2"]);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].receipt_handle.as_deref(), Some("rh-m2"));
        assert_eq!(failed[0].retry_after, Duration::from_secs(4));
    }

    #[tokio::test]
    async fn transient_failures_are_retried_and_duplicates_acknowledged() {
        let event = batch(vec![
            message("m1", r#"{"job_id":"a"}"#, 1),
            message("m2", r#"{"job_id":"b"}"#, 1),
        ]);
        let (response, _) = process_batch(
            event,
            policy(5),
            |job: JobMessage, _message_id| async move {
                if job.job_id == "a" {
                    Outcome::Retry("ThrottlingException".into())
                } else {
                    Outcome::Duplicate
                }
            },
        )
        .await;
        assert_eq!(response.batch_item_failures.len(), 1);
        assert_eq!(response.batch_item_failures[0].item_identifier, "m1");
    }
}
