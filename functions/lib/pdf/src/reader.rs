//! Reading a PDF by its cross-reference data: only the objects asked for are
//! located, decompressed and parsed.
//!
//! lopdf's loader parses every object of a file (object streams included) to
//! give a [`lopdf::Document`]; the stamp needs the trailer, the catalog, the
//! path through the page tree, the page and the form. This reader keeps the
//! cross-reference sections (tables, streams, hybrid files, the `/Prev` chain
//! of earlier updates) and reads an object when it is asked for: skimmed
//! ([`Reader::peek`]: its type, without building it) or parsed with
//! lopdf's own object parser ([`Reader::object`], see [`parse_direct`]). Only
//! the object streams that hold such objects are inflated.
//!
//! It is strict on purpose. Its grammar for `startxref`, tables and
//! cross-reference streams is lopdf's; anything it does not find exactly where
//! the cross-reference data says (an offset off by a byte, a section lopdf
//! would not read, a `/Length` that does not reach `endstream`, a generation
//! that differs, an encrypted file) is [`ReadError::Unreadable`], and the
//! caller then loads the file whole, with lopdf's repairs and refusals. Work
//! is bounded per file: objects read, bytes inflated, and bytes scanned for
//! an object's end (an object is parsed from its bytes alone).
//!
//! One deliberate difference: an object stream nothing needs is never
//! inflated, so a file is not refused for one that would inflate past the
//! limit (the full load refuses those).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ops::Range;
use std::rc::Rc;

use lopdf::{dictionary, Dictionary, Object, ObjectId, ObjectStream, Stream};

/// Why the reader gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// Not readable this way; the full loader decides (repairs or refuses).
    Unreadable(&'static str),
}

type Result<T> = std::result::Result<T, ReadError>;

fn unreadable<T>(why: &'static str) -> Result<T> {
    Err(ReadError::Unreadable(why))
}

/// Where an object is, per the newest section that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Free,
    Normal { offset: usize, generation: u16 },
    Compressed { container: u32, index: u32 },
}

/// The entries of a cross-reference stream, decoded but not unpacked: rows
/// of `widths` bytes, found by object number through `/Index`.
#[derive(Debug)]
struct StreamEntries {
    widths: [usize; 3],
    /// (first object number, count, first row), runs that do not overlap.
    index: Vec<(u32, u32, usize)>,
    rows: Vec<u8>,
}

impl StreamEntries {
    fn get(&self, number: u32) -> Option<Entry> {
        // Runs sorted by first number, not overlapping: the one that can hold
        // `number` is the last that starts at or before it.
        let at = self.index.partition_point(|(first, _, _)| *first <= number);
        let &(first, count, row0) = self.index.get(at.checked_sub(1)?)?;
        if number - first >= count {
            return None;
        }
        let width: usize = self.widths.iter().sum();
        let at = (row0 + (number - first) as usize) * width;
        let row = self.rows.get(at..at + width)?;
        let mut fields = [0u64; 3];
        let mut pos = 0;
        for (field, w) in fields.iter_mut().zip(self.widths) {
            *field = row[pos..pos + w]
                .iter()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            pos += w;
        }
        // A type field of width 0 means type 1.
        let kind = if self.widths[0] == 0 { 1 } else { fields[0] };
        Some(match kind {
            0 => Entry::Free,
            1 => Entry::Normal {
                offset: usize::try_from(fields[1]).ok()?,
                generation: u16::try_from(fields[2]).ok()?,
            },
            2 => Entry::Compressed {
                container: u32::try_from(fields[1]).ok()?,
                index: u32::try_from(fields[2]).ok()?,
            },
            // Checked when the section was read.
            _ => return None,
        })
    }

    fn numbers(&self) -> impl Iterator<Item = u32> + '_ {
        self.index
            .iter()
            .flat_map(|&(first, count, _)| (0..count).map(move |i| first + i))
    }
}

/// One section of the chain.
#[derive(Debug)]
enum Section {
    /// A classic table: runs of (first number, entries) that do not overlap;
    /// with the `/XRefStm` of a hybrid file, consulted for what the table
    /// does not list as in use.
    Table {
        runs: Vec<(u32, Vec<Entry>)>,
        hybrid: Option<StreamEntries>,
    },
    Stream(StreamEntries),
}

impl Section {
    fn get(&self, number: u32) -> Option<Entry> {
        match self {
            Section::Stream(entries) => entries.get(number),
            Section::Table { runs, hybrid } => {
                // Sorted and not overlapping, as `StreamEntries::get`.
                let at = runs.partition_point(|(first, _)| *first <= number);
                let listed = at.checked_sub(1).and_then(|at| {
                    let (first, entries) = &runs[at];
                    entries.get((number - first) as usize).copied()
                });
                // As lopdf merges a hybrid file: the stream fills what the
                // table lists as free or not at all.
                match (listed, hybrid) {
                    (Some(Entry::Free) | None, Some(stream)) => stream.get(number).or(listed),
                    _ => listed,
                }
            }
        }
    }

    /// Every object number the section lists (free ones too).
    fn numbers(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        match self {
            Section::Stream(entries) => Box::new(entries.numbers()),
            Section::Table { runs, hybrid } => Box::new(
                runs.iter()
                    .flat_map(|(first, entries)| (0..entries.len() as u32).map(move |i| first + i))
                    .chain(hybrid.iter().flat_map(StreamEntries::numbers)),
            ),
        }
    }

    /// One past the highest object number listed.
    fn end(&self) -> u64 {
        let stream_end = |s: &StreamEntries| {
            s.index
                .iter()
                .map(|(first, count, _)| u64::from(*first) + u64::from(*count))
                .max()
                .unwrap_or(0)
        };
        match self {
            Section::Stream(entries) => stream_end(entries),
            Section::Table { runs, hybrid } => runs
                .iter()
                .map(|(first, e)| u64::from(*first) + e.len() as u64)
                .chain(hybrid.as_ref().map(stream_end))
                .max()
                .unwrap_or(0),
        }
    }
}

/// An object stream, inflated and its header read, once per file.
struct Container {
    content: Vec<u8>,
    /// (object number, start, end) of each member, in header order.
    members: Vec<(u32, Range<usize>)>,
}

/// Most sections followed through `/Prev` (real files have a handful).
const MAX_SECTIONS: usize = 256;
/// Deepest chain of indirect `/Length`s or references followed at once.
const MAX_DEPTH: usize = 32;
/// Most objects read (parsed or skimmed) per file.
const MAX_READS: usize = 200_000;
/// The highest object number an update may use (ISO 32000-1, C.2).
const MAX_OBJECT_NUMBER: u64 = 8_388_607;
/// Fewest bytes lopdf lets one cross-reference stream row take.
const MIN_ROW_WIDTH: usize = 3;
/// Built once: `memmem::find` builds its searcher on every call, which cost
/// more than the search on a page tree's hundreds of small objects.
static ENDOBJ: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"endobj"));
static STREAM: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"stream"));

/// A dictionary's `/Type`, as far as the page tree cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Page,
    Pages,
    Other,
}

impl Kind {
    fn of(name: &[u8]) -> Self {
        match name {
            b"Page" => Kind::Page,
            b"Pages" => Kind::Pages,
            _ => Kind::Other,
        }
    }
}

/// What [`Reader::peek`] tells of an object without building it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peek {
    /// `/Type`, if the object is a dictionary that has one.
    pub kind: Option<Kind>,
    pub is_dictionary: bool,
}

/// A PDF opened by its cross-reference data.
pub struct Reader<'a> {
    bytes: &'a [u8],
    /// Newest first, with where each starts.
    sections: Vec<(usize, Section)>,
    /// The newest section's trailer (or cross-reference stream) dictionary.
    trailer: Dictionary,
    startxref: usize,
    newest_is_stream: bool,
    size: u32,
    max_stream_bytes: usize,
    containers: RefCell<HashMap<u32, Rc<Container>>>,
    /// Budgets left: objects to read, bytes to inflate, bytes to scan for
    /// `endobj` (a file without them must not make every read scan to the
    /// end).
    reads: Cell<usize>,
    inflate: Cell<usize>,
    scan: Cell<usize>,
}

impl<'a> Reader<'a> {
    /// Reads the chain of cross-reference sections; no object yet. One
    /// stream (a cross-reference or object stream) inflates to
    /// `max_stream_bytes` at most, all of them together to twice that.
    pub fn open(bytes: &'a [u8], max_stream_bytes: usize) -> Result<Self> {
        if !bytes.starts_with(b"%PDF-") {
            return unreadable("no header at the start");
        }
        let startxref = startxref(bytes)?;
        let mut reader = Reader::bare(bytes, max_stream_bytes, startxref);
        let mut next = Some(startxref);
        let mut seen = std::collections::HashSet::new();
        let mut end = 0u64;
        while let Some(offset) = next {
            if !seen.insert(offset) || reader.sections.len() >= MAX_SECTIONS {
                return unreadable("a /Prev chain that loops or does not end");
            }
            let (section, mut trailer, is_stream) = reader.section_at(offset)?;
            if trailer.get(b"Size").and_then(Object::as_i64).is_err() {
                return unreadable("a section without /Size");
            }
            end = end.max(section.end());
            next = match trailer.remove(b"Prev") {
                None => None,
                Some(prev) => Some(
                    prev.as_i64()
                        .ok()
                        .and_then(|p| usize::try_from(p).ok())
                        .filter(|p| *p < bytes.len())
                        .ok_or(ReadError::Unreadable("a /Prev that is not an offset"))?,
                ),
            };
            if reader.sections.is_empty() {
                reader.newest_is_stream = is_stream;
                reader.trailer = trailer;
            }
            reader.sections.push((offset, section));
        }
        // As lopdf does, the entries decide the size, whatever /Size says;
        // and an update must have numbers left to use.
        if end >= MAX_OBJECT_NUMBER {
            return unreadable("object numbers past the limit");
        }
        reader.size = end as u32;
        if reader.trailer.has(b"Encrypt") {
            // Objects would need decrypting and the update encrypting.
            return unreadable("encrypted");
        }
        reader.check_headers()?;
        Ok(reader)
    }

    /// A reader of no sections yet.
    fn bare(bytes: &'a [u8], max_stream_bytes: usize, startxref: usize) -> Self {
        Reader {
            bytes,
            sections: Vec::new(),
            trailer: Dictionary::new(),
            startxref,
            newest_is_stream: false,
            size: 0,
            max_stream_bytes,
            containers: RefCell::default(),
            reads: Cell::new(MAX_READS),
            inflate: Cell::new(max_stream_bytes.saturating_mul(2)),
            scan: Cell::new(bytes.len().saturating_mul(2).saturating_add(1 << 20)),
        }
    }

    /// Where object `id` starts, per the file's newest cross-reference
    /// section alone: for finding an object an update has just written
    /// (encrypted or not; nothing else is read).
    pub(crate) fn newest_offset(bytes: &'a [u8], id: ObjectId) -> Option<usize> {
        let start = startxref(bytes).ok()?;
        let reader = Reader::bare(bytes, 1 << 20, start);
        match reader.section_at(start).ok()?.0.get(id.0)? {
            Entry::Normal { offset, generation } if generation == id.1 => Some(offset),
            _ => None,
        }
    }

    /// lopdf files each object it loads under the number its own header
    /// gives, whatever the entry that led to it says; so every object in
    /// use must start where its entry says with its own header, or the
    /// reader and lopdf would see different objects. Headers only: a few
    /// bytes per object, no body parsed.
    fn check_headers(&self) -> Result<()> {
        // Every number is below `size`: a bit each.
        let mut seen = vec![0u64; (self.size as usize).div_ceil(64)];
        let mut check = |number: u32, entry: Option<Entry>| {
            let (word, bit) = (number as usize / 64, 1u64 << (number % 64));
            if seen[word] & bit != 0 {
                return Ok(());
            }
            seen[word] |= bit;
            match entry {
                Some(Entry::Normal { offset, generation }) => {
                    let header = self.bytes.get(offset..).and_then(object_header);
                    if header.map(|(id, _)| id) == Some((number, generation)) {
                        Ok(())
                    } else {
                        unreadable("an object whose header is not its entry's")
                    }
                }
                _ => Ok(()),
            }
        };
        for (_, section) in &self.sections {
            match section {
                // A plain table's entries in order (its runs do not overlap).
                Section::Table { runs, hybrid: None } => {
                    for (first, entries) in runs {
                        for (i, entry) in entries.iter().enumerate() {
                            check(first + i as u32, Some(*entry))?;
                        }
                    }
                }
                _ => {
                    for number in section.numbers() {
                        check(number, section.get(number))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The newest trailer, without `/Prev` (from a cross-reference stream:
    /// its dictionary, without the stream's own keys).
    pub fn trailer(&self) -> &Dictionary {
        &self.trailer
    }

    /// Where the newest section starts (an update's `/Prev`).
    pub fn startxref(&self) -> usize {
        self.startxref
    }

    /// Whether the newest section is a cross-reference stream.
    pub fn newest_is_stream(&self) -> bool {
        self.newest_is_stream
    }

    /// One past the highest object number any section lists: the first
    /// number an update can use.
    pub fn size(&self) -> u32 {
        self.size
    }

    fn entry(&self, number: u32) -> Option<Entry> {
        self.sections.iter().find_map(|(_, s)| s.get(number))
    }

    /// Whether any entry puts an object in an object stream.
    pub fn has_object_streams(&self) -> bool {
        self.sections.iter().any(|(_, section)| {
            section
                .numbers()
                .any(|n| matches!(section.get(n), Some(Entry::Compressed { .. })))
        })
    }

    /// Where each cross-reference section starts, newest first.
    pub fn section_offsets(&self) -> Vec<usize> {
        self.sections.iter().map(|(offset, _)| *offset).collect()
    }

    /// The id of object `number` in use (`None` if free or not listed).
    pub fn current(&self, number: u32) -> Option<ObjectId> {
        match self.entry(number)? {
            Entry::Free => None,
            Entry::Normal { generation, .. } => Some((number, generation)),
            Entry::Compressed { .. } => Some((number, 0)),
        }
    }

    /// The object numbers listed by the sections that start at `from` or
    /// later (the updates appended after a revision of `from` bytes),
    /// sorted; at most `max` of them, else `None`.
    pub fn numbers_listed_from(&self, from: usize, max: usize) -> Option<Vec<u32>> {
        let mut numbers = Vec::new();
        for (_, section) in self.sections.iter().filter(|(at, _)| *at >= from) {
            for number in section.numbers() {
                if numbers.len() >= max {
                    return None;
                }
                numbers.push(number);
            }
        }
        numbers.sort_unstable();
        numbers.dedup();
        Some(numbers)
    }

    /// The object `id` (null if free or not listed, as the standard says).
    pub fn object(&self, id: ObjectId) -> Result<Object> {
        match self.raw(id, 0)? {
            None => Ok(Object::Null),
            Some(raw) => parse_direct(raw.slice()),
        }
    }

    /// What object `id` is, skimmed where it can be (without building it),
    /// parsed where it cannot.
    pub fn peek(&self, id: ObjectId) -> Result<Peek> {
        let Some(raw) = self.raw(id, 0)? else {
            return Ok(Peek {
                kind: None,
                is_dictionary: false,
            });
        };
        if let Some(skimmed) = skim(raw.slice()) {
            return Ok(skimmed.peek);
        }
        Ok(match parse_direct(raw.slice())? {
            Object::Dictionary(dict) => Peek {
                kind: dict
                    .get(b"Type")
                    .and_then(Object::as_name)
                    .ok()
                    .map(Kind::of),
                is_dictionary: true,
            },
            _ => Peek {
                kind: None,
                is_dictionary: false,
            },
        })
    }

    /// `object`, or the object it refers to.
    pub fn resolve(&self, object: &Object) -> Result<Object> {
        match object {
            Object::Reference(id) => self.object(*id),
            other => Ok(other.clone()),
        }
    }

    /// The dictionary `id`.
    pub fn dictionary(&self, id: ObjectId) -> Result<Dictionary> {
        match self.object(id)? {
            Object::Dictionary(d) => Ok(d),
            _ => unreadable("not a dictionary where one was expected"),
        }
    }

    /// The bytes of object `id` (`None` if free or not listed).
    fn raw(&self, id: ObjectId, depth: usize) -> Result<Option<Raw<'a>>> {
        if depth > MAX_DEPTH {
            return unreadable("references nested too deep");
        }
        let left = self.reads.get();
        if left == 0 {
            return unreadable("more objects read than any stamp needs");
        }
        self.reads.set(left - 1);
        match self.entry(id.0) {
            None | Some(Entry::Free) => Ok(None),
            Some(Entry::Normal { offset, generation }) => {
                if generation != id.1 {
                    // lopdf keys objects by their headers; leave it to lopdf.
                    return unreadable("a reference of another generation");
                }
                let (body, stream) = self.indirect_at(offset, id, depth)?;
                match stream {
                    // Streams are read only as containers, never handed out.
                    Some(_) => unreadable("a stream where an object was expected"),
                    None => Ok(Some(Raw::File(body))),
                }
            }
            Some(Entry::Compressed { container, index }) => {
                if id.1 != 0 {
                    return unreadable("a reference of another generation");
                }
                let container_stream = self.container(container, depth)?;
                let Some((number, range)) = container_stream.members.get(index as usize).cloned()
                else {
                    return unreadable("an index past the object stream's header");
                };
                if number != id.0 {
                    return unreadable("an object stream that holds another object there");
                }
                // lopdf reads one object from the member's offset on: it
                // ends where the skim says, or (not plainly formed) the
                // rest of the stream is charged to the scanning budget.
                let tail = &container_stream.content[range.clone()];
                let end = match skim(tail) {
                    Some(skimmed) => skimmed.end,
                    None => {
                        let left = self.scan.get();
                        if tail.len() > left {
                            return unreadable("more bytes read than the file holds twice");
                        }
                        self.scan.set(left - tail.len());
                        tail.len()
                    }
                };
                Ok(Some(Raw::Member(
                    container_stream,
                    range.start..range.start + end,
                )))
            }
        }
    }

    /// The object at `offset`, which must be `id`'s header: its bytes (the
    /// object alone where it skims, else up to `endobj`), and its stream data
    /// if it is a stream.
    fn indirect_at(
        &self,
        offset: usize,
        id: ObjectId,
        depth: usize,
    ) -> Result<(&'a [u8], Option<&'a [u8]>)> {
        let bytes = self.bytes;
        let (found, body) = bytes
            .get(offset..)
            .and_then(object_header)
            .ok_or(ReadError::Unreadable("no object header there"))?;
        if found != id {
            return unreadable("the cross-reference data points elsewhere");
        }
        let body = skip_space(body);
        // Most objects end at the `endobj` right after them: without
        // `stream` before it, the bytes up to it are the object (lopdf's
        // parser reads one object from the front and ignores the rest).
        let until_endobj = self.find_endobj(body).map(|end| &body[..end]);
        if let Some(object) = until_endobj {
            if STREAM.find(object).is_none() {
                return Ok((object, None));
            }
        }
        // A stream (or no `endobj`): where its dictionary ends, exactly.
        let Some(skimmed) = skim(body) else {
            return match until_endobj {
                Some(_) => unreadable("a stream that does not skim"),
                None => unreadable("an object without `endobj` that does not skim"),
            };
        };
        let object = &body[..skimmed.end];
        // As lopdf: white space and comments, `stream`, spaces, an end of line.
        let after = skip_space(&body[skimmed.end..]);
        let Some(after) = after.strip_prefix(b"stream") else {
            return Ok((object, None));
        };
        if !skimmed.peek.is_dictionary {
            return unreadable("stream data after something not a dictionary");
        }
        let after = &after[after
            .iter()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .count()..];
        let data = eol(after).ok_or(ReadError::Unreadable("`stream` without an end of line"))?;
        let data_at = bytes.len() - data.len();
        let dict = match parse_direct(object)? {
            Object::Dictionary(dict) => dict,
            _ => return unreadable("a stream whose dictionary does not parse"),
        };
        let length = match dict.get(b"Length") {
            Ok(Object::Integer(n)) => *n,
            Ok(Object::Reference(r)) if depth < MAX_DEPTH => {
                match self
                    .raw(*r, depth + 1)?
                    .map(|raw| parse_direct(raw.slice()))
                {
                    Some(Ok(Object::Integer(n))) => n,
                    _ => return unreadable("a /Length that is not a number"),
                }
            }
            _ => return unreadable("a stream without /Length"),
        };
        let length = usize::try_from(length)
            .ok()
            .filter(|l| {
                data_at
                    .checked_add(*l)
                    .is_some_and(|end| end <= bytes.len())
            })
            .ok_or(ReadError::Unreadable("a /Length past the end"))?;
        let tail = &bytes[data_at + length..];
        // As lopdf: one optional end of line, then `endstream`.
        if !eol(tail).unwrap_or(tail).starts_with(b"endstream") {
            return unreadable("a /Length that does not reach `endstream`");
        }
        Ok((object, Some(&bytes[data_at..data_at + length])))
    }

    /// Where `endobj` is in `body`, within the scanning budget.
    fn find_endobj(&self, body: &[u8]) -> Option<usize> {
        let window = body.len().min(self.scan.get());
        let found = ENDOBJ.find(&body[..window]);
        self.scan
            .set(self.scan.get() - found.map_or(window, |at| at + 6).min(window));
        found
    }

    /// Decodes a stream's data within the limits.
    fn inflate(&self, dict: &Dictionary, data: &[u8]) -> Result<Vec<u8>> {
        let limit = self.max_stream_bytes.min(self.inflate.get());
        let stream = Stream::new(dict.clone(), data.to_vec());
        let plain = stream
            .get_plain_content_with_limit(limit)
            .map_err(|_| ReadError::Unreadable("a stream that does not decode within the limit"))?;
        self.inflate
            .set(self.inflate.get() - plain.len().min(limit));
        Ok(plain)
    }

    /// Object stream `number`, inflated and its header read (once).
    fn container(&self, number: u32, depth: usize) -> Result<Rc<Container>> {
        if let Some(found) = self.containers.borrow().get(&number) {
            return Ok(found.clone());
        }
        let Some(Entry::Normal { offset, generation }) = self.entry(number) else {
            return unreadable("an object stream that is not a plain object");
        };
        let (object, data) = self.indirect_at(offset, (number, generation), depth + 1)?;
        let (Object::Dictionary(dict), Some(data)) = (parse_direct(object)?, data) else {
            return unreadable("an object stream that is not a stream");
        };
        if !dict.has_type(b"ObjStm") {
            return unreadable("a container that is not an object stream");
        }
        let (Ok(first), Ok(n)) = (
            dict.get(b"First").and_then(Object::as_i64),
            dict.get(b"N").and_then(Object::as_i64),
        ) else {
            return unreadable("an object stream without /First or /N");
        };
        let content = self.inflate(&dict, data)?;
        let first = usize::try_from(first)
            .ok()
            .filter(|f| *f <= content.len())
            .ok_or(ReadError::Unreadable(
                "an object stream's /First past its end",
            ))?;
        let header = std::str::from_utf8(&content[..first])
            .map_err(|_| ReadError::Unreadable("an object stream header that is not numbers"))?;
        let numbers: Vec<usize> = header
            .split_ascii_whitespace()
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| ReadError::Unreadable("an object stream header that is not numbers"))?;
        if !numbers.len().is_multiple_of(2) || Some(numbers.len() / 2) != usize::try_from(n).ok() {
            return unreadable("an object stream header that is not /N pairs");
        }
        let mut members = Vec::with_capacity(numbers.len() / 2);
        let mut distinct = std::collections::HashSet::new();
        for pair in numbers.chunks(2) {
            let number = u32::try_from(pair[0])
                .map_err(|_| ReadError::Unreadable("an object number past the limit"))?;
            if !distinct.insert(number) {
                // lopdf keeps the last of them; leave it to lopdf.
                return unreadable("an object stream that holds a number twice");
            }
            let start = first.saturating_add(pair[1]);
            // lopdf parses each member from its offset to the stream's end
            // (one object from the front), not to the next member's offset.
            if start > content.len() {
                return unreadable("an object stream offset past its end");
            }
            members.push((number, start..content.len()));
        }
        let container = Rc::new(Container { content, members });
        self.containers
            .borrow_mut()
            .insert(number, container.clone());
        Ok(container)
    }

    /// The section at `offset`: a table (with its trailer) or a stream.
    fn section_at(&self, offset: usize) -> Result<(Section, Dictionary, bool)> {
        let bytes = self.bytes;
        let rest = &bytes[offset..];
        if rest.starts_with(b"xref") {
            let (runs, trailer) = table(bytes, offset + 4)?;
            let hybrid = match trailer.get(b"XRefStm") {
                Err(_) => None,
                Ok(at) => {
                    let at = at
                        .as_i64()
                        .ok()
                        .and_then(|a| usize::try_from(a).ok())
                        .filter(|a| *a < bytes.len())
                        .ok_or(ReadError::Unreadable("an /XRefStm that is not an offset"))?;
                    Some(self.stream_section(at)?.0)
                }
            };
            Ok((Section::Table { runs, hybrid }, trailer, false))
        } else {
            let (entries, dict) = self.stream_section(offset)?;
            Ok((Section::Stream(entries), dict, true))
        }
    }

    fn stream_section(&self, offset: usize) -> Result<(StreamEntries, Dictionary)> {
        let rest = &self.bytes[offset..];
        let bad = || ReadError::Unreadable("a cross-reference stream lopdf would not read");
        let (id, _) = object_header(rest).ok_or_else(bad)?;
        // lopdf reads a section before it has any table to find an indirect
        // /Length with: it must be direct.
        let (object, data) = self.indirect_at(offset, id, MAX_DEPTH)?;
        let (Object::Dictionary(mut dict), Some(data)) = (parse_direct(object)?, data) else {
            return Err(bad());
        };
        if !dict.has_type(b"XRef") {
            return unreadable("a stream that is not a cross-reference stream");
        }
        if matches!(dict.get(b"Filter"), Ok(Object::Array(filters)) if filters.is_empty()) {
            // lopdf decodes that to nothing.
            return unreadable("a cross-reference stream with an empty /Filter");
        }
        let integers = |key: &[u8]| -> Option<Vec<i64>> {
            dict.get(key)
                .ok()?
                .as_array()
                .ok()?
                .iter()
                .map(|v| v.as_i64().ok())
                .collect()
        };
        let widths = integers(b"W")
            .filter(|w| w.len() == 3 && w.iter().all(|v| (0..=8).contains(v)))
            .map(|w| [w[0] as usize, w[1] as usize, w[2] as usize])
            .ok_or_else(bad)?;
        let width: usize = widths.iter().sum();
        if width == 0 {
            return Err(bad());
        }
        let size = dict
            .get(b"Size")
            .and_then(Object::as_i64)
            .map_err(|_| bad())?;
        let index = match dict.get(b"Index") {
            Err(_) => vec![0, size],
            Ok(_) => integers(b"Index").ok_or_else(bad)?,
        };
        if index.len() % 2 != 0 {
            return Err(bad());
        }
        let rows = self.inflate(&dict, data)?;
        let mut runs: Vec<(u32, u32, usize)> = Vec::with_capacity(index.len() / 2);
        let mut row = 0usize;
        for pair in index.chunks(2) {
            let (Ok(first), Ok(count)) = (u32::try_from(pair[0]), u32::try_from(pair[1])) else {
                return Err(bad());
            };
            if first.checked_add(count).is_none() {
                return Err(bad());
            }
            runs.push((first, count, row));
            row = row.checked_add(count as usize).ok_or_else(bad)?;
        }
        // lopdf's bound: every row /Index promises is there, at least 3 bytes each.
        if row > rows.len() / width.max(MIN_ROW_WIDTH) {
            return Err(bad());
        }
        let mut sorted: Vec<(u64, u64)> = runs
            .iter()
            .map(|(first, count, _)| (u64::from(*first), u64::from(*first) + u64::from(*count)))
            .collect();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0].1 > w[1].0) {
            // lopdf lets the later run win; leave it to lopdf.
            return unreadable("cross-reference runs that overlap");
        }
        runs.sort_unstable_by_key(|(first, _, _)| *first);
        let entries = StreamEntries {
            widths,
            index: runs,
            rows,
        };
        // Types other than 0, 1 and 2 lopdf skips (and reads on past them).
        for number in entries.numbers() {
            if entries.get(number).is_none() {
                return unreadable("a cross-reference row lopdf would skip");
            }
        }
        for key in [
            b"Type".as_slice(),
            b"W",
            b"Index",
            b"Filter",
            b"DecodeParms",
            b"Length",
            b"DL",
            b"F",
            b"FFilter",
            b"FDecodeParms",
        ] {
            dict.remove(key);
        }
        Ok((entries, dict))
    }
}

/// An object's bytes: in the file, or in an inflated object stream.
enum Raw<'a> {
    File(&'a [u8]),
    Member(Rc<Container>, Range<usize>),
}

impl Raw<'_> {
    fn slice(&self) -> &[u8] {
        match self {
            Raw::File(bytes) => bytes,
            Raw::Member(container, range) => &container.content[range.clone()],
        }
    }
}

/// The offset `startxref` gives, found as lopdf finds it: the last `%%EOF`
/// in the last 1024 bytes (trailing white space aside), with `startxref`
/// at most 25 bytes before it.
fn startxref(bytes: &[u8]) -> Result<usize> {
    let end = bytes
        .iter()
        .rposition(|c| !b" \t\n\r\0\x0C".contains(c))
        .map_or(0, |pos| pos + 1);
    let seek = end - end.min(1024);
    let eof = seek
        + memchr::memmem::rfind(&bytes[seek..end], b"%%EOF")
            .filter(|at| seek + at > 25)
            .ok_or(ReadError::Unreadable("no %%EOF at the end"))?;
    let at = eof - 25
        + memchr::memmem::rfind(&bytes[eof - 25..eof], b"startxref")
            .ok_or(ReadError::Unreadable("no startxref before %%EOF"))?;
    let rest = &bytes[at + b"startxref".len()..];
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let rest = eol(rest).ok_or(ReadError::Unreadable("startxref without its line"))?;
    let rest = &rest[rest.iter().take_while(|b| **b == b' ').count()..];
    let (offset, rest) =
        integer(rest).ok_or(ReadError::Unreadable("startxref without an offset"))?;
    let rest = &rest[rest.iter().take_while(|b| **b == b' ').count()..];
    if !eol(rest).is_some_and(|r| r.starts_with(b"%%EOF")) {
        return unreadable("startxref not followed by %%EOF");
    }
    usize::try_from(offset)
        .ok()
        .filter(|o| *o < bytes.len())
        .ok_or(ReadError::Unreadable("startxref past the end"))
}

/// `N G obj` at the front (after white space, as lopdf reads it): the id,
/// and what follows `obj`.
fn object_header(bytes: &[u8]) -> Option<(ObjectId, &[u8])> {
    let (number, rest) = integer(skip_space(bytes))?;
    let (generation, rest) = integer(skip_space(rest))?;
    let rest = skip_space(rest).strip_prefix(b"obj")?;
    Some((
        (u32::try_from(number).ok()?, u16::try_from(generation).ok()?),
        rest,
    ))
}

/// The rest after an end of line at the front.
fn eol(bytes: &[u8]) -> Option<&[u8]> {
    bytes
        .strip_prefix(b"\r\n")
        .or_else(|| bytes.strip_prefix(b"\n"))
        .or_else(|| bytes.strip_prefix(b"\r"))
}

/// A table's runs: (first object number, its entries).
type Runs = Vec<(u32, Vec<Entry>)>;

/// A classic table's runs, from just after `xref`, and its trailer, in
/// lopdf's grammar (`offset generation n|f` lines of 20 bytes, or the
/// common 19 with a bare end of line), so a table lopdf could not read is
/// not read here either. Stricter than lopdf where lopdf would quietly
/// differ from what the file says: a run's count must be its length, runs
/// must not overlap, an in-use generation must fit.
fn table(bytes: &[u8], at: usize) -> Result<(Runs, Dictionary)> {
    let bad = ReadError::Unreadable("a cross-reference table lopdf would not read");
    let rest = &bytes[at..];
    let mut rest = eol(rest.strip_prefix(b" ").unwrap_or(rest)).ok_or(bad.clone())?;
    let mut runs: Runs = Vec::new();
    loop {
        let header = integer(rest).and_then(|(first, r)| {
            let (count, r) = integer(r.strip_prefix(b" ")?)?;
            let r = eol(r.strip_prefix(b" ").unwrap_or(r))?;
            Some((first, count, r))
        });
        let Some((first, count, mut r)) = header else {
            break;
        };
        let mut entries = Vec::new();
        while let Some((entry, after)) = table_entry(r) {
            // Bounded by the file: each entry takes at least 19 bytes.
            entries.push(entry?);
            r = after;
        }
        if u64::try_from(entries.len()).ok() != Some(count) {
            return unreadable("a table run whose count is not its length");
        }
        let first = u32::try_from(first)
            .ok()
            .filter(|f| f.checked_add(count as u32).is_some())
            .ok_or(bad.clone())?;
        runs.push((first, entries));
        rest = r;
    }
    if runs.is_empty() {
        return Err(bad);
    }
    let mut spans: Vec<(u64, u64)> = runs
        .iter()
        .map(|(first, e)| (u64::from(*first), u64::from(*first) + e.len() as u64))
        .collect();
    spans.sort_unstable();
    if spans.windows(2).any(|w| w[0].1 > w[1].0) {
        return unreadable("cross-reference runs that overlap");
    }
    runs.sort_unstable_by_key(|(first, _)| *first);
    let rest = skip_space(rest);
    let rest = rest.strip_prefix(b"trailer").ok_or(bad)?;
    let rest = skip_space(rest);
    let Some(skimmed) = skim(rest) else {
        return unreadable("a trailer that is not plainly a dictionary");
    };
    match parse_direct(&rest[..skimmed.end])? {
        Object::Dictionary(trailer) => Ok((runs, trailer)),
        _ => unreadable("a trailer that is not a dictionary"),
    }
}

/// One table entry at the front, and what follows it (`None` if there is
/// none; `Some(Err)` for one lopdf would skip).
fn table_entry(bytes: &[u8]) -> Option<(Result<Entry>, &[u8])> {
    let (offset, r) = integer(bytes)?;
    let (generation, r) = integer(r.strip_prefix(b" ")?)?;
    // lopdf reads both as 32-bit numbers, free entries too.
    u32::try_from(offset).ok()?;
    u32::try_from(generation).ok()?;
    let r = r.strip_prefix(b" ")?;
    let kind = *r.first()?;
    let r = &r[1..];
    let r = [b" \r".as_slice(), b" \n", b"\r\n", b"\n", b"\r"]
        .iter()
        .find_map(|end| r.strip_prefix(*end))?;
    let entry = match (kind, u16::try_from(generation)) {
        (b'n', Ok(generation)) => Ok(Entry::Normal {
            offset: offset as usize,
            generation,
        }),
        (b'f', _) => Ok(Entry::Free),
        (b'n', Err(_)) => Err(ReadError::Unreadable("a table entry lopdf would skip")),
        _ => return None,
    };
    Some((entry, r))
}

/// One object from the front of `body`, by lopdf's parser. lopdf exposes
/// that parser only through object streams, so the body is handed over as
/// the one member of an uncompressed object stream: the same parser, and
/// the same answers, as when lopdf loads the whole file.
fn parse_direct(body: &[u8]) -> Result<Object> {
    const HEADER: &[u8] = b"1 0\n";
    let mut content = Vec::with_capacity(HEADER.len() + body.len());
    content.extend_from_slice(HEADER);
    content.extend_from_slice(body);
    let stream = Stream::new(
        dictionary! { "Type" => "ObjStm", "N" => 1, "First" => HEADER.len() as i64 },
        content,
    );
    ObjectStream::new(&stream)
        .ok()
        .and_then(|mut s| s.objects.remove(&(1, 0)))
        .ok_or(ReadError::Unreadable("an object that does not parse"))
}

/// An object skimmed: where it ends, and what [`Reader::peek`] reports.
struct Skimmed {
    end: usize,
    peek: Peek,
}

/// Deepest nesting skimmed (lopdf parses 100 levels).
const MAX_SKIM_DEPTH: usize = 100;

/// A token at the top level of a skimmed dictionary.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Top<'b> {
    Name(&'b [u8]),
    Word(&'b [u8]),
    Other,
}

/// Where a dictionary's top level stands: a key is next, or the value of
/// `key`, or the value began with one integer (`first`), or with two (a
/// reference's number and generation: `R` is next).
#[derive(Clone, Copy)]
enum Expect<'b> {
    Key,
    Value(&'b [u8]),
    AfterInteger(&'b [u8], &'b [u8]),
    AfterTwoIntegers(&'b [u8]),
    /// In an array: any value next; after one or two integers, `R` may
    /// make the last two a reference.
    Element,
    ElementAfterIntegers(u8),
}

/// Skims the object at the front of `bytes` (after white space) without
/// building it: where it ends and, for a dictionary, its own `/Type` (the
/// last, as lopdf keeps). `None` for anything lopdf's parser might read
/// otherwise or not at all (a name with `#` escapes, a stray byte,
/// unbalanced brackets, a key that is not a name, `R` not after two
/// integers, an integer past i64, nesting past 100), which callers then
/// parse or decline.
fn skim(bytes: &[u8]) -> Option<Skimmed> {
    let mut i = bytes.len() - skip_space(bytes).len();
    // Per open container: its closer, and where its values stand (a
    // dictionary's keys and values alternate, and `R` must follow two
    // integers in any container), so nested values are held to lopdf's
    // grammar too.
    // (A stack grown as containers open, its length the depth: two arrays of
    // the deepest nesting cost more to clear than a page's whole dictionary
    // to skim.)
    let mut open: Vec<(u8, Expect)> = Vec::with_capacity(4);
    let is_dictionary = bytes[i..].starts_with(b"<<");
    let mut peek = Peek {
        kind: None,
        is_dictionary,
    };
    let mut nested = Peek {
        kind: None,
        is_dictionary: true,
    };
    loop {
        i = bytes.len() - skip_space(&bytes[i..]).len();
        let c = *bytes.get(i)?;
        let start = i;
        let level = open.len();
        let mut token = None;
        let mut closing = false;
        match c {
            b'<' if bytes.get(i + 1) == Some(&b'<') => {
                token = Some(Top::Other);
                open.push((b'>', Expect::Key));
                i += 2;
            }
            b'[' => {
                token = Some(Top::Other);
                open.push((b']', Expect::Element));
                i += 1;
            }
            b'>' if bytes.get(i + 1) == Some(&b'>') => {
                if open.last().map(|(closer, _)| *closer) != Some(b'>') {
                    return None;
                }
                closing = true;
                i += 2;
            }
            b']' => {
                if open.last().map(|(closer, _)| *closer) != Some(b']') {
                    return None;
                }
                closing = true;
                i += 1;
            }
            b'<' => {
                let len = bytes[i + 1..].iter().position(|b| *b == b'>')?;
                let hex = &bytes[i + 1..i + 1 + len];
                if !hex
                    .iter()
                    .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace())
                {
                    return None;
                }
                i += 1 + len + 1;
                token = Some(Top::Other);
            }
            b'(' => {
                let mut nesting = 0usize;
                i += 1;
                loop {
                    match *bytes.get(i)? {
                        b'\\' => i += 2,
                        b'(' => {
                            // lopdf's bound on nested parentheses.
                            nesting += 1;
                            if nesting > MAX_SKIM_DEPTH {
                                return None;
                            }
                            i += 1;
                        }
                        b')' if nesting == 0 => {
                            i += 1;
                            break;
                        }
                        b')' => {
                            nesting -= 1;
                            i += 1;
                        }
                        _ => i += 1,
                    }
                }
                token = Some(Top::Other);
            }
            b'/' => {
                i += 1 + regular_run(&bytes[i + 1..]);
                token = Some(Top::Name(&bytes[start + 1..i]));
            }
            b')' | b'>' | b'{' | b'}' => return None,
            _ => {
                let run = regular_run(&bytes[i..]);
                if run == 0 || !plain_word(&bytes[i..i + run]) {
                    return None;
                }
                i += run;
                token = Some(Top::Word(&bytes[start..i]));
            }
        }
        if open.len() >= MAX_SKIM_DEPTH {
            return None;
        }
        if closing {
            // A container ends: its own values must be complete (a key
            // without a value, or `N G` without `R`, is not).
            let record_into = if open.len() == 1 {
                &mut peek
            } else {
                &mut nested
            };
            match open.pop()?.1 {
                Expect::Key | Expect::Element => {}
                Expect::AfterInteger(key, value) => record(key, Top::Word(value), record_into)?,
                Expect::ElementAfterIntegers(_) => {}
                _ => return None,
            }
        }
        // A token (or a container's opening) is a value of the container it
        // starts in.
        if let Some(token) = token {
            if level > 0 {
                let record_into = if level == 1 && is_dictionary {
                    &mut peek
                } else {
                    &mut nested
                };
                let state = &mut open[level - 1].1;
                *state = step(*state, token, record_into)?;
            } else if matches!(token, Top::Word(b"R")) {
                return None;
            }
        }
        if open.is_empty() {
            break;
        }
    }
    Some(Skimmed { end: i, peek })
}

/// The next state of a container after `token` (`peek` records a
/// dictionary's `/Type`).
fn step<'b>(expect: Expect<'b>, token: Top<'b>, peek: &mut Peek) -> Option<Expect<'b>> {
    let unsigned = |w: &[u8]| !w.is_empty() && w.iter().all(u8::is_ascii_digit);
    Some(match (expect, token) {
        (Expect::Element | Expect::ElementAfterIntegers(_), Top::Word(w)) if unsigned(w) => {
            match expect {
                Expect::ElementAfterIntegers(n) => Expect::ElementAfterIntegers((n + 1).min(2)),
                _ => Expect::ElementAfterIntegers(1),
            }
        }
        (Expect::ElementAfterIntegers(2), Top::Word(b"R")) => Expect::Element,
        (Expect::Element | Expect::ElementAfterIntegers(_), Top::Word(b"R")) => return None,
        (Expect::Element | Expect::ElementAfterIntegers(_), _) => Expect::Element,
        (Expect::Key, Top::Name(key)) if !key.contains(&b'#') => Expect::Value(key),
        (Expect::Key, _) => return None,
        (Expect::Value(key), Top::Word(w)) if unsigned(w) => Expect::AfterInteger(key, w),
        (Expect::Value(_), Top::Word(b"R")) => return None,
        (Expect::Value(key), value) => {
            record(key, value, peek)?;
            Expect::Key
        }
        (Expect::AfterInteger(key, _), Top::Word(w)) if unsigned(w) => {
            Expect::AfterTwoIntegers(key)
        }
        (Expect::AfterInteger(key, value), Top::Name(next)) if !next.contains(&b'#') => {
            record(key, Top::Word(value), peek)?;
            Expect::Value(next)
        }
        (Expect::AfterInteger(..), _) => return None,
        (Expect::AfterTwoIntegers(key), Top::Word(b"R")) => {
            // A reference: not a type name.
            record(key, Top::Other, peek)?;
            Expect::Key
        }
        (Expect::AfterTwoIntegers(_), _) => return None,
    })
}

/// Notes `key`'s value if it is `/Type`.
fn record(key: &[u8], value: Top<'_>, peek: &mut Peek) -> Option<()> {
    match (key, value) {
        (b"Type", Top::Name(name)) if name.contains(&b'#') => return None,
        (b"Type", Top::Name(name)) => peek.kind = Some(Kind::of(name)),
        (b"Type", _) => peek.kind = None,
        _ => {}
    }
    Some(())
}

/// A number or a keyword lopdf parses as a value or a reference's `R`:
/// anything else (a stray byte, an operator) is left to lopdf's parser.
fn plain_word(word: &[u8]) -> bool {
    let digits = word
        .strip_prefix(b"+")
        .or_else(|| word.strip_prefix(b"-"))
        .unwrap_or(word);
    let number = !digits.is_empty()
        && digits.iter().filter(|b| **b == b'.').count() <= 1
        && digits.iter().any(u8::is_ascii_digit)
        && digits.iter().all(|b| b.is_ascii_digit() || *b == b'.')
        // An integer lopdf reads as one (i64).
        && (digits.contains(&b'.')
            || std::str::from_utf8(word).is_ok_and(|w| w.parse::<i64>().is_ok()));
    number || matches!(word, b"true" | b"false" | b"null" | b"R")
}

/// Whether a byte is white space or a delimiter (ISO 32000-1, 7.2.2), by
/// table: the skim asks it of every byte.
const SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let special = b" \t\r\n\x0c\0()<>[]{}/%";
    let mut i = 0;
    while i < special.len() {
        table[special[i] as usize] = true;
        i += 1;
    }
    table
};

/// Length of the run of regular characters at the front.
fn regular_run(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take_while(|b| !SPECIAL[usize::from(**b)])
        .count()
}

fn skip_space(mut bytes: &[u8]) -> &[u8] {
    loop {
        match bytes.first() {
            Some(b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' | b'\0') => bytes = &bytes[1..],
            Some(b'%') => {
                let end = bytes
                    .iter()
                    .position(|b| *b == b'\n' || *b == b'\r')
                    .unwrap_or(bytes.len());
                bytes = &bytes[end..];
            }
            _ => return bytes,
        }
    }
}

/// A non-negative decimal integer at the front (at most 19 digits).
fn integer(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let value = bytes[..digits]
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
    Some((value, &bytes[digits..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skims_type_and_end_past_nested_values() {
        let page_tree = b"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 /MediaBox [0 0 595 842] \
            /Resources << /Font << /F1 << /Type /Font >> >> >> /Title (a \\) (nested) >> text) >> rest";
        let skimmed = skim(page_tree).unwrap();
        assert_eq!(&page_tree[skimmed.end..], b" rest");
        assert_eq!(skimmed.peek.kind, Some(Kind::Pages));
        // A nested /Type is not the type.
        let page = skim(b"<</Parent 1 0 R/Count 5 0 R/AP<</Type/XObject>>>>").unwrap();
        assert_eq!(page.peek.kind, None);
        assert!(page.peek.is_dictionary);
        // References inside arrays and nested dictionaries.
        let refs = skim(b"<</Kids[1 0 R 2 0 R]/A<</B 3 0 R/C[4 5 6 R]>>/D 7>>").unwrap();
        assert!(refs.peek.is_dictionary);
        let leaf = skim(b"<</Type/Page/Parent 1 0 R>>endobj").unwrap();
        assert_eq!(leaf.peek.kind, Some(Kind::Page));
        assert_eq!(leaf.end, b"<</Type/Page/Parent 1 0 R>>".len());
        // Not plainly formed: left to the parser.
        for odd in [
            b"<< /Type /Pag#65 >>".as_slice(),
            b"<< /Type /Page",
            b"<< /Kids [1 0 R >>",
            b"<< 5 /Type >>",
            b"<< /A (unclosed >>",
            b"<< /Parent \x11 0 R >>",
            b"<< /A <4G> >>",
            b"<< /X [R] >>",
            b"<< /A << 5 /B >> >>",
            b"<< /A 1 0 >>",
            b"<< /A [1 R] >>",
            b"<< /A R >>",
            b"<< /A 99999999999999999999 >>",
            b"<< /A << /B >> >>",
        ] {
            assert!(skim(odd).is_none(), "{}", String::from_utf8_lossy(odd));
        }
    }

    /// A file with a hybrid section: the table lists object 3 as free and
    /// its `/XRefStm` puts it in an object stream.
    fn hybrid() -> Vec<u8> {
        let mut out = b"%PDF-1.5\n".to_vec();
        let mut at = Vec::new();
        for body in [
            b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n".as_slice(),
            b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 200 300] >>\nendobj\n",
        ] {
            at.push(out.len());
            out.extend_from_slice(body);
        }
        let member = b"3 0 << /Type /Page /Parent 2 0 R >>";
        at.push(out.len());
        out.extend_from_slice(
            format!(
                "4 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Length {} >>\nstream\n",
                member.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(member);
        out.extend_from_slice(b"\nendstream\nendobj\n");
        let stream_at = out.len();
        let mut rows = Vec::new();
        rows.extend_from_slice(&[2, 0, 0, 0, 4, 0, 0]);
        out.extend_from_slice(
            format!(
                "5 0 obj\n<< /Type /XRef /Size 6 /Index [3 1] /W [1 4 2] /Length {} >>\nstream\n",
                rows.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&rows);
        out.extend_from_slice(b"\nendstream\nendobj\n");
        let table_at = out.len();
        out.extend_from_slice(b"xref\n0 6\n0000000000 65535 f \n");
        for offset in [at[0], at[1]] {
            out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(b"0000000000 00000 f \n");
        out.extend_from_slice(format!("{:010} 00000 n \n", at[2]).as_bytes());
        out.extend_from_slice(format!("{stream_at:010} 00000 n \n").as_bytes());
        out.extend_from_slice(
            format!(
                "trailer\n<< /Size 6 /Root 1 0 R /XRefStm {stream_at} >>\nstartxref\n{table_at}\n%%EOF\n"
            )
            .as_bytes(),
        );
        out
    }

    #[test]
    fn a_hybrid_file_finds_in_its_stream_what_its_table_leaves_free() {
        let file = hybrid();
        let full = lopdf::Document::load_mem(&file).unwrap();
        assert_eq!(full.get_pages().len(), 1, "lopdf reads the fixture too");
        let reader = Reader::open(&file, 1 << 20).unwrap();
        let page = reader.dictionary((3, 0)).unwrap();
        assert_eq!(page.get(b"Type").unwrap().as_name().unwrap(), b"Page");
        assert_eq!(&page, full.get_dictionary((3, 0)).unwrap());
        assert_eq!(reader.current(3), Some((3, 0)));
        assert_eq!(reader.size(), 6);
        assert!(!reader.newest_is_stream());
        // The trailer as read: /Prev taken out (an update writes its own),
        // /XRefStm still there (the writer drops it).
        assert!(!reader.trailer().has(b"Prev"));
        assert!(reader.trailer().has(b"XRefStm"));
    }

    #[test]
    fn what_lopdf_would_read_differently_is_declined() {
        let file = hybrid();
        let declined = |file: &[u8]| Reader::open(file, 1 << 20).err();
        // A /Size far past the entries is not trusted (the entries decide).
        let mut big = file.clone();
        let at = memchr::memmem::rfind(&big, b"/Size 6").unwrap();
        big.splice(at..at + 7, b"/Size 4294967295".iter().copied());
        assert_eq!(Reader::open(&big, 1 << 20).unwrap().size(), 6);
        // Run counts that are not their lengths, and an in-use entry whose
        // generation does not fit, are left to lopdf.
        let mut short = file.clone();
        let at = memchr::memmem::find(&short, b"xref\n0 6").unwrap();
        short[at + 7] = b'7';
        assert!(declined(&short).is_some());
        let mut generation = file.clone();
        let at = memchr::memmem::find(&generation, b" 00000 n \n").unwrap();
        generation.splice(at..at + 6, b" 99999".iter().copied());
        assert!(declined(&generation).is_some());
        // A reference of another generation than its entry's.
        let reader = Reader::open(&file, 1 << 20).unwrap();
        assert!(reader.object((2, 1)).is_err());
        assert_eq!(reader.object((9, 0)).unwrap(), Object::Null);
    }
}
