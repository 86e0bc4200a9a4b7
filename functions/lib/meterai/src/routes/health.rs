//! `GET /v1/health`: reachability of the table, the jobs queue and the bucket.

use crate::{health, http, App, Result};
use lambda_http::{http::Method, Body, Request, Response};

/// The function: the settings it cannot start without, and its routes.
pub const FUNCTION: crate::lambda::Http = crate::lambda::Http {
    needs: crate::config::Needs::NONE,
    route,
};

/// The function's routes (its future is boxed here, so the function's
/// binary compiles none of this).
pub fn route(app: &'static App, request: Request) -> crate::lambda::Answer {
    Box::pin(handle(app, request))
}

async fn handle(app: &'static App, request: Request) -> Result<Response<Body>> {
    match (
        request.method().clone(),
        http::route_segments(&request).as_slice(),
    ) {
        (Method::GET, ["health"]) => {
            let c = &app.config;
            let resources = health::Resources {
                table_name: &c.table_name,
                jobs_queue_url: &c.jobs_queue_url,
                bucket_name: &c.bucket_name,
                signing_chain_key: &c.signing_chain_key,
                probe_timeout: c.probe_timeout,
            };
            let report = health::check(&app.clients, &resources).await;
            Ok(http::json_response(status_of(&report), &report))
        }
        _ => Err(http::no_route(&request)),
    }
}

/// 200 when everything answers, 503 otherwise (load balancers and
/// deployment checks read the status, people read the body).
fn status_of(report: &health::HealthReport) -> u16 {
    match report.status {
        health::HealthStatus::Ok => 200,
        health::HealthStatus::Unavailable => 503,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_is_503_and_ok_is_200() {
        let probe = |reachable| health::ResourceHealth {
            name: "t".into(),
            reachable,
            latency_ms: 1,
            error: None,
        };
        let ok = health::HealthReport::from_probes([("table", probe(true))]);
        let down = health::HealthReport::from_probes([("table", probe(false))]);
        assert_eq!((status_of(&ok), status_of(&down)), (200, 503));
    }
}
