//! Public verification, no login: `GET /v1/verify/{serial}` (JSON; a browser
//! is sent to the portal's verification page), `POST /v1/verify` with a PDF body or
//! `{"upload_id"}`, and `POST /v1/verify/uploads` (a presigned upload for
//! files over Lambda's 6 MB request limit). It never writes to the table.

use crate::error::{codes, Error};
use crate::http::{self, json_response, public_response};
use crate::request;
use crate::{verification, App, Result};
use lambda_http::{http::Method, Body, Request, Response};
use meterai_app::cpu::{self, Unfinished};
use meterai_app::verification as checks;
use std::time::Duration;

/// How long a verification answer may be cached (by browsers and a CDN):
/// cheap repeats of a popular serial never reach the table.
const CACHE_SECONDS: u32 = 300;
/// The longest a file may take to be read and judged (the function's
/// timeout is 29 s; an honest 10 MB file takes well under a second).
const CHECK_BUDGET: Duration = Duration::from_secs(10);

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
        (Method::GET, ["verify", raw]) => {
            // A browser (the QR code) is sent to the portal's verification
            // page, which says it in the reader's language.
            if http::wants_html(&request) {
                return Ok(portal_redirect(checks::parse_serial(raw).ok()));
            }
            let record = match checks::parse_serial(raw) {
                Ok(serial) => checks::lookup(app.registry(), &serial).await,
                Err(e) => Err(e),
            };
            if let Err(e) = &record {
                if !e.is_client_error() {
                    return Err(record.unwrap_err());
                }
            }
            let status = record
                .as_ref()
                .map(|_| 200)
                .unwrap_or_else(crate::errors::status_of);
            let text = match &record {
                Ok(r) => serde_json::to_string(r),
                Err(e) => serde_json::to_string(&crate::errors::error_body(e, "")),
            }
            .expect("serializes");
            Ok(public_response(
                status,
                "application/json",
                text,
                CACHE_SECONDS,
            ))
        }
        (Method::POST, ["verify", "uploads"]) => {
            let body = request::json_body(http::body(&request))?;
            request::json_object(&body, &["size"])?;
            let size = request::upload_size(&body, app.config.max_document_bytes)?;
            let ticket = verification::new_upload(
                &app.clients,
                &app.config.bucket_name,
                app.config.max_document_bytes,
                app.config.url_ttl,
                size,
            )
            .await?;
            Ok(json_response(201, &ticket))
        }
        (Method::POST, ["verify"]) => {
            let limit = app.config.max_document_bytes;
            let is_json = http::header(&request, "content-type")
                .is_some_and(|t| t.starts_with("application/json"));
            let uploaded;
            let bytes = if is_json {
                let body = request::json_body(http::body(&request))?;
                let object = request::json_object(&body, &["upload_id"])?;
                let upload_id = object
                    .get("upload_id")
                    .and_then(|v| v.as_str())
                    .unwrap_or("");
                uploaded = verification::read_upload(
                    &app.clients,
                    &app.config.bucket_name,
                    upload_id,
                    limit,
                )
                .await?;
                &uploaded[..]
            } else {
                http::body(&request)
            };
            if bytes.len() > limit {
                return Err(Error::too_large(
                    codes::DOCUMENT_TOO_LARGE,
                    format!("the body is {} bytes; the limit is {limit}", bytes.len()),
                ));
            }
            let ours = app.signing_chain().await?;
            // Parsed on a blocking thread under a deadline: a hostile file
            // costs this request at most CHECK_BUDGET, and while its parse
            // runs on, this instance refuses new files instead of sharing
            // the CPU with it.
            // The registry is asked afterwards, outside the deadline: a slow
            // table is a dependency's failure, not a file too complex.
            let bytes = bytes.to_vec();
            let inspect = move || checks::inspect(&ours, &bytes);
            let inspected =
                match cpu::bounded(app.cpu(), cpu::SLOT_WAIT, CHECK_BUDGET, inspect).await {
                    Ok(inspected) => inspected?,
                    Err(Unfinished::Busy) => {
                        return Err(Error::busy(
                            codes::VERIFIER_BUSY,
                            "this verifier is busy with another file; retry",
                        ))
                    }
                    Err(Unfinished::TimedOut) | Err(Unfinished::Crashed(_)) => {
                        return Err(Error::rejected(
                            codes::PDF_TOO_COMPLEX,
                            "the file takes too long to read",
                        ))
                    }
                };
            let report = checks::judge(app.registry(), inspected).await?;
            Ok(json_response(200, &report))
        }
        _ => Err(http::no_route(&request)),
    }
}

/// `303` to the portal's verification page for `serial` (the page asks
/// this API for the record); a malformed serial opens the empty page.
fn portal_redirect(serial: Option<meterai_core::Serial>) -> Response<Body> {
    let location = match serial {
        Some(serial) => format!("/#/verifikasi/{serial}"),
        None => "/#/verifikasi".to_string(),
    };
    Response::builder()
        .status(303)
        .header("location", location)
        .header("cache-control", format!("public, max-age={CACHE_SECONDS}"))
        .header("vary", "accept")
        .body(Body::Empty)
        .expect("static headers build")
}

#[cfg(test)]
mod tests {
    use super::*;
    use meterai_core::Serial;

    #[test]
    fn serials_are_checked_before_any_read_and_browsers_go_to_the_portal() {
        let serial = Serial::generate();
        assert_eq!(
            meterai_app::verification::parse_serial(serial.as_str()).unwrap(),
            serial
        );
        let mut typo = serial.as_str().to_string().into_bytes();
        typo[3] = if typo[3] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            meterai_app::verification::parse_serial(std::str::from_utf8(&typo).unwrap())
                .unwrap_err()
                .code(),
            codes::INVALID_SERIAL
        );
        let to_portal = portal_redirect(Some(serial.clone()));
        assert_eq!(to_portal.status(), 303);
        assert_eq!(
            to_portal.headers()["location"],
            format!("/#/verifikasi/{serial}").as_str()
        );
        assert_eq!(portal_redirect(None).headers()["location"], "/#/verifikasi");
    }
}
