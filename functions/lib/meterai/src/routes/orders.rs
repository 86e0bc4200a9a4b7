//! Orders of stamp quota, for portal users (Cognito access token) and resellers' pools:
//! `POST /v1/orders`, `GET /v1/orders`, `GET /v1/orders/{id}`, `POST /v1/orders/{id}/refund`.

use crate::http::{self, header, json_response, query, stored_response};
use crate::idempotency::{self, StoredResponse};
use crate::{request, App, Result};
use lambda_http::{http::Method, Body, Request, Response};
use meterai_app::orders::{self, RefundOutcome};
use meterai_app::ports::{Clock, SystemClock};

/// The function: the settings it cannot start without, and its routes.
pub const FUNCTION: crate::lambda::Http = crate::lambda::Http {
    needs: crate::config::Needs {
        events: true,
        payment_gateway: true,
        ..crate::config::Needs::NONE
    },
    route,
};

/// The function's routes (its future is boxed here, so the function's
/// binary compiles none of this).
pub fn route(app: &'static App, request: Request) -> crate::lambda::Answer {
    Box::pin(handle(app, request))
}

async fn handle(app: &'static App, request: Request) -> Result<Response<Body>> {
    let account = crate::auth::caller_of(&request)?.account();
    let rules = &app.config.order_rules;
    let store = app.orders();
    let clock = SystemClock;
    match (
        request.method().clone(),
        http::route_segments(&request).as_slice(),
    ) {
        (Method::POST, ["orders"]) => {
            let key = idempotency::parse_key(header(&request, "idempotency-key"))?;
            let body = request::json_body(http::body(&request))?;
            let quantity = request::order_quantity(&body, rules)?;
            let hash = idempotency::request_hash("POST /v1/orders", &body);
            let create = async {
                let order =
                    orders::create(store, app.gateway(), &clock, rules, &account, quantity).await?;
                Ok(StoredResponse {
                    status: 201,
                    body: serde_json::to_string(&order.view(clock.now_ms()))
                        .expect("order serializes"),
                })
            };
            let (response, replayed) = idempotency::once(
                app.idempotency_keys(),
                &account,
                "orders",
                &key,
                &hash,
                create,
            )
            .await?;
            Ok(stored_response(response, replayed))
        }
        (Method::GET, ["orders"]) => {
            let limit = request::limit(query(&request, "limit"))?;
            let page = orders::list(store, &account, limit, query(&request, "cursor")).await?;
            let now = clock.now_ms();
            let views: Vec<_> = page.items.iter().map(|o| o.view(now)).collect();
            Ok(json_response(
                200,
                &serde_json::json!({ "orders": views, "next_cursor": page.next_cursor }),
            ))
        }
        (Method::GET, ["orders", order_id]) => {
            let order =
                meterai_app::payments::read_order(&app.payment_ports(), &account, order_id).await?;
            Ok(json_response(200, &order.view(clock.now_ms())))
        }
        (Method::POST, ["orders", order_id, "refund"]) => {
            let body = request::optional_json_body(http::body(&request))?;
            let requested = request::refund_quantity(&body)?;
            let outbox = app.event_outbox();
            let refund = async {
                let outcome =
                    orders::refund(store, outbox, &clock, rules, &account, order_id, requested)
                        .await?;
                let status = match outcome {
                    RefundOutcome::Created(_) => 201,
                    RefundOutcome::Existing(_) => 200,
                };
                Ok(StoredResponse {
                    status,
                    body: serde_json::to_string(&outcome.refund().view())
                        .expect("refund serializes"),
                })
            };
            // The key is optional here: repeating a refund is harmless anyway.
            let (response, replayed) = match header(&request, "idempotency-key") {
                None => (refund.await?, false),
                Some(raw) => {
                    let key = idempotency::parse_key(Some(raw))?;
                    let hash = idempotency::request_hash(
                        &format!("POST /v1/orders/{order_id}/refund"),
                        &body,
                    );
                    idempotency::once(
                        app.idempotency_keys(),
                        &account,
                        "refunds",
                        &key,
                        &hash,
                        refund,
                    )
                    .await?
                }
            };
            Ok(stored_response(response, replayed))
        }
        _ => Err(http::no_route(&request)),
    }
}
