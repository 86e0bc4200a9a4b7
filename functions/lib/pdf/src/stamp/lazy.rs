//! The stamp on a file read by its cross-reference data ([`crate::reader`]):
//! the catalog, the page tree (its leaves skimmed, its nodes parsed), the
//! page and the form are read, nothing else; the update is appended by hand
//! and the original hashed while it is copied.

use std::collections::BTreeMap;
use std::io::Write;

use lopdf::{Dictionary, Object, ObjectId, Stream, Writer};
use sha2::{Digest, Sha256};

use super::pdf::{
    build, fill_byte_range, Limits, MarkText, PageChain, Placement, Prepared, SignatureSpace,
    StampError, Update,
};
use crate::reader::{Kind, ReadError, Reader};

/// Deepest page tree walked (real ones are a few levels).
const MAX_TREE_DEPTH: usize = 64;

/// [`super::pdf::prepare`] on a file read lazily; `Err` when the reader
/// declines the file and the caller should load it whole.
pub(crate) fn prepare(
    original: &[u8],
    placement: &Placement,
    text: &MarkText<'_>,
    limits: &Limits,
    space: &SignatureSpace,
) -> Result<Result<Prepared, StampError>, ReadError> {
    let reader = Reader::open(original, limits.max_stream_bytes)?;
    let (count, page_id, nodes) = find_page(&reader, placement.page, limits)?;
    let unread = std::cell::Cell::new(None);
    let resolve = |object: &Object| match reader.resolve(object) {
        Ok(Object::Null | Object::Reference(_)) if matches!(object, Object::Reference(_)) => {
            unread.set(Some(ReadError::Unreadable(
                "a reference to nothing listed, or to a reference",
            )));
            None
        }
        Ok(Object::Null) => None,
        Ok(found) => Some(found),
        Err(declined) => {
            unread.set(Some(declined));
            None
        }
    };
    let chain = PageChain {
        nodes,
        resolve: &resolve,
    };
    let shape = chain.shape();
    if let Some(declined) = unread.take() {
        return Err(declined);
    }
    let mut update = Appender {
        reader: &reader,
        changed: BTreeMap::new(),
        next: reader.size(),
        failed: None,
        signature: None,
    };
    let built = build(&mut update, page_id, shape, placement, text, space);
    if let Some(declined) = update.failed {
        return Err(declined);
    }
    if let Err(refusal) = built {
        return Ok(Err(refusal));
    }
    let (mut bytes, hashed, signature) = update.write(original, space.capacity);
    let lost = || StampError::Unsigned("the signature dictionary was not written".into());
    Ok(signature
        .ok_or_else(lost)
        .and_then(|span| fill_byte_range(&mut bytes, span, space.capacity))
        .map(|hole| Prepared::new(bytes, hole, (original.len(), hashed), count)))
}

/// The page count and page `page`, with what it and the nodes above it
/// (nearest first) give it to inherit, numbered as lopdf numbers pages: the
/// leaves of the page tree in order. The tree is walked whole (lopdf counts
/// it so; at most `max_pages` leaves): leaves are skimmed for their type,
/// `/Pages` nodes parsed for their kids; `/Count` is not trusted. Declined,
/// for the full load to decide, is what lopdf would count otherwise or
/// where it would inherit differently: a kid of another type or that does
/// not read (lopdf skips it, or counts a blank page), a node met twice, a
/// `/Parent` that is not the node above, a root with a `/Parent`, a tree
/// deeper than 64, more pages than the limit, a page the tree does not hold.
fn find_page(
    reader: &Reader<'_>,
    page: u32,
    limits: &Limits,
) -> Result<(u32, ObjectId, Vec<Dictionary>), ReadError> {
    let declined = |why| Err(ReadError::Unreadable(why));
    let Ok(root) = reader.trailer().get(b"Root").and_then(Object::as_reference) else {
        return declined("no /Root");
    };
    let catalog = reader.dictionary(root)?;
    let Ok(root_id) = catalog.get(b"Pages").and_then(Object::as_reference) else {
        return declined("no /Pages");
    };
    let root = reader.dictionary(root_id)?;
    if !root.has_type(b"Pages") || root.has(b"Parent") {
        return declined("a page tree root that is not a plain /Pages");
    }
    /// A node being walked: its id, its kids, the next kid.
    struct Level {
        id: ObjectId,
        kids: Vec<Object>,
        next: usize,
    }
    let root_kids = kids(reader, &root)?;
    // Sized for a flat tree (most files), so a walk within the page limit
    // does not grow it.
    let flat = root_kids.len().min(limits.max_pages as usize) + 1;
    let mut seen = std::collections::HashSet::with_capacity(flat);
    seen.insert(root_id);
    let mut levels = vec![Level {
        id: root_id,
        kids: root_kids,
        next: 0,
    }];
    // What each level's node gives to inherit, root first.
    let mut chain = vec![inheritable(&root)];
    let (mut leaves, mut found) = (0u32, None);
    while let Some(level) = levels.last_mut() {
        let Some(kid) = level.kids.get(level.next) else {
            levels.pop();
            chain.pop();
            continue;
        };
        level.next += 1;
        let parent = level.id;
        let Ok(id) = kid.as_reference() else {
            return declined("a kid that is not a reference");
        };
        if !seen.insert(id) {
            return declined("a page tree node met twice");
        }
        match reader.peek(id)?.kind {
            Some(Kind::Page) => {
                leaves += 1;
                if leaves > limits.max_pages {
                    return declined("more pages than the limit");
                }
                if leaves == page {
                    let dict = reader.dictionary(id)?;
                    if dict.get(b"Parent").and_then(Object::as_reference).ok() != Some(parent) {
                        return declined("a page whose /Parent is not its node");
                    }
                    let mut nodes = vec![inheritable(&dict)];
                    nodes.extend(chain.iter().rev().cloned());
                    found = Some((id, nodes));
                }
            }
            Some(Kind::Pages) => {
                // The page and the nodes above it: at most 64, as the
                // full load follows /Parent.
                if levels.len() + 1 >= MAX_TREE_DEPTH {
                    return declined("a page tree deeper than any real one");
                }
                let node = reader.dictionary(id)?;
                if node.get(b"Parent").and_then(Object::as_reference).ok() != Some(parent) {
                    return declined("a page tree node whose /Parent is not its parent");
                }
                let kids = kids(reader, &node)?;
                chain.push(inheritable(&node));
                levels.push(Level { id, kids, next: 0 });
            }
            _ => return declined("a kid that is neither /Page nor /Pages"),
        }
    }
    match found {
        Some((id, nodes)) => Ok((leaves, id, nodes)),
        None => declined("a page the page tree does not hold"),
    }
}

/// What a page inherits from a node (`/MediaBox`, `/CropBox`, `/Rotate`),
/// without the rest (a root's `/Kids` may list hundreds of pages).
fn inheritable(node: &Dictionary) -> Dictionary {
    let mut kept = Dictionary::new();
    for key in [b"MediaBox".as_slice(), b"CropBox", b"Rotate"] {
        if let Ok(value) = node.get(key) {
            kept.set(key.to_vec(), value.clone());
        }
    }
    kept
}

fn kids(reader: &Reader<'_>, node: &Dictionary) -> Result<Vec<Object>, ReadError> {
    let missing = ReadError::Unreadable("a page tree node without /Kids");
    match reader.resolve(node.get(b"Kids").map_err(|_| missing.clone())?)? {
        Object::Array(kids) => Ok(kids),
        _ => Err(missing),
    }
}

/// The update over a lazily read file: what it changes and adds.
struct Appender<'r, 'a> {
    reader: &'r Reader<'a>,
    changed: BTreeMap<ObjectId, Object>,
    next: u32,
    /// The first read that failed: the file is then loaded whole instead.
    failed: Option<ReadError>,
    /// The signature dictionary and the bytes its hole holds: its zeros
    /// are written straight into the output, not hex-encoded one by one.
    signature: Option<(ObjectId, usize)>,
}

impl Update for Appender<'_, '_> {
    fn object(&mut self, id: ObjectId) -> Option<Object> {
        if let Some(changed) = self.changed.get(&id) {
            return Some(changed.clone());
        }
        match self.reader.object(id) {
            // An object that is a reference: lopdf follows it; let it.
            Ok(Object::Reference(_)) => {
                self.failed
                    .get_or_insert(ReadError::Unreadable("an object that is a reference"));
                None
            }
            // lopdf may know an object no entry lists (an object stream's
            // member): let the full load decide.
            Ok(Object::Null) => {
                self.failed
                    .get_or_insert(ReadError::Unreadable("a reference to nothing listed"));
                None
            }
            Ok(object) => Some(object),
            Err(declined) => {
                self.failed.get_or_insert(declined);
                None
            }
        }
    }

    fn put(&mut self, id: ObjectId, object: Object) {
        self.changed.insert(id, object);
    }

    fn add(&mut self, object: Object) -> ObjectId {
        let id = (self.next, 0);
        self.next += 1;
        self.changed.insert(id, object);
        id
    }

    fn root(&self) -> Option<ObjectId> {
        self.reader
            .trailer()
            .get(b"Root")
            .and_then(Object::as_reference)
            .ok()
    }

    fn add_signature(&mut self, mut dict: Dictionary, capacity: usize) -> ObjectId {
        dict.set(
            "Contents",
            Object::String(Vec::new(), lopdf::StringFormat::Hexadecimal),
        );
        let id = self.add(Object::Dictionary(dict));
        self.signature = Some((id, capacity));
        id
    }
}

impl Appender<'_, '_> {
    /// The original (copied and hashed in one pass, a chunk at a time while
    /// it is in cache), the changed and new objects, and a cross-reference
    /// section of the kind the file's newest one is, whose `/Prev` is that
    /// one. Returns the bytes, the hash of the original and where the
    /// signature dictionary was written.
    fn write(
        self,
        original: &[u8],
        capacity: usize,
    ) -> (Vec<u8>, Sha256, Option<std::ops::Range<usize>>) {
        let mut out = Vec::with_capacity(original.len() + 2 * capacity + 16 * 1024);
        let mut hasher = Sha256::new();
        for chunk in original.chunks(64 * 1024) {
            out.extend_from_slice(chunk);
            hasher.update(chunk);
        }
        if original.last() != Some(&b'\n') {
            out.push(b'\n');
        }
        let mut offsets = Vec::with_capacity(self.changed.len() + 1);
        let mut signature = None;
        for (id, object) in &self.changed {
            offsets.push((*id, out.len()));
            // Writing to a Vec cannot fail.
            let _ = writeln!(out, "{} {} obj", id.0, id.1);
            let from = out.len();
            let _ = Writer::write_object(&mut out, object);
            if let Some((_, hole_bytes)) = self.signature.filter(|(s, _)| s == id) {
                const EMPTY: &[u8] = b"/Contents<>";
                if let Some(at) = memchr::memmem::rfind(&out[from..], EMPTY) {
                    let hole = from + at + EMPTY.len() - 1;
                    let tail = out.split_off(hole);
                    out.resize(hole + 2 * hole_bytes, b'0');
                    out.extend_from_slice(&tail);
                    signature = Some(from..out.len());
                }
            }
            out.extend_from_slice(b"\nendobj\n");
        }
        let xref_at = out.len();
        let mut trailer = self.reader.trailer().clone();
        trailer.remove(b"XRefStm");
        trailer.set("Prev", self.reader.startxref() as i64);
        if self.reader.newest_is_stream() {
            // The section describes itself too.
            let own = (self.next, 0);
            offsets.push((own, xref_at));
            let width = if u32::try_from(xref_at).is_ok() { 4 } else { 8 };
            let mut rows = Vec::with_capacity(offsets.len() * (3 + width));
            for (id, offset) in &offsets {
                rows.push(1);
                rows.extend_from_slice(&(*offset as u64).to_be_bytes()[8 - width..]);
                rows.extend_from_slice(&id.1.to_be_bytes());
            }
            let index: Vec<Object> = runs(&offsets)
                .into_iter()
                .flat_map(|(first, count)| [Object::from(first as i64), (count as i64).into()])
                .collect();
            trailer.set("Type", "XRef");
            trailer.set("Size", i64::from(self.next) + 1);
            trailer.set("W", vec![1.into(), (width as i64).into(), 2.into()]);
            trailer.set("Index", index);
            let _ = writeln!(out, "{} 0 obj", own.0);
            let _ = Writer::write_object(&mut out, &Object::Stream(Stream::new(trailer, rows)));
            out.extend_from_slice(b"\nendobj\n");
        } else {
            trailer.set("Size", i64::from(self.next));
            out.extend_from_slice(b"xref\n");
            let mut rows = offsets.iter();
            for (first, count) in runs(&offsets) {
                let _ = writeln!(out, "{first} {count}");
                for (id, offset) in rows.by_ref().take(count) {
                    // Each entry is exactly 20 bytes (ISO 32000-1, 7.5.4).
                    let _ = write!(out, "{offset:010} {:05} n\r\n", id.1);
                }
            }
            out.extend_from_slice(b"trailer\n");
            let _ = Writer::write_object(&mut out, &Object::Dictionary(trailer));
            out.push(b'\n');
        }
        let _ = write!(out, "startxref\n{xref_at}\n%%EOF\n");
        (out, hasher, signature)
    }
}

/// Runs of consecutive object numbers: (first, count).
fn runs(offsets: &[(ObjectId, usize)]) -> Vec<(u32, usize)> {
    let mut runs: Vec<(u32, usize)> = Vec::new();
    for ((number, _), _) in offsets {
        match runs.last_mut() {
            Some((first, count)) if *first + *count as u32 == *number => *count += 1,
            _ => runs.push((*number, 1)),
        }
    }
    runs
}
