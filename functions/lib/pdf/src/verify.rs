//! What a stamped file says about itself, without any registry: the serials
//! of our stamps in it, the hash of every revision (to tell the stamped
//! document from one with later updates or changes), and each stamp's PAdES
//! signature judged against our certificate.

use std::collections::HashSet;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::signing::Chain;
use crate::stamp::signatures::{FoundSignature, LaterChanges, SignedFile};
use crate::stamp::{Limits, Serial};

const MARKER: &[u8] = b"e-meterai-";

/// At most this many serials (and as many malformed candidates) are taken
/// from one file: a real document carries a handful of stamps, and a file
/// made of nothing but markers must cost no more than reading it.
pub const MAX_SERIALS: usize = 64;

/// At most this many revisions (prefixes ending at `%%EOF`) are hashed; a
/// stamped document is judged against the first ones, and the whole file's
/// hash is always taken.
pub const MAX_REVISIONS: usize = 1024;

/// Serial-shaped strings after our marker, in order of appearance, unique,
/// at most [`MAX_SERIALS`] of each kind. Returns well-formed serials and the
/// malformed candidates separately. One pass over the bytes.
pub fn find_serials(bytes: &[u8]) -> (Vec<Serial>, Vec<String>) {
    let mut serials: Vec<Serial> = Vec::new();
    let mut malformed: Vec<String> = Vec::new();
    // Seen so far, while there is room: serials as parsed (one serial
    // written two ways is one), malformed candidates as written.
    let mut seen_serials: HashSet<Serial> = HashSet::new();
    let mut seen_malformed: HashSet<&[u8]> = HashSet::new();
    for found in memchr::memmem::find_iter(bytes, MARKER) {
        let (serials_full, malformed_full) =
            (serials.len() >= MAX_SERIALS, malformed.len() >= MAX_SERIALS);
        if serials_full && malformed_full {
            break;
        }
        let start = found + MARKER.len();
        let length = bytes[start..]
            .iter()
            .take(meterai_core::serial::SERIAL_LEN)
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        let raw = &bytes[start..start + length];
        let candidate: String = raw.iter().map(|b| *b as char).collect();
        match Serial::parse(&candidate) {
            Some(serial) if !serials_full && seen_serials.insert(serial.clone()) => {
                serials.push(serial);
            }
            None if !malformed_full && seen_malformed.insert(raw) => malformed.push(candidate),
            _ => {}
        }
    }
    (serials, malformed)
}

/// SHA-256 of the whole file and of every prefix that ends at a `%%EOF`
/// marker (with or without its end-of-line; the first [`MAX_REVISIONS`]),
/// in one pass over the bytes.
pub fn revision_hashes(bytes: &[u8]) -> Vec<(usize, String)> {
    let mut hashes = Vec::new();
    let mut hasher = Sha256::new();
    let mut done = 0;
    for (revision, found) in memchr::memmem::find_iter(bytes, b"%%EOF").enumerate() {
        if revision >= MAX_REVISIONS {
            break;
        }
        let end = found + 5;
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

/// How a file of `file_len` bytes, with these revision hashes, relates to
/// the document registered under `registered`.
pub fn integrity(file_len: usize, hashes: &[(usize, String)], registered: &str) -> Integrity {
    match hashes.iter().find(|(_, h)| h == registered) {
        Some((len, _)) if *len == file_len => Integrity::Exact,
        Some(_) => Integrity::Appended,
        None => Integrity::Modified,
    }
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
    pub fn without(status: &'static str) -> Self {
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
    fn a_file_of_nothing_but_markers_yields_a_bounded_answer() {
        // 100,000 distinct malformed candidates and 500 distinct serials
        // after them, then 100,000 revision markers: what is kept is capped.
        let mut hostile = b"%PDF-1.7\n".to_vec();
        for i in 0..100_000 {
            hostile.extend_from_slice(format!("e-meterai-{i:x}\n").as_bytes());
        }
        let serials: Vec<Serial> = (0..500).map(|_| Serial::generate()).collect();
        for serial in &serials {
            hostile.extend_from_slice(format!("(e-meterai-{serial})\n").as_bytes());
        }
        hostile.extend_from_slice(&b"%%EOF\n".repeat(100_000));
        let (found, malformed) = find_serials(&hostile);
        assert_eq!(malformed.len(), MAX_SERIALS);
        // One serial written in lower case is the same serial.
        let twice = format!(
            "(e-meterai-{}) (e-meterai-{})",
            serials[0],
            serials[0].as_str().to_ascii_lowercase()
        );
        assert_eq!(find_serials(twice.as_bytes()).0, vec![serials[0].clone()]);
        assert_eq!(malformed[0], "0", "in order of appearance");
        // The malformed cap does not hide the real serials after them.
        assert_eq!(found.len(), MAX_SERIALS);
        assert_eq!(found[..], serials[..MAX_SERIALS]);
        let hashes = revision_hashes(&hostile);
        // The first MAX_REVISIONS revisions, each with and without its
        // end-of-line, and the whole file.
        assert_eq!(hashes.len(), 2 * MAX_REVISIONS + 1);
        // The whole file's hash is always the last.
        assert_eq!(hashes.last().unwrap().0, hostile.len());
        assert_eq!(
            hashes.last().unwrap().1,
            hex::encode(Sha256::digest(&hostile))
        );
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
        assert_eq!(
            integrity(file.len(), &hashes, &registered),
            Integrity::Exact
        );

        // A later incremental update (a signature after stamping).
        let mut appended = file.clone();
        appended.extend_from_slice(b"9 0 obj\n<< >>\nendobj\nstartxref\n0\n%%EOF\n");
        let hashes = revision_hashes(&appended);
        assert_eq!(
            integrity(appended.len(), &hashes, &registered),
            Integrity::Appended
        );

        // One byte changed inside the stamped document.
        let mut changed = file.clone();
        let i = changed.len() / 2;
        changed[i] ^= 0x01;
        let hashes = revision_hashes(&changed);
        assert_eq!(
            integrity(changed.len(), &hashes, &registered),
            Integrity::Modified
        );

        // Cut short: the stamped document is not there.
        let cut = &file[..file.len() - 10];
        assert_eq!(
            integrity(cut.len(), &revision_hashes(cut), &registered),
            Integrity::Modified
        );
    }
}
