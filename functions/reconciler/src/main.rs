//! Subscribed to the jobs dead-letter queue: every job whose message ends
//! there is failed and its stamp returned, by the system, never by a human;
//! every dead letter is recorded.

fn main() -> Result<(), lambda_runtime::Error> {
    meterai::lambda::serve_queue(meterai::routes::reconciler::FUNCTION)
}
