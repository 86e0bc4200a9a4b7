//! Public verification: by serial number, or by the stamped file itself.
//!
//! A serial is checked for form and check character before any read, so a
//! typo costs no database access. A file is searched for our stamps (the
//! widget's `/NM (e-meterai-{serial})`); each serial is looked up, and the
//! file is compared with the registered SHA-256: the whole file (`exact`), or
//! a prefix of it ending at an end-of-file marker (`appended`: the stamped
//! document is intact and later incremental updates were added, as a
//! signature after stamping does), else `modified`. Each stamp's signature is
//! checked against our certificate.

use meterai_core::error::codes;
use meterai_core::serial::SerialRecord;
use meterai_core::{Error, Result, Serial};
use meterai_pdf::signing::Chain;
use meterai_pdf::stamp::signatures::SignedFile;
use meterai_pdf::stamp::Limits;
use meterai_pdf::verify::{
    check_signature, integrity, revision_hashes, stamp_serials, Integrity, SignatureReport,
};
use serde::Serialize;

use crate::ports::Registry;

/// Most stamps looked up for one file (a crafted file could list thousands).
pub const MAX_STAMPS: usize = 20;

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
pub async fn lookup(registry: &dyn Registry, serial: &Serial) -> Result<SerialRecord> {
    registry.bound(serial).await?.ok_or_else(|| {
        Error::not_found(
            codes::SERIAL_NOT_FOUND,
            format!("no stamped document carries serial {serial}"),
        )
    })
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

/// What a file says about its stamps.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DocumentReport {
    pub sha256: String,
    pub bytes: usize,
    pub stamped: bool,
    pub stamps: Vec<FoundStamp>,
}

/// What a file says about its stamps without asking the registry: the
/// CPU-bound half of a check (parsing, hashing, each candidate stamp's
/// signature), which the verify function runs under a deadline. The
/// registry's half ([`judge`]) is outside it, so a slow table is told as the
/// dependency it is, never as a file too complex to read.
#[derive(Debug, Clone)]
pub struct Inspected {
    bytes: usize,
    /// The SHA-256 of each revision (prefix ending at an end-of-file marker),
    /// the whole file last.
    hashes: Vec<(usize, String)>,
    /// Each well-formed serial found (at most [`MAX_STAMPS`]) and what its
    /// signature says.
    candidates: Vec<(Serial, SignatureReport)>,
    /// Serials that fail their check character.
    malformed: Vec<String>,
}

impl Inspected {
    /// Each well-formed serial found and what its signature says.
    pub fn candidates(&self) -> &[(Serial, SignatureReport)] {
        &self.candidates
    }
}

/// Reads the file: its revisions' hashes, our stamps in it, and each one's
/// signature against our certificate.
pub fn inspect(ours: &Chain, bytes: &[u8]) -> Result<Inspected> {
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
    let candidates = serials
        .into_iter()
        .take(MAX_STAMPS)
        .map(|serial| {
            let signature = match &file {
                Ok(file) => check_signature(file, &signatures, &serial, ours, &limits),
                Err(_) => SignatureReport::without("unreadable"),
            };
            (serial, signature)
        })
        .collect();
    Ok(Inspected {
        bytes: bytes.len(),
        hashes,
        candidates,
        malformed: malformed.into_iter().take(MAX_STAMPS).collect(),
    })
}

/// Looks each stamp of an inspected file up in the registry and compares
/// the file with the registered hash.
pub async fn judge(registry: &dyn Registry, inspected: Inspected) -> Result<DocumentReport> {
    let Inspected {
        bytes,
        hashes,
        candidates,
        malformed,
    } = inspected;
    let mut stamps = Vec::new();
    for (serial, signature) in candidates {
        let found = match registry.bound(&serial).await? {
            Some(record) => FoundStamp {
                serial: serial.to_string(),
                status: "valid",
                integrity: Some(integrity(bytes, &hashes, &record.sha256)),
                record: Some(record),
                signature: Some(signature),
            },
            None => FoundStamp {
                serial: serial.to_string(),
                status: "unknown",
                integrity: None,
                record: None,
                signature: None,
            },
        };
        stamps.push(found);
    }
    stamps.extend(malformed.into_iter().map(|m| FoundStamp {
        serial: m,
        status: "invalid_serial",
        integrity: None,
        record: None,
        signature: None,
    }));
    Ok(DocumentReport {
        sha256: hashes.last().map(|(_, h)| h.clone()).unwrap_or_default(),
        bytes,
        stamped: !stamps.is_empty(),
        stamps,
    })
}

/// Finds our stamps in a PDF and checks each against the registry and its
/// signature against our certificate (both halves, one after the other).
pub async fn check_document(
    registry: &dyn Registry,
    ours: &Chain,
    bytes: &[u8],
) -> Result<DocumentReport> {
    judge(registry, inspect(ours, bytes)?).await
}
