//! Stamp jobs on the queue: the message envelope, how a batch is worked
//! through, and when a failed message comes back.
//!
//! A batch never fails as a whole: each message is judged on its own and only
//! the ones that failed are reported back (`SqsBatchResponse`), so one poison
//! message cannot drag good ones into the dead-letter queue with it.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use tracing::Instrument;

use crate::config::Config;
pub use meterai_core::retry::RetryPolicy;

pub use meterai_app::Outcome;
pub use meterai_aws::messages::{
    delay_retries, Envelope, EventMessage, Failed, JobMessage, PoisonMessage,
};

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

/// Time for the calls around a message's main work (reads, a KMS signature,
/// writes to S3 and the table), each a few hundred milliseconds at worst.
pub const RECORDING_MARGIN: Duration = Duration::from_secs(5);

/// When the invocation is cut off, and the longest one message may take. A
/// message is started only if it can end before the deadline; the others
/// are handed back at once (visible again now) for another invocation,
/// instead of being cut off half-way or sitting out the visibility timeout.
#[derive(Debug, Clone, Copy)]
pub struct TimeLeft {
    pub deadline: Instant,
    pub per_message: Duration,
}

impl TimeLeft {
    fn allows_one_more(&self) -> bool {
        Instant::now() + self.per_message <= self.deadline
    }
}

/// Works through a batch, one message at a time, each in its own span, and
/// returns the failures to report plus when each should be retried (a
/// message handed back unstarted: now).
pub async fn process_batch<M, F, Fut>(
    event: SqsEvent,
    retry: RetryPolicy,
    time: TimeLeft,
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
        if !time.allows_one_more() {
            span.in_scope(|| {
                tracing::info!("handed back unstarted: too little time left in this invocation")
            });
            report(
                &mut response,
                &mut failed,
                message_id,
                &message,
                Duration::ZERO,
            );
            continue;
        }
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
            let delay = retry.delay(receives);
            report(&mut response, &mut failed, message_id, &message, delay);
        }
    }
    (response, failed)
}

/// A message given back to the queue: reported as a batch failure, and to
/// be made visible again after `retry_after`.
fn report(
    response: &mut SqsBatchResponse,
    failed: &mut Vec<Failed>,
    message_id: String,
    message: &SqsMessage,
    retry_after: Duration,
) {
    let mut item = BatchItemFailure::default();
    item.item_identifier = message_id.clone();
    response.batch_item_failures.push(item);
    failed.push(Failed {
        message_id,
        receipt_handle: message.receipt_handle.clone(),
        retry_after,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

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

    fn plenty() -> TimeLeft {
        TimeLeft {
            deadline: Instant::now() + Duration::from_secs(60),
            per_message: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn a_message_that_could_not_finish_in_time_is_handed_back_unstarted() {
        let event = batch(vec![
            message("m1", r#"{"job_id":"a"}"#, 1),
            message("m2", r#"{"job_id":"b"}"#, 2),
            message("m3", r#"{"job_id":"c"}"#, 1),
        ]);
        // Time for one message: the first takes it all.
        let time = TimeLeft {
            deadline: Instant::now() + Duration::from_millis(300),
            per_message: Duration::from_millis(200),
        };
        let mut started = Vec::new();
        let (response, failed) = process_batch(event, policy(5), time, |job: JobMessage, _| {
            started.push(job.job_id);
            async {
                tokio::time::sleep(Duration::from_millis(150)).await;
                Outcome::Done
            }
        })
        .await;
        assert_eq!(started, vec!["a"]);
        let ids: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(ids, vec!["m2", "m3"]);
        // Visible again at once, not after a backoff or the visibility timeout.
        assert!(failed.iter().all(|f| f.retry_after == Duration::ZERO));
        assert_eq!(failed[0].receipt_handle.as_deref(), Some("rh-m2"));

        // An invocation already out of time starts nothing.
        let late = TimeLeft {
            deadline: Instant::now(),
            per_message: Duration::from_millis(1),
        };
        let event = batch(vec![message("m4", r#"{"job_id":"d"}"#, 1)]);
        let (response, _) = process_batch(event, policy(5), late, |_: JobMessage, _| async {
            panic!("started without time to finish")
        })
        .await;
        assert_eq!(response.batch_item_failures.len(), 1);
    }

    #[tokio::test]
    async fn one_poison_message_fails_alone() {
        let event = batch(vec![
            message("m1", r#"{"job_id":"a"}"#, 1),
            message("m2", "{broken", 3),
            message("m3", r#"{"job_id":"b"}"#, 1),
        ]);
        let mut seen = Vec::new();
        let (response, failed) = process_batch(
            event,
            policy(5),
            plenty(),
            |job: JobMessage, _message_id| {
                seen.push(job.job_id);
                async { Outcome::Done }
            },
        )
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
            plenty(),
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
