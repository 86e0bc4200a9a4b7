//! Reading the signatures in a PDF back: where each one's signed bytes are,
//! its CMS, and what changed in the file after it was made.

use lopdf::{Dictionary, Document, Object, ObjectId};
use sha2::{Digest, Sha256};

use super::pdf::{load, sniff, Limits, StampError};
use crate::reader::{ReadError, Reader};

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

/// A file opened once for everything verification asks of it: its
/// signatures, and what changed after each. Read by its cross-reference
/// data ([`crate::reader`]: the form's signature fields, and the objects the
/// later updates list), or, for a file the reader declines, loaded whole.
pub struct SignedFile<'a> {
    bytes: &'a [u8],
    view: View<'a>,
}

enum View<'a> {
    // Boxed: the two differ in size by hundreds of bytes. A file read lazily
    // keeps its signatures, found when it was opened.
    Lazy(Box<Reader<'a>>, Vec<Dictionary>),
    Loaded(Box<Document>),
}

/// Most form fields walked to find the signatures (real forms: dozens).
const MAX_FIELDS: usize = 20_000;
/// Most objects a later update may list for the lazy comparison.
const MAX_LATER_OBJECTS: usize = 100_000;

/// The signature a dictionary is, if it is one (`/Type /Sig`, or any with
/// `/ByteRange` and `/Contents`), with its signed bytes located.
fn found_signature(dict: &Dictionary, bytes: &[u8]) -> Option<FoundSignature> {
    let is_signature = dict.get(b"Type").and_then(Object::as_name).ok() == Some(b"Sig")
        || (dict.has(b"ByteRange") && dict.has(b"Contents"));
    if !is_signature {
        return None;
    }
    let byte_range = checked_range(dict, bytes);
    let contents = byte_range
        .and_then(|[_, a, b, _]| hex::decode(&bytes[a + 1..b - 1]).ok())
        .unwrap_or_default();
    Some(FoundSignature {
        reason: text(dict, b"Reason"),
        sub_filter: text(dict, b"SubFilter"),
        signing_time: text(dict, b"M"),
        byte_range,
        contents,
    })
}

impl<'a> SignedFile<'a> {
    pub fn parse(bytes: &'a [u8], limits: &Limits) -> Result<Self, StampError> {
        if bytes.len() > limits.max_bytes {
            return Err(StampError::TooLarge {
                bytes: bytes.len(),
                limit: limits.max_bytes,
            });
        }
        sniff(bytes)?;
        // The form's signatures are found now: a file whose form the
        // reader cannot walk is loaded whole (and refused as it would be).
        let lazy = Reader::open(bytes, limits.max_stream_bytes)
            .and_then(|reader| Ok((field_signatures(&reader)?, reader)));
        match lazy {
            Ok((found, reader)) => Ok(Self {
                bytes,
                view: View::Lazy(Box::new(reader), found),
            }),
            Err(ReadError::Unreadable(_)) => Self::parse_loaded(bytes, limits),
        }
    }

    /// [`Self::parse`] by loading the whole file.
    pub(crate) fn parse_loaded(bytes: &'a [u8], limits: &Limits) -> Result<Self, StampError> {
        Ok(Self {
            bytes,
            view: View::Loaded(Box::new(load(bytes, limits)?)),
        })
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Every signature: the values of the form's signature fields (read
    /// lazily), or every signature dictionary of a file loaded whole.
    pub fn signatures(&self) -> Vec<FoundSignature> {
        let dicts: Box<dyn Iterator<Item = &Dictionary>> = match &self.view {
            View::Lazy(_, found) => Box::new(found.iter()),
            View::Loaded(doc) => Box::new(doc.objects.values().filter_map(|o| o.as_dict().ok())),
        };
        dicts
            .filter_map(|d| found_signature(d, self.bytes))
            .collect()
    }

    /// Compares the signed revision (`bytes[..signed_len]`) with the file:
    /// read lazily, only the objects the later updates list; loaded whole,
    /// every object of both.
    pub fn later_changes(
        &self,
        signed_len: usize,
        limits: &Limits,
    ) -> Result<LaterChanges, StampError> {
        if signed_len >= self.bytes.len() {
            return Ok(LaterChanges::None);
        }
        let signed = &self.bytes[..signed_len];
        let loaded;
        let after = match &self.view {
            View::Lazy(after, _) => {
                if let Ok(answer) = lazy_later_changes(after, signed, limits) {
                    return Ok(answer);
                }
                loaded = load(self.bytes, limits)?;
                &loaded
            }
            View::Loaded(doc) => doc,
        };
        let before = load(signed, limits)?;
        let cache = std::cell::RefCell::new(std::collections::HashMap::new());
        let lookup = |id| {
            *cache
                .borrow_mut()
                .entry(id)
                .or_insert_with(|| after.get_dictionary(id).ok().map(Field::of))
        };
        Ok(compare(&before, after, &lookup))
    }
}

/// The values of the form's fields that are signatures, in object order,
/// found down `/AcroForm /Fields` and their `/Kids`.
fn field_signatures(reader: &Reader<'_>) -> Result<Vec<Dictionary>, ReadError> {
    let declined = ReadError::Unreadable("no catalog");
    let root = reader
        .trailer()
        .get(b"Root")
        .and_then(Object::as_reference)
        .map_err(|_| declined.clone())?;
    let catalog = reader.dictionary(root)?;
    let form = match catalog.get(b"AcroForm") {
        Ok(form) => reader.resolve(form)?,
        Err(_) => return Ok(Vec::new()),
    };
    let fields = match form.as_dict().and_then(|f| f.get(b"Fields")) {
        Ok(fields) => reader.resolve(fields)?,
        Err(_) => return Ok(Vec::new()),
    };
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<ObjectId> = Vec::new();
    // Only fields not seen yet are pushed, and an array of kids shared by
    // many fields is expanded once: the walk is linear in the form.
    fn push(
        stack: &mut Vec<ObjectId>,
        items: &[Object],
        seen: &std::collections::HashSet<ObjectId>,
    ) {
        for id in items.iter().rev().filter_map(|i| i.as_reference().ok()) {
            if !seen.contains(&id) {
                stack.push(id);
            }
        }
    }
    if let Object::Array(items) = &fields {
        push(&mut stack, items, &seen);
    }
    let mut expanded = std::collections::HashSet::new();
    let mut found = std::collections::BTreeMap::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        if seen.len() > MAX_FIELDS {
            return Err(ReadError::Unreadable("more form fields than any real form"));
        }
        let Object::Dictionary(field) = reader.object(id)? else {
            continue;
        };
        if let Ok(Object::Reference(value)) = field.get(b"V") {
            if let Object::Dictionary(value_dict) = reader.object(*value)? {
                found.insert(*value, value_dict);
            }
        }
        match field.get(b"Kids") {
            Ok(Object::Array(kids)) => push(&mut stack, kids, &seen),
            Ok(Object::Reference(array)) if expanded.insert(*array) => {
                if let Object::Array(kids) = reader.object(*array)? {
                    push(&mut stack, &kids, &seen);
                }
            }
            _ => {}
        }
    }
    Ok(found.into_values().collect())
}

/// [`SignedFile::later_changes`] on a file read lazily: the objects that the
/// sections after the signed revision list, old against new. Declines when
/// the signed revision does not read, the later sections do not chain to
/// it, or an object does not read (the caller then loads both whole).
fn lazy_later_changes(
    after: &Reader<'_>,
    signed: &[u8],
    limits: &Limits,
) -> Result<LaterChanges, ReadError> {
    let before = Reader::open(signed, limits.max_stream_bytes)?;
    let older: Vec<usize> = after
        .section_offsets()
        .into_iter()
        .filter(|at| *at < signed.len())
        .collect();
    if older != before.section_offsets() {
        return Err(ReadError::Unreadable(
            "later sections that do not chain to the signed revision",
        ));
    }
    let numbers = after
        .numbers_listed_from(signed.len(), MAX_LATER_OBJECTS)
        .ok_or(ReadError::Unreadable(
            "later updates listing too many objects",
        ))?;
    let info = after
        .trailer()
        .get(b"Info")
        .and_then(Object::as_reference)
        .ok();
    let failed = std::cell::Cell::new(false);
    // Each object read once, however many items name it.
    let cache = std::cell::RefCell::new(std::collections::HashMap::new());
    let lookup = |id| {
        *cache
            .borrow_mut()
            .entry(id)
            .or_insert_with(|| match after.object(id) {
                Ok(Object::Dictionary(dict)) => Some(Field::of(&dict)),
                // Nothing listed (lopdf may know an object stream's member)
                // or a reference (lopdf follows it): the full load decides.
                Ok(Object::Null | Object::Reference(_)) | Err(_) => {
                    failed.set(true);
                    None
                }
                Ok(_) => None,
            })
    };
    // lopdf also keeps members of the signed revision's object streams that
    // no entry lists; with object streams there, a number not listed
    // before is not surely new.
    let unlisted_may_exist = before.has_object_streams();
    let mut verdict = LaterChanges::Allowed;
    for number in numbers {
        let Some(id) = before.current(number) else {
            if unlisted_may_exist {
                return Err(ReadError::Unreadable("a number object streams may hold"));
            }
            // New objects matter only through what now refers to them.
            continue;
        };
        // Read first: an old object lopdf could not read is not in its
        // comparison at all.
        let old = before.object(id)?;
        if after.current(number) != Some(id) {
            // Removed, or replaced by another generation.
            verdict = LaterChanges::Disallowed;
            break;
        }
        let new = after.object(id)?;
        if matches!(old, Object::Reference(_)) || matches!(new, Object::Reference(_)) {
            return Err(ReadError::Unreadable("an object that is a reference"));
        }
        if old == new || Some(id) == info {
            continue;
        }
        if !allowed_object_change(&lookup, &old, &new) {
            verdict = LaterChanges::Disallowed;
            break;
        }
    }
    if failed.get() {
        return Err(ReadError::Unreadable("an object the comparison needs"));
    }
    Ok(verdict)
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

/// What the comparison asks of a dictionary of the newest revision.
#[derive(Debug, Clone, Copy)]
struct Field {
    /// `/FT /Sig`.
    signature: bool,
    parent: Option<ObjectId>,
}

impl Field {
    fn of(dict: &Dictionary) -> Self {
        Self {
            signature: dict.get(b"FT").and_then(Object::as_name).ok() == Some(b"Sig"),
            parent: dict.get(b"Parent").and_then(Object::as_reference).ok(),
        }
    }
}

/// [`Field`] of the newest revision's object `id` (`None` if it is not a
/// dictionary).
type Lookup<'l> = dyn Fn(ObjectId) -> Option<Field> + 'l;

fn compare(before: &Document, after: &Document, lookup: &Lookup<'_>) -> LaterChanges {
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
        if !allowed_object_change(lookup, old, new) {
            return LaterChanges::Disallowed;
        }
    }
    LaterChanges::Allowed
}

fn allowed_object_change(after: &Lookup<'_>, old: &Object, new: &Object) -> bool {
    match (old, new) {
        (Object::Dictionary(a), Object::Dictionary(b)) => allowed_dict_change(after, a, b),
        (Object::Array(a), Object::Array(b)) => only_signature_fields_appended(after, a, b),
        _ => false,
    }
}

fn allowed_dict_change(after: &Lookup<'_>, a: &Dictionary, b: &Dictionary) -> bool {
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
            b"V" => old.is_none() && is_signature_field(after, Field::of(b)),
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

fn only_signature_fields_appended(after: &Lookup<'_>, old: &[Object], new: &[Object]) -> bool {
    new.len() >= old.len()
        && new[..old.len()] == *old
        && new[old.len()..].iter().all(|item| match item {
            Object::Reference(id) => after(*id).is_some_and(|f| is_signature_field(after, f)),
            _ => false,
        })
}

/// A signature field (or its widget, or a widget whose parent is one).
fn is_signature_field(after: &Lookup<'_>, field: Field) -> bool {
    field.signature || field.parent.and_then(after).is_some_and(|p| p.signature)
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

    /// The stamped, stamped-again, edited and described files of the test
    /// above.
    fn revisions() -> Vec<(Vec<u8>, usize)> {
        let first = stamp(&sample_pdf(2, [0, 0, 595, 842], None), "FIRST", 10.0);
        let second = stamp(&first, "SECOND", 300.0);
        let third = stamp(&second, "THIRD", 500.0);
        let doc = Document::load_mem(&second).unwrap();
        let page = *doc.get_pages().get(&2).unwrap();
        let mut update = IncrementalDocument::create_from(second.clone(), doc);
        update.opt_clone_object_to_new_document(page).unwrap();
        update
            .new_document
            .get_dictionary_mut(page)
            .unwrap()
            .set("Rotate", 90);
        let mut edited = Vec::new();
        update.save_to(&mut edited).unwrap();
        let len = first.len();
        vec![(first, len), (second, len), (third, len), (edited, len)]
    }

    #[test]
    fn read_lazily_the_signatures_and_later_changes_are_those_of_the_full_load() {
        let limits = Limits::default();
        let mut state = 0x51_7cc1_b727_220au64;
        let mut next = move || crate::stamp::pdf::xorshift(&mut state);
        let (mut compared, mut verdicts) = (0, std::collections::BTreeMap::new());
        for (file, first_len) in revisions() {
            for round in 0..400 {
                let mut file = file.clone();
                // Round 0 is the file itself; the rest flip a few bytes.
                for _ in 0..(if round == 0 { 0 } else { 1 + next() % 3 }) {
                    let at = (next() as usize) % file.len();
                    file[at] = next() as u8;
                }
                let Ok(lazy) = SignedFile::parse(&file, &limits) else {
                    continue;
                };
                let View::Lazy(reader, _) = &lazy.view else {
                    continue;
                };
                let Ok(full) = SignedFile::parse_loaded(&file, &limits) else {
                    continue;
                };
                // What the form lists is among what the full load finds.
                let everything = full.signatures();
                for found in lazy.signatures() {
                    assert!(everything.contains(&found), "round {round}: {found:?}");
                }
                for len in [first_len, file.len() / 2] {
                    if len >= file.len() {
                        continue;
                    }
                    let signed = &file[..len];
                    let Ok(answer) = lazy_later_changes(reader, signed, &limits) else {
                        continue;
                    };
                    let expected = full.later_changes(len, &limits).unwrap();
                    assert_eq!(answer, expected, "round {round}, signed length {len}");
                    compared += 1;
                    *verdicts.entry(format!("{answer:?}")).or_insert(0) += 1;
                }
            }
        }
        // Both verdicts were reached lazily, many times.
        assert!(compared > 200, "{compared} compared: {verdicts:?}");
        assert!(verdicts.len() >= 2, "{verdicts:?}");
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
