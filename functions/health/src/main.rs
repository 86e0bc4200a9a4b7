//! `GET /v1/health`: reachability of the table, the jobs queue and the bucket.

fn main() -> Result<(), lambda_http::Error> {
    meterai::lambda::serve_http(meterai::routes::health::FUNCTION)
}
