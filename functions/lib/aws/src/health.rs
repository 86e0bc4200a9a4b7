//! Reachability of the three resources every request depends on.
//!
//! Each probe is the cheapest read the function's role is allowed to make,
//! bounded by a deadline, and all three run at once so a slow dependency costs
//! one timeout, not three.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::aws::AwsClients;

/// The outcome of probing one resource. Its name and error are for the
/// logs: the public answer says only whether it answered and how fast (a
/// queue URL carries the account id, an SDK error names resources).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ResourceHealth {
    /// The resource's name (table name, queue URL, bucket name).
    #[serde(skip)]
    pub name: String,
    pub reachable: bool,
    pub latency_ms: u64,
    #[serde(skip)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
    Unavailable,
}

/// What `GET /v1/health` answers.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HealthReport {
    pub status: HealthStatus,
    /// Keyed by role: `table`, `queue`, `bucket`, `signing_certificate`.
    pub resources: BTreeMap<&'static str, ResourceHealth>,
    /// The roles that failed, so a client need not scan the map.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<&'static str>,
}

impl HealthReport {
    pub fn from_probes(probes: impl IntoIterator<Item = (&'static str, ResourceHealth)>) -> Self {
        let resources: BTreeMap<_, _> = probes.into_iter().collect();
        let failed: Vec<_> = resources
            .iter()
            .filter(|(_, r)| !r.reachable)
            .map(|(role, _)| *role)
            .collect();
        let status = if failed.is_empty() {
            HealthStatus::Ok
        } else {
            HealthStatus::Unavailable
        };
        Self {
            status,
            resources,
            failed,
        }
    }
}

/// Runs one probe under a deadline and records how it went.
pub async fn probe<F, E>(name: &str, deadline: Duration, call: F) -> ResourceHealth
where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let started = Instant::now();
    let outcome = tokio::time::timeout(deadline, call).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    let error = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {} ms", deadline.as_millis())),
    };
    ResourceHealth {
        name: name.to_string(),
        reachable: error.is_none(),
        latency_ms,
        error,
    }
}

/// What a health check probes.
#[derive(Debug, Clone, Copy)]
pub struct Resources<'a> {
    pub table_name: &'a str,
    pub jobs_queue_url: &'a str,
    pub bucket_name: &'a str,
    pub signing_chain_key: &'a str,
    /// Per-probe deadline: a slow dependency is reported, never waited on.
    pub probe_timeout: Duration,
}

/// Probes the table, the jobs queue, the bucket and the signing certificate
/// (without it no stamp can be signed) concurrently.
pub async fn check(clients: &AwsClients, config: &Resources<'_>) -> HealthReport {
    use aws_sdk_dynamodb::error::DisplayErrorContext as Ctx;
    let deadline = config.probe_timeout;
    let table = probe(config.table_name, deadline, async {
        clients
            .dynamodb
            .describe_table()
            .table_name(config.table_name)
            .send()
            .await
            .map(drop)
            .map_err(|e| Ctx(e).to_string())
    });
    let queue = probe(config.jobs_queue_url, deadline, async {
        clients
            .sqs
            .get_queue_attributes()
            .queue_url(config.jobs_queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map(drop)
            .map_err(|e| Ctx(e).to_string())
    });
    let bucket = probe(config.bucket_name, deadline, async {
        clients
            .s3
            .head_bucket()
            .bucket(config.bucket_name)
            .send()
            .await
            .map(drop)
            .map_err(|e| Ctx(e).to_string())
    });
    let chain_name = format!("s3://{}/{}", config.bucket_name, config.signing_chain_key);
    let signing_certificate = probe(&chain_name, deadline, async {
        clients
            .s3
            .head_object()
            .bucket(config.bucket_name)
            .key(config.signing_chain_key)
            .send()
            .await
            .map(drop)
            .map_err(|e| Ctx(e).to_string())
    });
    let (table, queue, bucket, signing_certificate) =
        tokio::join!(table, queue, bucket, signing_certificate);
    for (role, probe) in [
        ("table", &table),
        ("queue", &queue),
        ("bucket", &bucket),
        ("signing_certificate", &signing_certificate),
    ] {
        if let Some(error) = &probe.error {
            tracing::error!(role, name = %probe.name, error = %error, "health probe failed");
        }
    }
    HealthReport::from_probes([
        ("table", table),
        ("queue", queue),
        ("bucket", bucket),
        ("signing_certificate", signing_certificate),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(name: &str) -> ResourceHealth {
        ResourceHealth {
            name: name.into(),
            reachable: true,
            latency_ms: 1,
            error: None,
        }
    }

    #[test]
    fn all_reachable_is_ok_and_lists_every_role() {
        let report = HealthReport::from_probes([
            ("table", up("t")),
            ("queue", up("q")),
            ("bucket", up("b")),
        ]);
        assert_eq!(report.status, HealthStatus::Ok);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["status"], "ok");
        assert_eq!(json["resources"]["table"]["reachable"], true);
        assert_eq!(json["resources"]["queue"]["reachable"], true);
        assert!(
            json["resources"]["bucket"].get("name").is_none(),
            "resource names stay in the logs: {json}"
        );
        assert!(json.get("failed").is_none());
    }

    #[tokio::test]
    async fn one_failure_is_unavailable_and_says_which() {
        let broken = probe("b", Duration::from_secs(1), async {
            Err::<(), _>("NoSuchBucket")
        })
        .await;
        let report =
            HealthReport::from_probes([("table", up("t")), ("queue", up("q")), ("bucket", broken)]);
        assert_eq!(report.status, HealthStatus::Unavailable);
        assert_eq!(report.failed, vec!["bucket"]);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["status"], "unavailable");
        assert_eq!(json["resources"]["bucket"]["reachable"], false);
        assert!(
            !json.to_string().contains("NoSuchBucket"),
            "SDK errors stay in the logs: {json}"
        );
        assert_eq!(
            report.resources["bucket"].error.as_deref(),
            Some("NoSuchBucket")
        );
    }

    #[tokio::test]
    async fn a_probe_that_hangs_is_cut_at_its_deadline() {
        let hung = probe("q", Duration::from_millis(200), async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<(), String>(())
        })
        .await;
        assert!(!hung.reachable);
        assert_eq!(hung.error.as_deref(), Some("no answer within 200 ms"));
    }
}
