//! Structured JSON logs, one line per event, with the current span's fields
//! (request id, job id, message id) on every line; and business metrics as
//! CloudWatch Embedded Metric Format lines.
//!
//! A metric is a `tracing` event with the target `metric` (see [`METRIC`]):
//! its numeric fields are the measurements (a name ending `_ms` in
//! milliseconds, any other a count), a `code` field is its one dimension
//! beside the function, and other text (ids) rides along unindexed. The
//! use cases say what happened in the domain's words; only this layer knows
//! how CloudWatch wants it. A small layer rather than a metrics crate: the
//! format is one JSON object, and the crates that write it bring their own
//! registry and flush cycle where an event per outcome is all we emit.

use std::io::Write;
use std::sync::Arc;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{filter, EnvFilter, Layer};

/// The target of metric events: `tracing::info!(target: METRIC, ...)`.
pub use meterai_core::METRIC;
/// The CloudWatch namespace of every business metric.
pub const NAMESPACE: &str = "meterai";
/// The only text field that becomes a dimension (an error code: a few dozen
/// values at most). Anything else of text (an id) would make a metric per
/// value, so it is kept as an unindexed property.
const DIMENSION: &str = "code";

/// Installs the JSON subscriber and the metrics layer. `RUST_LOG` overrides
/// the default `info` level of the logs.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_filter(filter::filter_fn(|m| m.target() != METRIC))
        .with_filter(filter);
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
    let metrics = Emf::new(function, Arc::new(|| Box::new(std::io::stdout()) as _));
    // A second init (tests, warm re-entry) is harmless; ignore its error.
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(metrics.with_filter(filter::filter_fn(|m| m.target() == METRIC)))
        .try_init();
}

/// Where EMF lines go (standard output in a Lambda; a buffer in tests).
pub type Sink = Arc<dyn Fn() -> Box<dyn Write> + Send + Sync>;

/// Writes each metric event as one EMF line.
pub struct Emf {
    function: String,
    sink: Sink,
}

impl Emf {
    pub fn new(function: String, sink: Sink) -> Self {
        Self { function, sink }
    }

    /// The EMF object for one event's fields, at `timestamp_ms`.
    fn line(&self, fields: Map<String, Value>, timestamp_ms: i64) -> Value {
        let mut root = Map::new();
        let mut metrics = Vec::new();
        let mut dimensions = vec![Value::from("Function")];
        for (name, value) in fields {
            match value {
                Value::Number(_) => {
                    let unit = if name.ends_with("_ms") {
                        "Milliseconds"
                    } else {
                        "Count"
                    };
                    metrics.push(serde_json::json!({"Name": name, "Unit": unit}));
                    root.insert(name, value);
                }
                Value::String(_) if name == DIMENSION => {
                    dimensions.push(Value::from(name.clone()));
                    root.insert(name, value);
                }
                other => {
                    root.insert(name, other);
                }
            }
        }
        root.insert("Function".into(), Value::from(self.function.clone()));
        root.insert(
            "_aws".into(),
            serde_json::json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [dimensions],
                    "Metrics": metrics,
                }],
            }),
        );
        Value::Object(root)
    }
}

impl<S: tracing::Subscriber> Layer<S> for Emf {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let line = self.line(fields.0, now_ms);
        // One write per line, so lines from concurrent tasks never interleave.
        let _ = (self.sink)().write_all(format!("{line}\n").as_bytes());
    }
}

/// An event's fields as JSON values.
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Runs `f` with a subscriber whose metrics go to a buffer; the lines.
    fn emitted(f: impl FnOnce()) -> Vec<Value> {
        let buffer = Arc::new(Mutex::new(Vec::<u8>::new()));
        struct Into(Arc<Mutex<Vec<u8>>>);
        impl Write for Into {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink_buffer = buffer.clone();
        let emf = Emf::new(
            "meterai-test-worker".into(),
            Arc::new(move || Box::new(Into(sink_buffer.clone())) as _),
        );
        let subscriber = tracing_subscriber::registry()
            .with(emf.with_filter(filter::filter_fn(|m| m.target() == METRIC)));
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect()
    }

    #[test]
    fn a_metric_event_is_one_emf_line_with_counts_times_and_its_code() {
        let lines = emitted(|| {
            tracing::info!(target: METRIC, stamps_failed = 1, code = "RECT_OFF_PAGE", job_id = "job_1");
            tracing::info!(target: METRIC, stamps_done = 1, accept_to_done_ms = 412);
            tracing::info!("an ordinary log line is not a metric");
        });
        assert_eq!(lines.len(), 2, "{lines:?}");
        let failed = &lines[0];
        let directive = &failed["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "meterai");
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["Function", "code"]])
        );
        assert_eq!(
            directive["Metrics"],
            serde_json::json!([{"Name": "stamps_failed", "Unit": "Count"}])
        );
        assert_eq!(failed["stamps_failed"], 1);
        assert_eq!(failed["code"], "RECT_OFF_PAGE");
        assert_eq!(failed["Function"], "meterai-test-worker");
        // An id is carried, never a dimension.
        assert_eq!(failed["job_id"], "job_1");
        assert!(failed["_aws"]["Timestamp"].as_i64().unwrap() > 1_700_000_000_000);

        let done = &lines[1];
        let metrics = &done["_aws"]["CloudWatchMetrics"][0]["Metrics"];
        assert!(metrics
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"Name": "accept_to_done_ms", "Unit": "Milliseconds"})));
        assert_eq!(
            done["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Function"]])
        );
        assert_eq!(done["accept_to_done_ms"], 412);
    }
}
