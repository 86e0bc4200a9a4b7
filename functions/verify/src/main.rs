//! Public verification, no login: `GET /v1/verify/{serial}` (JSON, or a small
//! HTML page for a browser), `POST /v1/verify` with a PDF body or
//! `{"upload_id"}`, and `POST /v1/verify/uploads` (a presigned upload for
//! files over Lambda's 6 MB request limit). It never writes to the table.

fn main() -> Result<(), lambda_http::Error> {
    meterai::lambda::serve_http(meterai::routes::verify::FUNCTION)
}
