//! Mail-queue consumer: sends portal users their e-mails through SES.

fn main() -> Result<(), lambda_runtime::Error> {
    meterai::lambda::serve_queue(meterai::routes::mailer::FUNCTION)
}
