//! `GET /v1/health`: reachability of the table, the jobs queue and the bucket.

use lambda_http::{service_fn, Body, Error, Request, RequestExt, Response};
use meterai::{health, http, AwsClients, Config};
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), Error> {
    meterai::telemetry::init();
    let config = Config::from_env()?;
    let clients = AwsClients::new(&config).await;
    let (config, clients) = (&config, &clients);
    lambda_http::run(service_fn(move |request: Request| async move {
        let request_id = request.lambda_context_ref().map(|c| c.request_id.clone()).unwrap_or_default();
        let span = tracing::info_span!("request", %request_id, method = %request.method(), path = %request.uri().path());
        Ok::<Response<Body>, Error>(handle(request, clients, config).instrument(span).await)
    }))
    .await
}

async fn handle(request: Request, clients: &AwsClients, config: &Config) -> Response<Body> {
    if request.method() != lambda_http::http::Method::GET {
        return http::error_response(&meterai::Error::NotFound(format!(
            "no route {} {}",
            request.method(),
            request.uri().path()
        )));
    }
    let report = health::check(clients, config).await;
    tracing::info!(status = report.http_status(), failed = ?report.failed, "health checked");
    http::json_response(report.http_status(), &report)
}
