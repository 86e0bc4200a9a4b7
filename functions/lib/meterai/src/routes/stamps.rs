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

/// A job's read. Until it is final it says when to read again
/// (`Retry-After`, seconds) and carries an `ETag`: a client that sends the tag
/// back (`If-None-Match`) gets a bodiless 304 while nothing changed. A final
/// job has neither (its download link is fresh on every read).
fn job_answer(request: &Request, view: &meterai_core::jobs::JobView) -> Response<Body> {
    use sha2::{Digest, Sha256};
    let Some(after) = view.poll_after_seconds else {
        return json_response(200, view);
    };
    let body = serde_json::to_vec(view).unwrap_or_default();
    let tag = format!("W/\"{}\"", &hex::encode(Sha256::digest(&body))[..24]);
    let unchanged = header(request, "if-none-match")
        .is_some_and(|sent| sent.split(',').any(|t| t.trim() == tag));
    let mut answer = if unchanged {
        Response::builder()
            .status(304)
            .header("cache-control", "no-store")
            .body(Body::Empty)
            .expect("static headers build")
    } else {
        json_response(200, view)
    };
    let headers = answer.headers_mut();
    headers.insert("etag", tag.parse().expect("hex is a header value"));
    headers.insert("retry-after", after.into());
    answer
}

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
            let (filename, size) = request::upload(&body, settings.limits.max_bytes)?;
            let ticket = stamping::new_upload(ports, settings, &account, filename, size).await?;
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
                let seed = idempotency::seed(&account, "stamps", &key, &hash, 0);
                let accepted =
                    stamping::accept(ports, settings, &actor, &stamp_request, &seed).await?;
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
                for (index, item) in items.iter().enumerate() {
                    let seed = idempotency::seed(&account, "stamps-batch", &key, &hash, index);
                    let outcome = async {
                        let r = request::stamp_request(item)?;
                        let actor =
                            stamping::actor(app.customers(), &caller, r.customer_id.as_deref())
                                .await?;
                        stamping::accept(ports, settings, &actor, &r, &seed).await
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
        (Method::GET, ["stamps", job_id]) => Ok(job_answer(
            &request,
            &stamping::get(ports, settings, &account, job_id).await?,
        )),
        _ => Err(http::no_route(&request)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meterai_core::jobs::JobView;

    fn view(status: &str, poll_after: Option<u32>, position: i64) -> JobView {
        let mut view: JobView = serde_json::from_value(serde_json::json!({
            "job_id": "job_01M91GTCDQX3RHEYFHG6HV6EJ2", "status": status,
            "serial": "4H5NEVGNS9GMBN004E8R7K", "page": 1,
            "created_at": "2026-12-04T21:00:00.000Z", "queue_position": position,
        }))
        .unwrap();
        view.poll_after_seconds = poll_after;
        view
    }

    fn read(if_none_match: Option<&str>) -> Request {
        let mut builder = lambda_http::http::Request::builder().uri("/v1/stamps/job_x");
        if let Some(tag) = if_none_match {
            builder = builder.header("if-none-match", tag);
        }
        builder.body(Body::Empty).unwrap()
    }

    #[test]
    fn a_waiting_job_says_when_to_ask_again_and_an_unchanged_one_costs_no_body() {
        let waiting = view("queued", Some(4), 12);
        let first = job_answer(&read(None), &waiting);
        assert_eq!(first.status(), 200);
        assert_eq!(first.headers()["retry-after"], "4");
        let tag = first.headers()["etag"].to_str().unwrap().to_string();
        assert!(tag.starts_with("W/\""), "{tag}");

        let again = job_answer(&read(Some(&tag)), &waiting);
        assert_eq!(again.status(), 304);
        assert!(matches!(again.body(), Body::Empty));
        assert_eq!(again.headers()["etag"], tag.as_str());
        assert_eq!(again.headers()["retry-after"], "4");

        // Another place in the queue is news: the whole answer, a new tag.
        let moved = job_answer(&read(Some(&tag)), &view("queued", Some(2), 3));
        assert_eq!(moved.status(), 200);
        assert_ne!(moved.headers()["etag"], tag.as_str());

        // A final job: neither (its download link is fresh on each read).
        let done = job_answer(&read(Some(&tag)), &view("done", None, 0));
        assert_eq!(done.status(), 200);
        assert!(
            done.headers().get("etag").is_none() && done.headers().get("retry-after").is_none()
        );
    }
}
