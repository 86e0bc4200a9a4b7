//! The stamp worker: subscribed to the jobs queue, reports partial batch failures.

fn main() -> Result<(), lambda_runtime::Error> {
    meterai::lambda::serve_queue(meterai::routes::worker::FUNCTION)
}
