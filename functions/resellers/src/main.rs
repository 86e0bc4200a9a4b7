//! The reseller channel: `POST /v1/customers`, `GET /v1/customers`,
//! `GET /v1/customers/{id}` (reseller API key), and
//! `POST /v1/resellers/events`, the signed inbound webhook of a reseller's shop.

fn main() -> Result<(), lambda_http::Error> {
    meterai::lambda::serve_http(meterai::routes::resellers::FUNCTION)
}
