//! Public verification, no login: `GET /v1/verify/{serial}` (JSON, or a small
//! HTML page for a browser), `POST /v1/verify` with a PDF body or
//! `{"upload_id"}`, and `POST /v1/verify/uploads` (a presigned upload for
//! files over Lambda's 6 MB request limit). It never writes to the table.

use crate::error::{codes, Error};
use crate::http::{self, json_response, public_response};
use crate::request;
use crate::{verification, App, Result};
use lambda_http::{http::Method, Body, Request, Response};
use meterai_app::verification as checks;
use meterai_core::serial::SerialRecord;

/// How long a verification answer may be cached (by browsers and a CDN):
/// cheap repeats of a popular serial never reach the table.
const CACHE_SECONDS: u32 = 300;

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
            if http::wants_html(&request) {
                let page = html_page(record.as_ref());
                return Ok(public_response(
                    status,
                    "text/html; charset=utf-8",
                    page,
                    CACHE_SECONDS,
                ));
            }
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
            request::upload_size(&body, app.config.max_document_bytes)?;
            let ticket = verification::new_upload(
                &app.clients,
                &app.config.bucket_name,
                app.config.max_document_bytes,
                app.config.url_ttl,
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
            let report = checks::check_document(app.registry(), &ours, bytes).await?;
            Ok(json_response(200, &report))
        }
        _ => Err(http::no_route(&request)),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The small page a browser gets (from the QR code).
pub fn html_page(record: std::result::Result<&SerialRecord, &Error>) -> String {
    let body = match record {
        Ok(r) => format!(
            "<h1>&#10003; Valid e-Meterai</h1><dl><dt>Serial</dt><dd><code>{}</code></dd>\
             <dt>Stamped</dt><dd>{}</dd><dt>Page</dt><dd>{}</dd><dt>Channel</dt><dd>{}</dd>\
             <dt>SHA-256 of the stamped document</dt><dd><code>{}</code></dd></dl>\
             <p>The document in your hands is this one only if its SHA-256 is the one above \
             (POST the file to /v1/verify to check).</p>",
            escape(&r.serial),
            escape(&r.stamped_at),
            r.page,
            escape(&r.channel),
            escape(&r.sha256)
        ),
        Err(e) => format!(
            "<h1>&#10007; Not a valid e-Meterai</h1><p>{}</p><p><code>{}</code></p>",
            escape(&e.message()),
            e.code()
        ),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>e-Meterai verification</title><style>body{{font-family:sans-serif;\
         max-width:40rem;margin:2rem auto;padding:0 1rem}}dt{{font-weight:bold}}\
         code{{word-break:break-all}}</style></head><body>{body}</body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use meterai_core::Serial;

    #[test]
    fn serials_are_checked_before_any_read_and_pages_escape_text() {
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
        let record = SerialRecord {
            serial: serial.to_string(),
            valid: true,
            stamped_at: "2026-11-22T00:00:00Z".into(),
            sha256: "ab".into(),
            page: 1,
            channel: "<script>".into(),
        };
        let page = html_page(Ok(&record));
        assert!(page.contains(serial.as_str()));
        assert!(page.contains("&lt;script&gt;") && !page.contains("<script>"));
    }
}
