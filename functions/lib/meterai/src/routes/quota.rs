//! A portal user's quota and its ledger: `GET /v1/quota`, `GET /v1/ledger`.

use crate::http::{self, json_response, query};
use crate::{quota, request, App, Result};
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
    let account = crate::auth::caller_of(&request)?.account();
    match (
        request.method().clone(),
        http::route_segments(&request).as_slice(),
    ) {
        (Method::GET, ["quota"]) => {
            let balance = quota::balance(&app.clients, app.table(), &account).await?;
            Ok(json_response(200, &balance))
        }
        (Method::GET, ["ledger"]) => {
            let limit = request::limit(query(&request, "limit"))?;
            let page = quota::ledger_page(
                &app.clients,
                app.table(),
                &account,
                limit,
                query(&request, "cursor"),
            )
            .await?;
            Ok(json_response(
                200,
                &serde_json::json!({ "entries": page.items, "next_cursor": page.next_cursor }),
            ))
        }
        _ => Err(http::no_route(&request)),
    }
}
