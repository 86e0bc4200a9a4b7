//! Orders of stamp quota, for portal users (bearer JWT):
//! `POST /v1/orders`, `GET /v1/orders`, `GET /v1/orders/{id}`, `POST /v1/orders/{id}/refund`.

use lambda_http::{http::Method, Body, Request, Response};
use meterai::http::{self, header, json_response, query, stored_response};
use meterai::idempotency::{self, StoredResponse};
use meterai::orders::{self, RefundOutcome};
use meterai::request;
use meterai::{paging, App, Result};

fn main() -> Result<(), lambda_http::Error> {
    meterai::lambda::serve_http(|app, request| Box::pin(route(app, request)))
}

async fn route(app: &'static App, request: Request) -> Result<Response<Body>> {
    let account = app
        .caller(header(&request, "authorization"))
        .await?
        .account();
    let table = app.table();
    let clients = &app.clients;
    let rules = &app.config.order_rules;
    match (
        request.method().clone(),
        http::route_segments(&request).as_slice(),
    ) {
        (Method::POST, ["orders"]) => {
            let key = idempotency::parse_key(header(&request, "idempotency-key"))?;
            let body = request::json_body(http::body(&request))?;
            let quantity = orders::parse_quantity(&body, rules)?;
            let hash = idempotency::request_hash("POST /v1/orders", &body);
            let create = async {
                let order = orders::create(clients, table, rules, &account, quantity).await?;
                Ok(StoredResponse {
                    status: 201,
                    body: serde_json::to_string(&order).expect("order serializes"),
                })
            };
            let (response, replayed) =
                idempotency::once(clients, table, &account, "orders", &key, &hash, create).await?;
            Ok(stored_response(response, replayed))
        }
        (Method::GET, ["orders"]) => {
            let limit = paging::parse_limit(query(&request, "limit"))?;
            let page =
                orders::list(clients, table, &account, limit, query(&request, "cursor")).await?;
            Ok(json_response(
                200,
                &serde_json::json!({ "orders": page.items, "next_cursor": page.next_cursor }),
            ))
        }
        (Method::GET, ["orders", order_id]) => {
            let order = orders::get(clients, table, &account, order_id).await?;
            Ok(json_response(200, &order))
        }
        (Method::POST, ["orders", order_id, "refund"]) => {
            let bytes = http::body(&request);
            let body = if bytes.iter().all(u8::is_ascii_whitespace) {
                serde_json::json!({})
            } else {
                request::json_body(bytes)?
            };
            let requested = orders::parse_refund_quantity(&body)?;
            let refund = async {
                let (status, refund) =
                    match orders::refund(clients, table, rules, &account, order_id, requested)
                        .await?
                    {
                        RefundOutcome::Created(refund) => (201, refund),
                        RefundOutcome::Existing(refund) => (200, refund),
                    };
                let data = serde_json::to_value(&refund).expect("refund serializes");
                meterai::events::emit_for_account(
                    clients,
                    app.outbox(),
                    account.as_str(),
                    meterai::events::EventType::RefundCompleted,
                    &refund.refund_id,
                    data,
                )
                .await?;
                Ok(StoredResponse {
                    status,
                    body: serde_json::to_string(&refund).expect("refund serializes"),
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
                    idempotency::once(clients, table, &account, "refunds", &key, &hash, refund)
                        .await?
                }
            };
            Ok(stored_response(response, replayed))
        }
        _ => Err(http::no_route(&request)),
    }
}
