//! The payment gateway's notification callback: `POST /v1/payments/notifications`.
//! Authenticated by the notification's own signature, not by a user token;
//! what it says happened is only a reason to ask the gateway (see
//! `meterai_app::payments`). If the gateway cannot be asked, the answer is
//! 503 and Midtrans sends the notification again; the reconciler also
//! checks the order.

use crate::error::{codes, Error};
use crate::http::{self, json_response};
use crate::payments::Midtrans;
use crate::request;
use crate::{App, Result};
use lambda_http::{http::Method, Body, Request, Response};
use meterai_app::payments;

/// The function: the settings it cannot start without, and its routes.
pub const FUNCTION: crate::lambda::Http = crate::lambda::Http {
    needs: crate::config::Needs {
        payment_gateway: true,
        events: true,
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
    match (
        request.method().clone(),
        http::route_segments(&request).as_slice(),
    ) {
        (Method::POST, ["payments", "notifications"]) => {
            let body = http::body(&request);
            if body.len() > request::JSON_BODY_LIMIT {
                return Err(Error::too_large(
                    codes::PAYLOAD_TOO_LARGE,
                    "notification is too large",
                ));
            }
            let server_key = app
                .config
                .midtrans_server_key
                .as_deref()
                .ok_or_else(|| Error::Misconfigured("MIDTRANS_SERVER_KEY is not set".into()))?;
            let receipt = payments::handle_notification(
                &app.payment_ports(),
                &Midtrans::new(server_key),
                body,
            )
            .await?;
            Ok(json_response(200, &receipt))
        }
        _ => Err(http::no_route(&request)),
    }
}
