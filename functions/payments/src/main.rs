//! The payment gateway's notification callback: `POST /v1/payments/notifications`.
//! Authenticated by the notification's own signature, not by a user token.

fn main() -> Result<(), lambda_http::Error> {
    meterai::lambda::serve_http(meterai::routes::payments::FUNCTION)
}
