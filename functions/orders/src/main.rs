//! Orders of stamp quota, for portal users (bearer JWT) and resellers' pools:
//! `POST /v1/orders`, `GET /v1/orders`, `GET /v1/orders/{id}`, `POST /v1/orders/{id}/refund`.

fn main() -> Result<(), lambda_http::Error> {
    meterai::lambda::serve_http(meterai::routes::orders::FUNCTION)
}
