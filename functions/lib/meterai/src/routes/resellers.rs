//! The reseller channel: `POST /v1/customers`, `GET /v1/customers`,
//! `GET /v1/customers/{id}` (reseller API key), and
//! `POST /v1/resellers/events`, the signed inbound webhook of a reseller's shop.

use crate::auth::Caller;
use crate::error::{codes, Error};
use crate::http::{self, header, json_response, query, stored_response};
use crate::idempotency::{self, StoredResponse};
use crate::request;
use crate::{resellers, App, Result};
use lambda_http::{http::Method, Body, Request, Response};
use meterai_core::webhooks;

/// The function: the settings it cannot start without, and its routes.
pub const FUNCTION: crate::lambda::Http = crate::lambda::Http {
    needs: crate::config::Needs {
        webhook_secrets: true,
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
    let clients = &app.clients;
    let segments = http::route_segments(&request);
    if let (&Method::POST, ["resellers", "events"]) = (request.method(), segments.as_slice()) {
        let headers = webhooks::Headers {
            id: header(&request, "webhook-id"),
            timestamp: header(&request, "webhook-timestamp"),
            signature: header(&request, "webhook-signature"),
        };
        let raw = http::body(&request);
        let body = request::json_body(raw)?;
        let (reseller, webhook_id) = resellers::authenticate_event(
            clients,
            app.webhook_secrets()?,
            app.table(),
            &headers,
            raw,
            &body,
            meterai_core::time::now_ms() / 1000,
        )
        .await?;
        // A redelivery of the same webhook-id gets the first answer back.
        let hash = meterai_core::ids::sha256_hex(raw);
        let apply = async {
            let sale = request::sale_event(&body)?;
            let outcome =
                meterai_app::resellers::apply_sale(app.customers(), &reseller, &sale).await?;
            Ok(StoredResponse {
                status: 200,
                body: serde_json::to_string(&outcome).expect("an outcome serializes"),
            })
        };
        let (response, replayed) = idempotency::once(
            app.idempotency_keys(),
            &reseller.pool(),
            "webhook",
            &webhook_id,
            &hash,
            apply,
        )
        .await?;
        return Ok(stored_response(response, replayed));
    }
    // Customers exist only for resellers; a portal user is told so with a 4xx.
    let Caller::Reseller(reseller) = crate::auth::caller_of(&request)? else {
        return Err(Error::not_found(
            codes::FORBIDDEN_FOR_CALLER,
            "customers exist only for resellers",
        ));
    };
    match (request.method().clone(), segments.as_slice()) {
        (Method::POST, ["customers"]) => {
            let body = request::optional_json_body(http::body(&request))?;
            let reference = request::customer_reference(&body)?;
            let customer = meterai_app::resellers::create_customer(
                app.customers(),
                &meterai_app::ports::SystemClock,
                &reseller,
                reference,
            )
            .await?;
            Ok(json_response(201, &customer))
        }
        (Method::GET, ["customers"]) => {
            let limit = request::limit(query(&request, "limit"))?;
            let page = meterai_app::resellers::list_customers(
                app.customers(),
                &reseller,
                limit,
                query(&request, "cursor"),
            )
            .await?;
            Ok(json_response(
                200,
                &serde_json::json!({ "customers": page.items, "next_cursor": page.next_cursor }),
            ))
        }
        (Method::GET, ["customers", customer_id]) => Ok(json_response(
            200,
            &meterai_app::resellers::get_customer(app.customers(), &reseller, customer_id).await?,
        )),
        _ => Err(http::no_route(&request)),
    }
}
