//! Stamping for portal users (Cognito access token) and resellers (bearer API key, with
//! `customer_id` to stamp for a customer): `POST /v1/documents` (presigned
//! upload), `POST /v1/stamps`, `POST /v1/stamps/batch`, `GET /v1/stamps`,
//! `GET /v1/stamps/{id}`.

use crate::error::{codes, Error};
use crate::http::{self, header, json_response, query, stored_response};
use crate::idempotency::{self, StoredResponse};
use crate::request;
use crate::{App, Result};
use lambda_http::{http::Method, Body, Request, Response};
use meterai_app::stamping;

/// Most stamp requests in one batch call.
const BATCH_LIMIT: usize = 100;

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
    let caller = crate::auth::caller_of(&request)?;
    let account = caller.account();
    let settings = app.stamp_settings();
    let ports = &app.stamp_ports();
    match (
        request.method().clone(),
        http::route_segments(&request).as_slice(),
    ) {
        (Method::POST, ["documents"]) => {
            let body = request::json_body(http::body(&request))?;
            let filename = request::upload(&body, settings.limits.max_bytes)?;
            let ticket = stamping::new_upload(ports, settings, &account, filename).await?;
            Ok(json_response(201, &ticket))
        }
        (Method::POST, ["stamps"]) => {
            let key = idempotency::parse_key(header(&request, "idempotency-key"))?;
            let body = request::json_body(http::body(&request))?;
            let stamp_request = request::stamp_request(&body)?;
            let hash = idempotency::request_hash("POST /v1/stamps", &body);
            let accept = async {
                let actor = stamping::actor(
                    app.customers(),
                    &caller,
                    stamp_request.customer_id.as_deref(),
                )
                .await?;
                let accepted = stamping::accept(ports, settings, &actor, &stamp_request).await?;
                Ok(StoredResponse {
                    status: 202,
                    body: serde_json::to_string(&accepted).expect("serializes"),
                })
            };
            let (response, replayed) = idempotency::once(
                app.idempotency_keys(),
                &account,
                "stamps",
                &key,
                &hash,
                accept,
            )
            .await?;
            Ok(stored_response(response, replayed))
        }
        (Method::POST, ["stamps", "batch"]) => {
            let key = idempotency::parse_key(header(&request, "idempotency-key"))?;
            let body = request::json_body(http::body(&request))?;
            let items = body
                .get("requests")
                .and_then(|r| r.as_array())
                .ok_or_else(|| {
                    Error::invalid(codes::BAD_REQUEST, "body must be {\"requests\": [...]}")
                })?;
            if items.is_empty() || items.len() > BATCH_LIMIT {
                return Err(Error::invalid(
                    codes::TOO_MANY_ITEMS,
                    format!("a batch holds 1 to {BATCH_LIMIT} requests"),
                ));
            }
            let hash = idempotency::request_hash("POST /v1/stamps/batch", &body);
            let batch = async {
                let mut results = Vec::with_capacity(items.len());
                for item in items {
                    let outcome = async {
                        let r = request::stamp_request(item)?;
                        let actor =
                            stamping::actor(app.customers(), &caller, r.customer_id.as_deref())
                                .await?;
                        stamping::accept(ports, settings, &actor, &r).await
                    }
                    .await;
                    results.push(match outcome {
                        Ok(accepted) => serde_json::json!({ "status": 202, "job": accepted }),
                        Err(e) if e.is_client_error() => {
                            let body = crate::errors::error_body(&e, "");
                            serde_json::json!({ "status": crate::errors::status_of(&e), "error": body.error })
                        }
                        Err(e) => return Err(e),
                    });
                }
                Ok(StoredResponse {
                    status: 200,
                    body: serde_json::json!({ "results": results }).to_string(),
                })
            };
            let (response, replayed) = idempotency::once(
                app.idempotency_keys(),
                &account,
                "stamps-batch",
                &key,
                &hash,
                batch,
            )
            .await?;
            Ok(stored_response(response, replayed))
        }
        (Method::GET, ["stamps"]) => {
            let limit = request::limit(query(&request, "limit"))?;
            let page =
                stamping::list(ports.jobs, &account, limit, query(&request, "cursor")).await?;
            Ok(json_response(
                200,
                &serde_json::json!({ "jobs": page.items, "next_cursor": page.next_cursor }),
            ))
        }
        (Method::GET, ["stamps", job_id]) => Ok(json_response(
            200,
            &stamping::get(ports, settings, &account, job_id).await?,
        )),
        _ => Err(http::no_route(&request)),
    }
}
