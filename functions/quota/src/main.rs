//! A portal user's quota and its ledger: `GET /v1/quota`, `GET /v1/ledger`.

fn main() -> Result<(), lambda_http::Error> {
    meterai::lambda::serve_http(meterai::routes::quota::FUNCTION)
}
