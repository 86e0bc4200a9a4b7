//! `GET /v1/health`: reachability of the table, the jobs queue and the bucket.

use lambda_http::{http::Method, Body, Request, Response};
use meterai::{health, http, App, Result};

fn main() -> Result<(), lambda_http::Error> {
    meterai::lambda::serve_http(|app, request| Box::pin(route(app, request)))
}

async fn route(app: &'static App, request: Request) -> Result<Response<Body>> {
    match (
        request.method().clone(),
        http::route_segments(&request).as_slice(),
    ) {
        (Method::GET, ["health"]) => {
            let report = health::check(&app.clients, &app.config).await;
            Ok(http::json_response(report.http_status(), &report))
        }
        _ => Err(http::no_route(&request)),
    }
}
