//! Scheduled: orders still pending are checked with the payment gateway.

fn main() -> Result<(), lambda_runtime::Error> {
    meterai::lambda::serve_scheduled(meterai::routes::settlements::FUNCTION)
}
