//! Stamping for portal users (bearer JWT) and resellers (bearer API key, with
//! `customer_id` to stamp for a customer): `POST /v1/documents` (presigned
//! upload), `POST /v1/stamps`, `POST /v1/stamps/batch`, `GET /v1/stamps`,
//! `GET /v1/stamps/{id}`.

fn main() -> Result<(), lambda_http::Error> {
    meterai::lambda::serve_http(meterai::routes::stamps::FUNCTION)
}
