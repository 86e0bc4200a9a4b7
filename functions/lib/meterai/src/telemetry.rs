//! Structured JSON logs, one line per event, with the current span's fields
//! (request id, job id, message id) on every line.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber. `RUST_LOG` overrides the default `info` level.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests, warm re-entry) is harmless; ignore its error.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .try_init();
}
