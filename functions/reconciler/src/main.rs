//! Subscribed to the jobs dead-letter queue: every job whose message ends
//! there is failed and its stamp returned, by the system, never by a human;
//! every dead letter is recorded.

use meterai::stamping;

fn main() -> Result<(), lambda_runtime::Error> {
    meterai::lambda::serve_queue(|app, event| {
        Box::pin(stamping::reconcile(
            &app.clients,
            app.stamp_settings(),
            event,
        ))
    })
}
