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
use sha2::{Digest, Sha256};

use crate::error::{codes, Error, Result};
use crate::signing::Chain;
use crate::stamp::signatures::{FoundSignature, LaterChanges, SignedFile};
use crate::stamp::{Limits, Serial};
use crate::store::{self, get_n, get_s, s};
use crate::AwsClients;

const MARKER: &[u8] = b"e-meterai-";

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
        Error::bad_request(
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
        stamped_at: store::rfc3339(get_n(item, "stamped_at").unwrap_or(0)),
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
            escape(&e.body().error.message),
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

/// Serial-shaped strings after our marker, in order of appearance, unique.
/// Returns well-formed serials and the malformed candidates separately.
pub fn find_serials(bytes: &[u8]) -> (Vec<Serial>, Vec<String>) {
    let mut serials: Vec<Serial> = Vec::new();
    let mut malformed: Vec<String> = Vec::new();
    let mut at = 0;
    while let Some(found) = find(&bytes[at..], MARKER) {
        let start = at + found + MARKER.len();
        let candidate: String = bytes[start..]
            .iter()
            .take(crate::stamp::serial::SERIAL_LEN)
            .take_while(|b| b.is_ascii_alphanumeric())
            .map(|b| *b as char)
            .collect();
        match Serial::parse(&candidate) {
            Some(serial) if !serials.contains(&serial) => serials.push(serial),
            Some(_) => {}
            None if !malformed.contains(&candidate) => malformed.push(candidate),
            None => {}
        }
        at = start;
    }
    (serials, malformed)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// SHA-256 of the whole file and of every prefix that ends at a `%%EOF`
/// marker (with or without its end-of-line), in one pass over the bytes.
pub fn revision_hashes(bytes: &[u8]) -> Vec<(usize, String)> {
    let mut hashes = Vec::new();
    let mut hasher = Sha256::new();
    let mut done = 0;
    let mut at = 0;
    while let Some(found) = find(&bytes[at..], b"%%EOF") {
        let end = at + found + 5;
        hasher.update(&bytes[done..end]);
        done = end;
        let mut ends = vec![end];
        if bytes[end..].starts_with(b"\r\n") {
            ends.push(end + 2);
        } else if bytes[end..].starts_with(b"\n") || bytes[end..].starts_with(b"\r") {
            ends.push(end + 1);
        }
        for e in ends {
            let mut h = hasher.clone();
            h.update(&bytes[end..e]);
            hashes.push((e, hex::encode(h.finalize())));
        }
        at = end;
    }
    hasher.update(&bytes[done..]);
    hashes.push((bytes.len(), hex::encode(hasher.finalize())));
    hashes.dedup_by_key(|(len, _)| *len);
    hashes
}

/// How a file relates to the document a serial was bound to.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Integrity {
    /// The file is exactly the stamped document.
    Exact,
    /// The stamped document is an untouched prefix; bytes were added after it.
    Appended,
    /// The file is not the stamped document, nor does it start with it.
    Modified,
}

pub fn integrity(bytes: &[u8], hashes: &[(usize, String)], registered: &str) -> Integrity {
    match hashes.iter().find(|(_, h)| h == registered) {
        Some((len, _)) if *len == bytes.len() => Integrity::Exact,
        Some(_) => Integrity::Appended,
        None => Integrity::Modified,
    }
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

/// What the stamp's PAdES signature says.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SignatureReport {
    /// `valid`: intact, ours, for this serial, and only allowed changes
    /// after it; `invalid`: one of those fails; `missing`: no signature
    /// names this serial; `unreadable`: the file or its signature cannot
    /// be parsed.
    pub status: &'static str,
    /// The signed bytes hash to the signed digest and the signature over
    /// it verifies.
    pub intact: bool,
    /// Signed by our certificate (and bound to it by `signingCertificateV2`).
    pub signer_is_ours: bool,
    /// The signature's `/Reason` names this serial, which the registry holds.
    pub serial_matches: bool,
    /// `whole_file` or `prefix` (bytes were added after signing).
    pub covers: &'static str,
    pub later_changes: LaterChanges,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub signed_at: String,
}

impl SignatureReport {
    fn without(status: &'static str) -> Self {
        Self {
            status,
            intact: false,
            signer_is_ours: false,
            serial_matches: false,
            covers: "none",
            later_changes: LaterChanges::None,
            signed_at: String::new(),
        }
    }
}

/// Checks the signature that carries `serial` in `/Reason`.
pub fn check_signature(
    file: &SignedFile<'_>,
    found: &[FoundSignature],
    serial: &Serial,
    ours: &Chain,
    limits: &Limits,
) -> SignatureReport {
    let bytes = file.bytes();
    let reason = format!("e-Meterai {serial}");
    let Some(signature) = found.iter().find(|s| s.reason == reason) else {
        return SignatureReport::without("missing");
    };
    let (Some(digest), Some(signed_len)) = (signature.digest(bytes), signature.signed_len()) else {
        return SignatureReport::without("invalid");
    };
    let Ok(cms) = crate::signing::check(&signature.contents, &digest, ours) else {
        return SignatureReport::without("unreadable");
    };
    let later = file
        .later_changes(signed_len, limits)
        .unwrap_or(LaterChanges::Disallowed);
    let intact = cms.digest_matches && cms.signature_verifies;
    let signer_is_ours = cms.signer_is_ours && cms.certificate_bound;
    let valid = intact
        && signer_is_ours
        && signature.sub_filter == "ETSI.CAdES.detached"
        && later != LaterChanges::Disallowed;
    SignatureReport {
        status: if valid { "valid" } else { "invalid" },
        intact,
        signer_is_ours,
        serial_matches: true,
        covers: if signed_len == bytes.len() {
            "whole_file"
        } else {
            "prefix"
        },
        later_changes: later,
        signed_at: signature.signing_time.clone(),
    }
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
    crate::http::json_object(body, &["size"])?;
    crate::stamping::parse_upload_size(body, max_bytes)?;
    let upload_id = format!("vup_{}", store::nonce());
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
    if !store::is_id(upload_id, "vup_") {
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

/// The serials of our stamps in a file: from the widgets' `/NM` in the raw
/// bytes, and from our signatures' `/Reason` as parsed (the only place they
/// can be read when the document's strings are encrypted).
pub fn stamp_serials(bytes: &[u8], signatures: &[FoundSignature]) -> (Vec<Serial>, Vec<String>) {
    let (mut serials, malformed) = find_serials(bytes);
    for signature in signatures {
        if let Some(serial) = signature
            .reason
            .strip_prefix("e-Meterai ")
            .and_then(Serial::parse)
        {
            if !serials.contains(&serial) {
                serials.push(serial);
            }
        }
    }
    (serials, malformed)
}

/// Finds our stamps in a PDF and checks each against the registry and its
/// signature against our certificate.
pub async fn check_document(
    clients: &AwsClients,
    table: &str,
    ours: &Chain,
    bytes: &[u8],
) -> Result<DocumentReport> {
    if crate::stamp::pdf::sniff(bytes).is_err() {
        return Err(Error::unprocessable(
            codes::NOT_A_PDF,
            "the body is not a PDF",
        ));
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
    use crate::stamp::pdf::{sample_pdf, stamp, Limits, MarkText, Placement};

    fn stamped(serial: &Serial) -> Vec<u8> {
        let original = sample_pdf(2, [0, 0, 595, 842], None);
        stamp(
            &original,
            &Placement {
                page: 1,
                x: 10.0,
                y: 10.0,
                width: 100.0,
                height: 100.0,
            },
            &MarkText {
                serial: serial.as_str(),
                verify_url: "https://meterai.example/v1/verify/x",
            },
            &Limits::default(),
            &crate::signing::tests::test_signer(),
        )
        .unwrap()
        .bytes
    }

    #[test]
    fn finds_the_serial_of_a_stamped_file_and_nothing_in_a_plain_one() {
        let serial = Serial::generate();
        let file = stamped(&serial);
        assert_eq!(find_serials(&file), (vec![serial], vec![]));
        assert_eq!(
            find_serials(&sample_pdf(1, [0, 0, 595, 842], None)),
            (vec![], vec![])
        );
        let forged = b"%PDF-1.7 (e-meterai-0000000000000000000000) (e-meterai-short)".to_vec();
        let (ok, bad) = find_serials(&forged);
        // All zeros happens to carry a valid check character: well-formed, so
        // it is looked up (and found unknown); "short" is not a serial at all.
        assert_eq!(ok, vec![Serial::parse("0000000000000000000000").unwrap()]);
        assert_eq!(bad, vec!["short".to_string()]);
    }

    #[test]
    fn the_signature_is_judged_intact_ours_and_for_this_serial() {
        use crate::signing::Signer;
        let serial = Serial::generate();
        let file = stamped(&serial);
        let ours = crate::signing::tests::test_signer().chain().clone();
        let limits = Limits::default();
        let report = |bytes: &[u8], chain: &Chain| {
            let file = SignedFile::parse(bytes, &limits).unwrap();
            check_signature(&file, &file.signatures(), &serial, chain, &limits)
        };
        let good = report(&file, &ours);
        assert_eq!(
            (good.status, good.intact, good.signer_is_ours, good.covers),
            ("valid", true, true, "whole_file"),
            "{good:?}"
        );
        assert!(good.signed_at.starts_with("D:"));

        // One byte of the original page text changed: not intact.
        let mut changed = file.clone();
        let at = changed.windows(6).position(|w| w == b"page 1").unwrap() + 5;
        changed[at] = b'9';
        let bad = report(&changed, &ours);
        assert_eq!((bad.status, bad.intact), ("invalid", false), "{bad:?}");

        // Another certificate as "ours": intact, but not our signer.
        let other = Chain::from_pem(include_bytes!("../testdata/signing/ca.pem")).unwrap();
        let foreign = report(&file, &other);
        assert_eq!(
            (foreign.status, foreign.intact, foreign.signer_is_ours),
            ("invalid", true, false)
        );

        // A file whose signatures do not name the serial.
        let parsed = SignedFile::parse(&file, &limits).unwrap();
        let missing = check_signature(
            &parsed,
            &parsed.signatures(),
            &Serial::generate(),
            &ours,
            &limits,
        );
        assert_eq!(missing.status, "missing");
    }

    #[test]
    fn tells_exact_appended_and_modified_files_apart() {
        let serial = Serial::generate();
        let file = stamped(&serial);
        let registered = hex::encode(Sha256::digest(&file));
        let hashes = revision_hashes(&file);
        assert_eq!(hashes.last().unwrap().1, registered);
        assert_eq!(integrity(&file, &hashes, &registered), Integrity::Exact);

        // A later incremental update (a signature after stamping).
        let mut appended = file.clone();
        appended.extend_from_slice(b"9 0 obj\n<< >>\nendobj\nstartxref\n0\n%%EOF\n");
        let hashes = revision_hashes(&appended);
        assert_eq!(
            integrity(&appended, &hashes, &registered),
            Integrity::Appended
        );

        // One byte changed inside the stamped document.
        let mut changed = file.clone();
        let i = changed.len() / 2;
        changed[i] ^= 0x01;
        let hashes = revision_hashes(&changed);
        assert_eq!(
            integrity(&changed, &hashes, &registered),
            Integrity::Modified
        );

        // Cut short: the stamped document is not there.
        let cut = &file[..file.len() - 10];
        assert_eq!(
            integrity(cut, &revision_hashes(cut), &registered),
            Integrity::Modified
        );
    }

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
