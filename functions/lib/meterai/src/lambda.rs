//! The entry points' wiring: a Lambda function's runtime, built once per cold
//! start around the [`App`] (a missing setting stops the cold start). Not
//! generic: the Lambda runtime is compiled once, here, not once per function.

use std::future::Future;
use std::pin::Pin;

use aws_lambda_events::event::apigw::{
    ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request,
};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_http::{service_fn, Body, Request, RequestExt, Response};
use tracing::Instrument;

use crate::app::App;
use crate::config::Needs;
use crate::error::Result;

/// What a route answers: a response or a domain error.
pub type Answer = Pin<Box<dyn Future<Output = Result<Response<Body>>> + Send>>;

/// A function's route table: every request goes through it.
pub type Router = fn(&'static App, Request) -> Answer;

/// An HTTP function: the settings it needs and its route table.
#[derive(Debug, Clone, Copy)]
pub struct Http {
    pub needs: Needs,
    pub route: Router,
}

/// A queue-consuming function: the settings it needs and its batch handler.
#[derive(Debug, Clone, Copy)]
pub struct Queue {
    pub needs: Needs,
    pub handle: BatchHandler,
}

/// API Gateway's authorizer: the settings it needs and its decision.
#[derive(Debug, Clone, Copy)]
pub struct Authorizer {
    pub needs: Needs,
    pub handle: AuthorizerHandler,
}

/// An authorizer's answer to one request.
pub type Decision = Pin<
    Box<
        dyn Future<
                Output = ApiGatewayV2CustomAuthorizerSimpleResponse<
                    std::collections::HashMap<String, serde_json::Value>,
                >,
            > + Send,
    >,
>;

/// An authorizer's handler of one request.
pub type AuthorizerHandler = fn(&'static App, ApiGatewayV2CustomAuthorizerV2Request) -> Decision;

/// A function run on a schedule: the settings it needs and its run.
#[derive(Debug, Clone, Copy)]
pub struct Scheduled {
    pub needs: Needs,
    pub handle: fn(&'static App, serde_json::Value) -> Run,
}

/// What one scheduled run answers (an error makes the scheduler retry).
pub type Run = Pin<Box<dyn Future<Output = Result<serde_json::Value>> + Send>>;

/// Runs an HTTP function: builds the [`App`] once (a missing setting stops
/// the cold start), then serves each request in its own span, mapping errors
/// to JSON responses. Not generic: the Lambda runtime is compiled once, here,
/// not once per function.
pub fn serve_http(function: Http) -> std::result::Result<(), lambda_http::Error> {
    tokio::runtime::Runtime::new()?.block_on(serve_http_async(function))
}

/// Logs, settings and clients of a cold start; the app lives as long as the
/// process. A setting this function needs and lacks stops it here.
async fn cold_start(needs: Needs) -> Result<&'static App> {
    crate::telemetry::init();
    let config = crate::config::Config::from_env()?;
    if let Err(e) = config.check(needs) {
        tracing::error!(error = %e, "cold start stopped: a setting is missing");
        return Err(e);
    }
    let clients = crate::aws::AwsClients::load(config.s3_force_path_style).await;
    let mut config = config;
    if let (true, Some(secret)) = (needs.payment_gateway, &config.midtrans_server_key_secret) {
        match meterai_aws::aws::secret_text(&clients, secret).await {
            Ok(key) => config.midtrans_server_key = Some(key),
            Err(e) => {
                tracing::error!(error = %e, "cold start stopped: the gateway's key cannot be read");
                return Err(e);
            }
        }
    }
    Ok(Box::leak(Box::new(App::new(config, clients))))
}

/// A QR code's verification link: read-only, public, and printed on paper.
fn qr_link(request: &Request) -> bool {
    request.method() == lambda_http::http::Method::GET
        && request.uri().path().starts_with("/v1/verify/")
}

/// Whether the request carries the edge's secret (compared in constant time).
fn came_through_edge(request: &Request, secret: &str) -> bool {
    use subtle::ConstantTimeEq;
    let given = crate::http::header(request, "x-meterai-edge").unwrap_or("");
    !given.is_empty() && bool::from(given.as_bytes().ct_eq(secret.as_bytes()))
}

/// API Gateway's id of this request, when it gave one.
fn api_request_id(request: &Request) -> Option<String> {
    use lambda_http::request::RequestContext;
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.request_id.clone(),
        _ => None,
    }
    .filter(|id| !id.is_empty() && id.len() <= 128)
}

async fn serve_http_async(function: Http) -> std::result::Result<(), lambda_http::Error> {
    let (app, router) = (cold_start(function.needs).await?, function.route);
    let adapter = lambda_http::Adapter::from(service_fn(move |request: Request| async move {
        // The API's request id (API Gateway's `$context.requestId`, the one
        // its access log line carries) is the one we log, answer in
        // `x-request-id` and put in error bodies: one id from the client's
        // quote to the access log to our lines. The invocation's id is kept
        // beside it.
        let invocation = request
            .lambda_context_ref()
            .map(|c| c.request_id.clone())
            .unwrap_or_default();
        let request_id = api_request_id(&request).unwrap_or_else(|| invocation.clone());
        let span = tracing::info_span!("request", %request_id, %invocation, method = %request.method(), path = %request.uri().path());
        let response = async {
            // Behind the edge, a request that skipped it (and its WAF) is
            // answered as if no route were there; a QR code's link
            // (`GET /v1/verify/{serial}`) is always answered, since marks
            // printed before the edge name the API's own host.
            let answer = match app.config.edge_secret.as_deref() {
                Some(secret) if !came_through_edge(&request, secret) && !qr_link(&request) => Err(
                    crate::Error::not_found(crate::error::codes::NOT_FOUND, "no such route"),
                ),
                _ => router(app, request).await,
            };
            let mut response =
                answer.unwrap_or_else(|e| crate::http::error_response(&e, &request_id));
            if let Ok(value) = lambda_http::http::HeaderValue::from_str(&request_id) {
                response.headers_mut().insert("x-request-id", value);
            }
            tracing::info!(status = response.status().as_u16(), "request answered");
            response
        }
        .instrument(span)
        .await;
        Ok::<_, lambda_http::Error>(response)
    }));
    // API Gateway passes the path and query on as the client sent them; a
    // raw `"`, `<` or space makes the request URI unbuildable, and
    // lambda_http panics (a 502 naming Rust internals). Such characters are
    // percent-encoded first, as a browser would have sent them.
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
            let mut adapter = adapter.clone();
            async move {
                let (mut payload, context) = (event.payload, event.context);
                for field in ["rawPath", "rawQueryString"] {
                    if let Some(serde_json::Value::String(raw)) = payload.get_mut(field) {
                        if let std::borrow::Cow::Owned(safe) = crate::http::uri_safe(raw) {
                            *raw = safe;
                        }
                    }
                }
                let request: lambda_http::request::LambdaRequest = serde_json::from_value(payload)?;
                use lambda_http::Service;
                adapter
                    .call(lambda_runtime::LambdaEvent::new(request, context))
                    .await
            }
        },
    ))
    .await
}

/// What a queue consumer answers for one batch.
pub type BatchAnswer = Pin<Box<dyn Future<Output = SqsBatchResponse> + Send>>;

/// A queue consumer's handler of one batch, and when its invocation is cut off.
pub type BatchHandler = fn(&'static App, SqsEvent, std::time::Instant) -> BatchAnswer;

/// The invocation's deadline (milliseconds since the epoch, from the
/// runtime) as an instant on this machine's monotonic clock.
fn deadline_of(context: &lambda_runtime::Context) -> std::time::Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    std::time::Instant::now()
        + std::time::Duration::from_millis(context.deadline.saturating_sub(now_ms))
}

/// Runs a queue-consuming function: builds the [`App`] once (a
/// missing setting stops the cold start), then hands each batch to `handler`
/// in its own span. Not generic: the Lambda runtime is compiled once, here,
/// not once per function.
pub fn serve_queue(function: Queue) -> Result<(), lambda_runtime::Error> {
    let handler = function.handle;
    tokio::runtime::Runtime::new()?.block_on(async move {
        let app = cold_start(function.needs).await?;
        lambda_runtime::run(lambda_runtime::service_fn(
            move |event: lambda_runtime::LambdaEvent<SqsEvent>| async move {
                let span = tracing::info_span!(
                    "batch",
                    request_id = %event.context.request_id,
                    size = event.payload.records.len()
                );
                let deadline = deadline_of(&event.context);
                Ok::<SqsBatchResponse, lambda_runtime::Error>(
                    handler(app, event.payload, deadline).instrument(span).await,
                )
            },
        ))
        .await
    })
}

/// Runs the authorizer: builds the [`App`] once, then decides each request
/// in its own span.
pub fn serve_authorizer(function: Authorizer) -> Result<(), lambda_runtime::Error> {
    let handler = function.handle;
    tokio::runtime::Runtime::new()?.block_on(async move {
        let app = cold_start(function.needs).await?;
        lambda_runtime::run(lambda_runtime::service_fn(
            move |event: lambda_runtime::LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>| async move {
                let span = tracing::info_span!(
                    "authorize",
                    request_id = %event.context.request_id,
                    route = event.payload.route_key.as_deref().unwrap_or_default()
                );
                Ok::<_, lambda_runtime::Error>(handler(app, event.payload).instrument(span).await)
            },
        ))
        .await
    })
}

/// Runs a scheduled function: builds the [`App`] once, then each run in its
/// own span.
pub fn serve_scheduled(function: Scheduled) -> Result<(), lambda_runtime::Error> {
    let handler = function.handle;
    tokio::runtime::Runtime::new()?.block_on(async move {
        let app = cold_start(function.needs).await?;
        lambda_runtime::run(lambda_runtime::service_fn(
            move |event: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
                let span = tracing::info_span!("run", request_id = %event.context.request_id);
                handler(app, event.payload)
                    .instrument(span)
                    .await
                    .map_err(lambda_runtime::Error::from)
            },
        ))
        .await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_header(value: Option<&str>) -> Request {
        let mut builder = lambda_http::http::Request::builder().uri("/v1/quota");
        if let Some(value) = value {
            builder = builder.header("x-meterai-edge", value);
        }
        builder.body(Body::Empty).unwrap()
    }

    #[test]
    fn only_the_edges_secret_lets_a_request_through() {
        let secret = "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t";
        assert!(came_through_edge(&with_header(Some(secret)), secret));
        assert!(!came_through_edge(&with_header(None), secret));
        assert!(!came_through_edge(&with_header(Some("")), secret));
        assert!(!came_through_edge(&with_header(Some(&secret[1..])), secret));
        assert!(!came_through_edge(&with_header(Some("wrong")), secret));
        // A printed QR code's link is answered whatever the header.
        assert!(!qr_link(&with_header(None)));
        let link = lambda_http::http::Request::builder()
            .uri("/v1/verify/AB12CD34EF56GH78IJ90")
            .body(Body::Empty)
            .unwrap();
        assert!(qr_link(&link));
    }
}
