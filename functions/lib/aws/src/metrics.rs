//! Metrics put with CloudWatch's PutMetricData, for the operators' alarms.
//!
//! The business path writes its metrics as EMF log lines (no call, no
//! latency; see `meterai::telemetry`). This is for the few that must reach
//! an alarm within a minute whatever reads the logs: a job that reached the
//! dead-letter queue, and the gauges a schedule samples (messages waiting in
//! the dead-letter queues). No dimensions: each name is one series, which
//! is what the template's alarms watch.

use aws_sdk_cloudwatch::error::DisplayErrorContext;
use aws_sdk_cloudwatch::types::{MetricDatum, StandardUnit};
use meterai_core::error::Dependency;

use crate::{AwsClients, Error, Result};

/// The namespace of every meterai metric (EMF lines use it too).
pub const NAMESPACE: &str = "meterai";

/// A count of events.
pub fn count(name: &str, value: u64) -> MetricDatum {
    datum(name, value as f64, StandardUnit::Count)
}

fn datum(name: &str, value: f64, unit: StandardUnit) -> MetricDatum {
    MetricDatum::builder()
        .metric_name(name)
        .value(value)
        .unit(unit)
        .build()
}

/// Puts the data in one call.
pub async fn put(clients: &AwsClients, data: Vec<MetricDatum>) -> Result<()> {
    clients
        .cloudwatch
        .put_metric_data()
        .namespace(NAMESPACE)
        .set_metric_data(Some(data))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| Error::unavailable(Dependency::Metrics, DisplayErrorContext(e)))
}
