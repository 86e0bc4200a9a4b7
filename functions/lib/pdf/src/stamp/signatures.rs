//! Reading the signatures in a PDF back: where each one's signed bytes are,
//! its CMS, and what changed in the file after it was made.

use lopdf::{Dictionary, Document, Object};
use sha2::{Digest, Sha256};

use super::pdf::{load, Limits, StampError};

/// A signature dictionary as found in a file, with its signed bytes located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundSignature {
    /// `/Reason` (ours: `e-Meterai {serial}`).
    pub reason: String,
    pub sub_filter: String,
    /// `/M` as written.
    pub signing_time: String,
    /// `/ByteRange` when it is well formed: `[0 a b c]` with the hole
    /// `a..b` exactly a hex string; `None` otherwise.
    pub byte_range: Option<[usize; 4]>,
    /// The CMS, decoded from the hole itself (not from the parsed object,
    /// which a later revision could have replaced).
    pub contents: Vec<u8>,
}

impl FoundSignature {
    /// End of the signed revision (`b + c`).
    pub fn signed_len(&self) -> Option<usize> {
        self.byte_range.map(|[_, _, b, c]| b + c)
    }

    /// SHA-256 of the signed bytes.
    pub fn digest(&self, bytes: &[u8]) -> Option<[u8; 32]> {
        let [_, a, b, c] = self.byte_range?;
        let mut hasher = Sha256::new();
        hasher.update(&bytes[..a]);
        hasher.update(&bytes[b..b + c]);
        Some(hasher.finalize().into())
    }
}

fn text(dict: &Dictionary, key: &[u8]) -> String {
    match dict.get(key) {
        Ok(Object::String(bytes, _)) => String::from_utf8_lossy(bytes).into_owned(),
        Ok(Object::Name(name)) => String::from_utf8_lossy(name).into_owned(),
        _ => String::new(),
    }
}

fn checked_range(dict: &Dictionary, bytes: &[u8]) -> Option<[usize; 4]> {
    let array = dict.get(b"ByteRange").ok()?.as_array().ok()?;
    if array.len() != 4 {
        return None;
    }
    let mut r = [0usize; 4];
    for (slot, value) in r.iter_mut().zip(array) {
        *slot = usize::try_from(value.as_i64().ok()?).ok()?;
    }
    let [zero, a, b, c] = r;
    let sane = zero == 0
        && a < b
        && b.checked_add(c).is_some_and(|end| end <= bytes.len())
        && bytes[a] == b'<'
        && bytes[b - 1] == b'>'
        && bytes[a + 1..b - 1].iter().all(u8::is_ascii_hexdigit)
        && (b - a) % 2 == 0;
    sane.then_some(r)
}

/// A file parsed once (its latest revision) for everything verification
/// asks of it: its signatures, and what changed after each.
pub struct SignedFile<'a> {
    bytes: &'a [u8],
    doc: Document,
}

impl<'a> SignedFile<'a> {
    pub fn parse(bytes: &'a [u8], limits: &Limits) -> Result<Self, StampError> {
        Ok(Self {
            bytes,
            doc: load(bytes, limits)?,
        })
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Every signature dictionary (`/Type /Sig`, or any with `/ByteRange`
    /// and `/Contents`).
    pub fn signatures(&self) -> Vec<FoundSignature> {
        let bytes = self.bytes;
        let mut found = Vec::new();
        for object in self.doc.objects.values() {
            let Ok(dict) = object.as_dict() else { continue };
            let is_signature = dict.get(b"Type").and_then(Object::as_name).ok() == Some(b"Sig")
                || (dict.has(b"ByteRange") && dict.has(b"Contents"));
            if !is_signature {
                continue;
            }
            let byte_range = checked_range(dict, bytes);
            let contents = byte_range
                .and_then(|[_, a, b, _]| hex::decode(&bytes[a + 1..b - 1]).ok())
                .unwrap_or_default();
            found.push(FoundSignature {
                reason: text(dict, b"Reason"),
                sub_filter: text(dict, b"SubFilter"),
                signing_time: text(dict, b"M"),
                byte_range,
                contents,
            });
        }
        found
    }

    /// Compares the signed revision (`bytes[..signed_len]`, parsed here)
    /// with the file.
    pub fn later_changes(
        &self,
        signed_len: usize,
        limits: &Limits,
    ) -> Result<LaterChanges, StampError> {
        if signed_len >= self.bytes.len() {
            return Ok(LaterChanges::None);
        }
        let before = load(&self.bytes[..signed_len], limits)?;
        Ok(compare(&before, &self.doc))
    }
}

/// Every signature dictionary in the file (parses it).
pub fn signatures(bytes: &[u8], limits: &Limits) -> Result<Vec<FoundSignature>, StampError> {
    Ok(SignedFile::parse(bytes, limits)?.signatures())
}

/// What the updates after a signature did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LaterChanges {
    /// The signature covers the whole file.
    None,
    /// Only what signing again does: new signature fields and their
    /// widgets, the form's field list, flags and default resources, document
    /// info and XMP metadata, validation data (`/DSS`).
    Allowed,
    /// Anything else: page content, other annotations, removed objects.
    Disallowed,
}

/// Compares the signed revision (`bytes[..signed_len]`) with the whole file
/// (parses both).
pub fn later_changes(
    bytes: &[u8],
    signed_len: usize,
    limits: &Limits,
) -> Result<LaterChanges, StampError> {
    SignedFile::parse(bytes, limits)?.later_changes(signed_len, limits)
}

fn compare(before: &Document, after: &Document) -> LaterChanges {
    if before
        .objects
        .keys()
        .any(|id| !after.objects.contains_key(id))
    {
        return LaterChanges::Disallowed;
    }
    let info = after
        .trailer
        .get(b"Info")
        .and_then(Object::as_reference)
        .ok();
    for (id, new) in &after.objects {
        let Some(old) = before.objects.get(id) else {
            // New objects matter only through what now refers to them.
            continue;
        };
        if old == new || Some(*id) == info {
            continue;
        }
        if !allowed_object_change(after, old, new) {
            return LaterChanges::Disallowed;
        }
    }
    LaterChanges::Allowed
}

fn allowed_object_change(after: &Document, old: &Object, new: &Object) -> bool {
    match (old, new) {
        (Object::Dictionary(a), Object::Dictionary(b)) => allowed_dict_change(after, a, b),
        (Object::Array(a), Object::Array(b)) => only_signature_fields_appended(after, a, b),
        _ => false,
    }
}

fn allowed_dict_change(after: &Document, a: &Dictionary, b: &Dictionary) -> bool {
    let keys: std::collections::BTreeSet<&Vec<u8>> =
        a.iter().chain(b.iter()).map(|(k, _)| k).collect();
    keys.into_iter().all(|key| {
        let (old, new) = (a.get(key).ok(), b.get(key).ok());
        if old == new {
            return true;
        }
        match key.as_slice() {
            // DR: the form's default resources, for new fields' appearances.
            b"SigFlags" | b"DSS" | b"Perms" | b"DR" => true,
            b"Metadata" => matches!(new, Some(Object::Reference(_))),
            // A signature field signed later gets its value.
            b"V" => old.is_none() && is_signature_field(after, b),
            b"Annots" | b"Fields" => match (old, new) {
                (None, Some(Object::Array(n))) => only_signature_fields_appended(after, &[], n),
                (Some(Object::Array(o)), Some(Object::Array(n))) => {
                    only_signature_fields_appended(after, o, n)
                }
                // Same indirect array: judged as its own object.
                _ => false,
            },
            b"AcroForm" => match (old, new) {
                (None, Some(Object::Dictionary(n))) => {
                    allowed_dict_change(after, &Dictionary::new(), n)
                }
                (Some(Object::Dictionary(o)), Some(Object::Dictionary(n))) => {
                    allowed_dict_change(after, o, n)
                }
                (None, Some(Object::Reference(_))) => true,
                _ => false,
            },
            _ => false,
        }
    })
}

fn only_signature_fields_appended(after: &Document, old: &[Object], new: &[Object]) -> bool {
    new.len() >= old.len()
        && new[..old.len()] == *old
        && new[old.len()..].iter().all(|item| match item {
            Object::Reference(id) => after
                .get_dictionary(*id)
                .is_ok_and(|d| is_signature_field(after, d)),
            _ => false,
        })
}

/// A signature field (or its widget, or a widget whose parent is one).
fn is_signature_field(after: &Document, dict: &Dictionary) -> bool {
    let is_sig = |d: &Dictionary| d.get(b"FT").and_then(Object::as_name).ok() == Some(b"Sig");
    is_sig(dict)
        || dict
            .get(b"Parent")
            .and_then(Object::as_reference)
            .and_then(|p| after.get_dictionary(p))
            .is_ok_and(is_sig)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::Signer;
    use crate::stamp::pdf::{sample_pdf, MarkText, Placement};
    use lopdf::IncrementalDocument;

    fn stamp(original: &[u8], serial: &str, y: f64) -> Vec<u8> {
        crate::stamp::pdf::stamp(
            original,
            &Placement {
                page: 1,
                x: 10.0,
                y,
                width: 100.0,
                height: 100.0,
            },
            &MarkText {
                serial,
                verify_url: "https://meterai.example/v",
            },
            &Limits::default(),
            &crate::signing::tests::test_signer(),
        )
        .unwrap()
        .bytes
    }

    #[test]
    fn a_later_signature_is_an_allowed_change_and_new_page_content_is_not() {
        let limits = Limits::default();
        let first = stamp(&sample_pdf(1, [0, 0, 595, 842], None), "FIRST", 10.0);
        let found = signatures(&first, &limits).unwrap();
        assert_eq!(found.len(), 1);
        let ours = &found[0];
        assert_eq!(ours.reason, "e-Meterai FIRST");
        assert_eq!(ours.sub_filter, "ETSI.CAdES.detached");
        assert_eq!(ours.signed_len(), Some(first.len()));
        let digest = ours.digest(&first).unwrap();
        let chain = crate::signing::tests::test_signer().chain().clone();
        assert!(crate::signing::check(&ours.contents, &digest, &chain)
            .unwrap()
            .is_valid());
        assert_eq!(
            later_changes(&first, first.len(), &limits).unwrap(),
            LaterChanges::None
        );

        // A second signature after ours: allowed, and ours still checks.
        let second = stamp(&first, "SECOND", 300.0);
        let found = signatures(&second, &limits).unwrap();
        assert_eq!(found.len(), 2);
        let ours = found.iter().find(|s| s.reason.ends_with("FIRST")).unwrap();
        assert_eq!(ours.signed_len(), Some(first.len()));
        assert_eq!(ours.digest(&second).unwrap(), digest);
        assert_eq!(
            later_changes(&second, first.len(), &limits).unwrap(),
            LaterChanges::Allowed
        );

        // An update that replaces the page's content after signing.
        let doc = Document::load_mem(&first).unwrap();
        let page = *doc.get_pages().get(&1).unwrap();
        let mut update = IncrementalDocument::create_from(first.clone(), doc);
        let content = update.new_document.add_object(lopdf::Stream::new(
            Dictionary::new(),
            b"BT /F1 40 Tf 72 400 Td (PAID) Tj ET".to_vec(),
        ));
        update.opt_clone_object_to_new_document(page).unwrap();
        update
            .new_document
            .get_dictionary_mut(page)
            .unwrap()
            .set("Contents", content);
        let mut edited = Vec::new();
        update.save_to(&mut edited).unwrap();
        assert_eq!(
            later_changes(&edited, first.len(), &limits).unwrap(),
            LaterChanges::Disallowed
        );

        // New XMP metadata (its dates, as signing tools write): allowed.
        let doc = Document::load_mem(&second).unwrap();
        let root = doc.trailer.get(b"Root").unwrap().as_reference().unwrap();
        let mut update = IncrementalDocument::create_from(second.clone(), doc);
        let xmp = update.new_document.add_object(lopdf::Stream::new(
            lopdf::dictionary! { "Type" => "Metadata", "Subtype" => "XML" },
            b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>".to_vec(),
        ));
        update.opt_clone_object_to_new_document(root).unwrap();
        update
            .new_document
            .get_dictionary_mut(root)
            .unwrap()
            .set("Metadata", xmp);
        let mut described = Vec::new();
        update.save_to(&mut described).unwrap();
        assert_eq!(
            later_changes(&described, first.len(), &limits).unwrap(),
            LaterChanges::Allowed
        );
    }

    #[test]
    fn a_byte_range_that_does_not_frame_a_hex_hole_is_not_trusted() {
        let first = stamp(&sample_pdf(1, [0, 0, 595, 842], None), "FIRST", 10.0);
        let found = signatures(&first, &Limits::default()).unwrap();
        let [_, a, b, c] = found[0].byte_range.unwrap();
        let written = format!("[0 {a} {b} {c}]");
        // Shift the hole by one byte, same width: the range no longer frames it.
        let shifted = format!("[0 {} {} {}]", a + 1, b + 1, c - 1);
        assert_eq!(shifted.len(), written.len());
        let at = first
            .windows(written.len())
            .position(|w| w == written.as_bytes())
            .unwrap();
        let mut forged = first.clone();
        forged[at..at + shifted.len()].copy_from_slice(shifted.as_bytes());
        let found = signatures(&forged, &Limits::default()).unwrap();
        assert_eq!(found[0].byte_range, None);
    }
}
