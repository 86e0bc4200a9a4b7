//! Public verification: by serial number, or by the stamped file itself.
//!
//! A serial is checked for form and check character before any read, so a
//! typo costs no database access. A file is searched for our stamps (the
//! widget's `/NM (e-meterai-{serial})`); each serial is looked up, and the
//! file is compared with the registered SHA-256: the whole file (`exact`), or
//! a prefix of it ending at an end-of-file marker (`appended`: the stamped
//! document is intact and later incremental updates were added, as a
//! signature after stamping does), else `modified`.

use aws_sdk_dynamodb::error::DisplayErrorContext;
use serde::Serialize;

use crate::error::{codes, Error, Result};
use crate::store::{get_n, get_s, s};
use crate::AwsClients;
use meterai_pdf::signing::Chain;
use meterai_pdf::stamp::signatures::SignedFile;
use meterai_pdf::stamp::{Limits, Serial};
pub use meterai_pdf::verify::{
    check_signature, find_serials, integrity, revision_hashes, stamp_serials, Integrity,
    SignatureReport,
};

/// A serial's public record. No personal data: no account, no job.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SerialRecord {
    pub serial: String,
    pub valid: bool,
    pub stamped_at: String,
    pub sha256: String,
    pub page: u32,
    pub channel: String,
}

/// Checks the form and check character of a serial (no read).
pub fn parse_serial(raw: &str) -> Result<Serial> {
    Serial::parse(raw).ok_or_else(|| {
        Error::invalid(
            codes::INVALID_SERIAL,
            "not a serial number: 22 characters with a valid check character",
        )
    })
}

/// The record of a serial bound to a stamped document; 404 for one never
/// issued, or issued to a job that has not stamped (or failed).
pub async fn lookup(clients: &AwsClients, table: &str, serial: &Serial) -> Result<SerialRecord> {
    let out = clients
        .dynamodb
        .get_item()
        .table_name(table)
        .key("pk", s(format!("SERIAL#{serial}")))
        .key("sk", s("SERIAL"))
        .send()
        .await
        .map_err(|e| Error::table(DisplayErrorContext(e)))?;
    let not_found = || {
        Error::not_found(
            codes::SERIAL_NOT_FOUND,
            format!("no stamped document carries serial {serial}"),
        )
    };
    let item = out
        .item()
        .filter(|i| get_s(i, "status") == Some("bound"))
        .ok_or_else(not_found)?;
    Ok(SerialRecord {
        serial: serial.to_string(),
        valid: true,
        stamped_at: meterai_core::time::rfc3339(get_n(item, "stamped_at").unwrap_or(0)),
        sha256: get_s(item, "sha256").unwrap_or_default().to_string(),
        page: get_n(item, "page").unwrap_or(0) as u32,
        channel: get_s(item, "channel").unwrap_or("portal").to_string(),
    })
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

/// One stamp found in a file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FoundStamp {
    pub serial: String,
    /// `valid` (registered), `unknown` (well-formed, not registered) or
    /// `invalid_serial` (fails its check character: not ours).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integrity: Option<Integrity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<SerialRecord>,
    /// The stamp's digital signature (registered serials only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureReport>,
}

/// The answer to `POST /v1/verify`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DocumentReport {
    pub sha256: String,
    pub bytes: usize,
    pub stamped: bool,
    pub stamps: Vec<FoundStamp>,
}

/// Where a file to verify is uploaded: `verify/{upload_id}.pdf`, anonymous,
/// deleted after a day (lifecycle).
fn verify_key(upload_id: &str) -> String {
    format!("verify/{upload_id}.pdf")
}

/// The answer to `POST /v1/verify/uploads`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyUpload {
    pub upload_id: String,
    pub upload_url: String,
    pub method: &'static str,
    pub expires_at: String,
    pub max_bytes: usize,
}

/// Presigns an anonymous upload of a file to verify, for files larger than a
/// request body may be (Lambda takes at most 6 MB in a request).
pub async fn new_upload(
    clients: &AwsClients,
    bucket: &str,
    body: &serde_json::Value,
    max_bytes: usize,
    ttl: std::time::Duration,
) -> Result<VerifyUpload> {
    crate::request::json_object(body, &["size"])?;
    crate::request::upload_size(body, max_bytes)?;
    let upload_id = format!("vup_{}", meterai_core::ids::nonce());
    let (upload_url, expires_at) =
        crate::stamping::presign_pdf_put(clients, bucket, &verify_key(&upload_id), ttl).await?;
    Ok(VerifyUpload {
        upload_id,
        upload_url,
        method: "PUT",
        expires_at,
        max_bytes,
    })
}

/// Reads an uploaded file to verify (404 if there is none, 413 if too large).
pub async fn read_upload(
    clients: &AwsClients,
    bucket: &str,
    upload_id: &str,
    max_bytes: usize,
) -> Result<Vec<u8>> {
    let not_found =
        || Error::not_found(codes::DOCUMENT_NOT_FOUND, format!("no upload {upload_id}"));
    if !meterai_core::ids::is_id(upload_id, "vup_") {
        return Err(not_found());
    }
    let object = clients
        .s3
        .get_object()
        .bucket(bucket)
        .key(verify_key(upload_id))
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                not_found()
            } else {
                Error::bucket(aws_sdk_s3::error::DisplayErrorContext(e))
            }
        })?;
    crate::stamping::check_pdf_size(object.content_length().unwrap_or(0) as u64, max_bytes)?;
    let bytes = object
        .body
        .collect()
        .await
        .map_err(Error::bucket)?
        .into_bytes();
    Ok(bytes.to_vec())
}

/// Most stamps looked up for one file (a crafted file could list thousands).
const MAX_STAMPS: usize = 20;

/// Finds our stamps in a PDF and checks each against the registry and its
/// signature against our certificate.
pub async fn check_document(
    clients: &AwsClients,
    table: &str,
    ours: &Chain,
    bytes: &[u8],
) -> Result<DocumentReport> {
    if meterai_pdf::stamp::pdf::sniff(bytes).is_err() {
        return Err(Error::rejected(codes::NOT_A_PDF, "the body is not a PDF"));
    }
    let hashes = revision_hashes(bytes);
    let limits = Limits {
        max_bytes: bytes.len(),
        ..Limits::default()
    };
    // Parsed once: the signatures, then each one's later changes.
    let file = SignedFile::parse(bytes, &limits);
    let signatures = file
        .as_ref()
        .map(SignedFile::signatures)
        .unwrap_or_default();
    let (serials, malformed) = stamp_serials(bytes, &signatures);
    let mut stamps = Vec::new();
    for serial in serials.iter().take(MAX_STAMPS) {
        let found = match lookup(clients, table, serial).await {
            Ok(record) => FoundStamp {
                serial: serial.to_string(),
                status: "valid",
                integrity: Some(integrity(bytes, &hashes, &record.sha256)),
                record: Some(record),
                signature: Some(match &file {
                    Ok(file) => check_signature(file, &signatures, serial, ours, &limits),
                    Err(_) => SignatureReport::without("unreadable"),
                }),
            },
            Err(e) if e.code() == codes::SERIAL_NOT_FOUND => FoundStamp {
                serial: serial.to_string(),
                status: "unknown",
                integrity: None,
                record: None,
                signature: None,
            },
            Err(e) => return Err(e),
        };
        stamps.push(found);
    }
    stamps.extend(malformed.into_iter().take(MAX_STAMPS).map(|m| FoundStamp {
        serial: m,
        status: "invalid_serial",
        integrity: None,
        record: None,
        signature: None,
    }));
    Ok(DocumentReport {
        sha256: hashes.last().map(|(_, h)| h.clone()).unwrap_or_default(),
        bytes: bytes.len(),
        stamped: !stamps.is_empty(),
        stamps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_checked_before_any_read_and_pages_escape_text() {
        let serial = Serial::generate();
        assert_eq!(parse_serial(serial.as_str()).unwrap(), serial);
        let mut typo = serial.as_str().to_string().into_bytes();
        typo[3] = if typo[3] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            parse_serial(std::str::from_utf8(&typo).unwrap())
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
