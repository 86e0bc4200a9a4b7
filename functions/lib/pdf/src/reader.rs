//! Reading a PDF by its cross-reference data: only the objects asked for are
//! located, decompressed and parsed.
//!
//! lopdf's loader parses every object of a file (object streams included) to
//! give a [`lopdf::Document`]; the stamp needs the trailer, the catalog, the
//! path through the page tree, the page and the form. This reader keeps the
//! cross-reference sections (tables, streams, hybrid files, the `/Prev` chain
//! of earlier updates) and parses an object when it is asked for, with
//! lopdf's own object parser (see [`parse_direct`]) and its stream decoders.
//!
//! It is strict on purpose: anything it does not find exactly where the
//! cross-reference data says (an offset off by a byte, a section that does
//! not parse, a stream whose `/Length` is wrong, an encrypted file) is
//! [`ReadError::Unreadable`], and the caller then loads the file the old way,
//! with lopdf's repairs and refusals. So a file is never accepted here that
//! the full loader would refuse, and broken files keep their answers.

use std::cell::RefCell;
use std::collections::HashMap;
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
    /// (first object number, count, first row).
    index: Vec<(u32, u32, usize)>,
    rows: Vec<u8>,
}

impl StreamEntries {
    fn get(&self, number: u32) -> Option<Entry> {
        let &(first, _, row0) = self
            .index
            .iter()
            .find(|(first, count, _)| number >= *first && number - first < *count)?;
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
            // Unknown types are null references (ISO 32000-1, 7.5.8.3).
            _ => Entry::Free,
        })
    }

    fn max_number(&self) -> u32 {
        self.index
            .iter()
            .map(|(first, count, _)| first.saturating_add(*count))
            .max()
            .unwrap_or(0)
    }

    /// The object numbers that have a row (an `/Index` longer than the
    /// data lists only what the data holds).
    fn numbers(&self) -> impl Iterator<Item = u32> + '_ {
        let width: usize = self.widths.iter().sum::<usize>().max(1);
        let rows = self.rows.len() / width;
        self.index.iter().flat_map(move |&(first, count, row0)| {
            let listed = (count as usize).min(rows.saturating_sub(row0));
            (0..listed as u32).map(move |i| first + i)
        })
    }
}

/// A table's runs: (first object number, its entries).
type Runs = Vec<(u32, Vec<Entry>)>;

/// One section of the chain.
#[derive(Debug)]
enum Section {
    /// A classic table: runs of (first number, entries); with the
    /// `/XRefStm` of a hybrid file, consulted for what the table leaves free.
    Table {
        runs: Runs,
        hybrid: Option<StreamEntries>,
    },
    Stream(StreamEntries),
}

impl Section {
    fn get(&self, number: u32) -> Option<Entry> {
        match self {
            Section::Stream(entries) => entries.get(number),
            Section::Table { runs, hybrid } => {
                let listed = runs.iter().find_map(|(first, entries)| {
                    let i = number.checked_sub(*first)? as usize;
                    entries.get(i).copied()
                });
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

    fn max_number(&self) -> u32 {
        match self {
            Section::Stream(entries) => entries.max_number(),
            Section::Table { runs, hybrid } => runs
                .iter()
                .map(|(first, e)| first.saturating_add(e.len() as u32))
                .chain(hybrid.as_ref().map(StreamEntries::max_number))
                .max()
                .unwrap_or(0),
        }
    }
}

/// Most sections followed through `/Prev` (real files have a handful).
const MAX_SECTIONS: usize = 256;
/// Deepest chain of indirect `/Length`s or references followed at once.
const MAX_DEPTH: usize = 32;

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
    containers: RefCell<HashMap<u32, Rc<Vec<u8>>>>,
}

impl<'a> Reader<'a> {
    /// Reads the chain of cross-reference sections; no object yet. Streams
    /// (cross-reference and object streams) inflate to `max_stream_bytes` at
    /// most.
    pub fn open(bytes: &'a [u8], max_stream_bytes: usize) -> Result<Self> {
        if !bytes.starts_with(b"%PDF-") {
            return unreadable("no header at the start");
        }
        let startxref = startxref(bytes)?;
        let mut reader = Reader {
            bytes,
            sections: Vec::new(),
            trailer: Dictionary::new(),
            startxref,
            newest_is_stream: false,
            size: 0,
            max_stream_bytes,
            containers: RefCell::default(),
        };
        let mut next = Some(startxref);
        let mut seen = std::collections::HashSet::new();
        while let Some(offset) = next {
            if !seen.insert(offset) || reader.sections.len() >= MAX_SECTIONS {
                return unreadable("a /Prev chain that loops or does not end");
            }
            let (section, mut trailer, is_stream) = reader.section_at(offset)?;
            let size = trailer
                .get(b"Size")
                .and_then(Object::as_i64)
                .ok()
                .and_then(|s| u32::try_from(s).ok())
                .ok_or(ReadError::Unreadable("a section without /Size"))?;
            reader.size = reader.size.max(size).max(section.max_number());
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
        if reader.trailer.has(b"Encrypt") {
            // Objects would need decrypting and the update encrypting.
            return unreadable("encrypted");
        }
        Ok(reader)
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The newest trailer, without `/Prev` (from a cross-reference stream:
    /// its dictionary).
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

    /// The first object number no section uses.
    pub fn size(&self) -> u32 {
        self.size
    }

    fn entry(&self, number: u32) -> Option<Entry> {
        self.sections.iter().find_map(|(_, s)| s.get(number))
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
        self.object_at_depth(id, 0)
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

    fn object_at_depth(&self, id: ObjectId, depth: usize) -> Result<Object> {
        if depth > MAX_DEPTH {
            return unreadable("references nested too deep");
        }
        match self.entry(id.0) {
            None | Some(Entry::Free) => Ok(Object::Null),
            Some(Entry::Normal { offset, generation }) => {
                if generation != id.1 {
                    return Ok(Object::Null);
                }
                let (object, stream) = self.indirect_at(offset, id, depth)?;
                match stream {
                    // Streams are read only as containers, never handed out.
                    Some(_) => unreadable("a stream where an object was expected"),
                    None => Ok(object),
                }
            }
            Some(Entry::Compressed { container, index }) => {
                if id.1 != 0 {
                    return Ok(Object::Null);
                }
                self.compressed(id.0, container, index, depth)
            }
        }
    }

    /// The object at `offset`, which must be `id`'s header, and its stream
    /// data if it is a stream.
    fn indirect_at(
        &self,
        offset: usize,
        id: ObjectId,
        depth: usize,
    ) -> Result<(Object, Option<&'a [u8]>)> {
        let bytes = self.bytes;
        let rest = bytes
            .get(offset..)
            .ok_or(ReadError::Unreadable("an offset past the end"))?;
        let (number, rest) = integer(rest).ok_or(ReadError::Unreadable("no object header"))?;
        let (generation, rest) =
            integer(skip_space(rest)).ok_or(ReadError::Unreadable("no object header"))?;
        let rest = skip_space(rest);
        if (number, generation) != (u64::from(id.0), u64::from(id.1)) || !rest.starts_with(b"obj") {
            return unreadable("the cross-reference data points elsewhere");
        }
        let body_at = bytes.len() - rest.len() + 3;
        let body = &bytes[body_at..];
        // The body ends at `endobj`, or at `stream` for a stream: the object
        // parser reads one object from the front and ignores what follows.
        let end = memchr::memmem::find(body, b"endobj").unwrap_or(body.len());
        let stream_kw = memchr::memmem::find(&body[..end], b"stream");
        let object = parse_direct(&body[..stream_kw.unwrap_or(end)])?;
        let Some(kw) = stream_kw else {
            return Ok((object, None));
        };
        let Object::Dictionary(dict) = &object else {
            return unreadable("stream data after something not a dictionary");
        };
        // The keyword counts only right after the dictionary (a `stream`
        // inside a name or after other bytes is not one, and lopdf would
        // then read a dictionary; let it).
        let before = &body[..kw];
        let blanks = before
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        if !before[..before.len() - blanks].ends_with(b">>") {
            return unreadable("`stream` that does not follow its dictionary");
        }
        let mut data_at = body_at + kw + b"stream".len();
        if bytes.get(data_at..data_at + 2) == Some(b"\r\n") {
            data_at += 2;
        } else if bytes.get(data_at) == Some(&b'\n') {
            data_at += 1;
        } else {
            return unreadable("`stream` not followed by an end of line");
        }
        let length = match dict.get(b"Length") {
            Ok(Object::Integer(n)) => *n,
            Ok(Object::Reference(r)) => match self.object_at_depth(*r, depth + 1)? {
                Object::Integer(n) => n,
                _ => return unreadable("a /Length that is not a number"),
            },
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
        let data = &bytes[data_at..data_at + length];
        if !skip_space(&bytes[data_at + length..]).starts_with(b"endstream") {
            return unreadable("a /Length that does not reach `endstream`");
        }
        Ok((object, Some(data)))
    }

    /// Decodes a stream's data within the limit.
    fn inflate(&self, dict: &Dictionary, data: &[u8]) -> Result<Vec<u8>> {
        let stream = Stream::new(dict.clone(), data.to_vec());
        stream
            .get_plain_content_with_limit(self.max_stream_bytes)
            .map_err(|_| ReadError::Unreadable("a stream that does not decode within the limit"))
    }

    fn compressed(&self, number: u32, container: u32, index: u32, depth: usize) -> Result<Object> {
        let cached = self.containers.borrow().get(&container).cloned();
        let (content, first, n) = {
            let Some(Entry::Normal { offset, generation }) = self.entry(container) else {
                return unreadable("an object stream that is not a plain object");
            };
            let (object, data) = self.indirect_at(offset, (container, generation), depth + 1)?;
            let (Object::Dictionary(dict), Some(data)) = (object, data) else {
                return unreadable("an object stream that is not a stream");
            };
            if !dict.has_type(b"ObjStm") {
                return unreadable("a container that is not an object stream");
            }
            let first = dict.get(b"First").and_then(Object::as_i64);
            let n = dict.get(b"N").and_then(Object::as_i64);
            let (Ok(first), Ok(n)) = (first, n) else {
                return unreadable("an object stream without /First or /N");
            };
            let content = match cached {
                Some(content) => content,
                None => {
                    let content = Rc::new(self.inflate(&dict, data)?);
                    self.containers
                        .borrow_mut()
                        .insert(container, content.clone());
                    content
                }
            };
            (content, first, n)
        };
        let first = usize::try_from(first)
            .ok()
            .filter(|f| *f <= content.len())
            .ok_or(ReadError::Unreadable(
                "an object stream's /First past its end",
            ))?;
        if index as i64 >= n {
            return unreadable("an index past the object stream's /N");
        }
        // The header: pairs of object number and offset from /First.
        let header = std::str::from_utf8(&content[..first])
            .map_err(|_| ReadError::Unreadable("an object stream header that is not numbers"))?;
        let mut numbers = header.split_ascii_whitespace().map(str::parse::<usize>);
        let mut pairs = Vec::with_capacity(2);
        for _ in 0..=index {
            match (numbers.next(), numbers.next()) {
                (Some(Ok(num)), Some(Ok(off))) => pairs.push((num, off)),
                _ => return unreadable("an object stream header too short"),
            }
        }
        let (listed, offset) = pairs[index as usize];
        if listed != number as usize {
            return unreadable("an object stream that holds another object there");
        }
        let next = match (numbers.next(), numbers.next()) {
            (Some(Ok(_)), Some(Ok(off))) => first.saturating_add(off),
            _ => content.len(),
        };
        let start = first.saturating_add(offset);
        let body = content
            .get(start..next.max(start).min(content.len()))
            .ok_or(ReadError::Unreadable(
                "an object stream offset past its end",
            ))?;
        parse_direct(body)
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
        let (number, after) = integer(rest).ok_or(ReadError::Unreadable("no section there"))?;
        let (generation, _) =
            integer(skip_space(after)).ok_or(ReadError::Unreadable("no section there"))?;
        let id = (
            u32::try_from(number).map_err(|_| ReadError::Unreadable("no section there"))?,
            u16::try_from(generation).map_err(|_| ReadError::Unreadable("no section there"))?,
        );
        let (object, data) = self.indirect_at(offset, id, 0)?;
        let (Object::Dictionary(mut dict), Some(data)) = (object, data) else {
            return unreadable("a cross-reference stream that is not a stream");
        };
        if !dict.has_type(b"XRef") {
            return unreadable("a stream that is not a cross-reference stream");
        }
        let widths = dict
            .get(b"W")
            .and_then(Object::as_array)
            .ok()
            .filter(|w| w.len() == 3)
            .and_then(|w| {
                let mut out = [0usize; 3];
                for (slot, v) in out.iter_mut().zip(w) {
                    *slot = usize::try_from(v.as_i64().ok()?).ok().filter(|v| *v <= 8)?;
                }
                Some(out)
            })
            .ok_or(ReadError::Unreadable("a cross-reference stream without /W"))?;
        let size = dict
            .get(b"Size")
            .and_then(Object::as_i64)
            .ok()
            .and_then(|s| u32::try_from(s).ok())
            .ok_or(ReadError::Unreadable(
                "a cross-reference stream without /Size",
            ))?;
        let index = match dict.get(b"Index") {
            Err(_) => vec![0, i64::from(size)],
            Ok(Object::Array(a)) => a
                .iter()
                .map(Object::as_i64)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|_| ReadError::Unreadable("an /Index that is not numbers"))?,
            Ok(_) => return unreadable("an /Index that is not an array"),
        };
        if index.len() % 2 != 0 {
            return unreadable("an /Index of odd length");
        }
        let mut runs = Vec::with_capacity(index.len() / 2);
        let mut row = 0usize;
        for pair in index.chunks(2) {
            let (Ok(first), Ok(count)) = (u32::try_from(pair[0]), u32::try_from(pair[1])) else {
                return unreadable("an /Index that is not object numbers");
            };
            runs.push((first, count, row));
            row = row.saturating_add(count as usize);
        }
        let rows = self.inflate(&dict, data)?;
        for key in [
            b"Type".as_slice(),
            b"W",
            b"Index",
            b"Filter",
            b"DecodeParms",
            b"Length",
        ] {
            dict.remove(key);
        }
        Ok((
            StreamEntries {
                widths,
                index: runs,
                rows,
            },
            dict,
        ))
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

/// The rest after an end of line at the front.
fn eol(bytes: &[u8]) -> Option<&[u8]> {
    bytes
        .strip_prefix(b"\r\n")
        .or_else(|| bytes.strip_prefix(b"\n"))
        .or_else(|| bytes.strip_prefix(b"\r"))
}

/// A classic table's runs, from just after `xref`, and its trailer, in
/// lopdf's grammar (runs of `offset generation n|f` lines, 20 bytes each or
/// the common 19 with a bare end of line; as many entries as parse), so a
/// table lopdf could not read is not read here either.
fn table(bytes: &[u8], at: usize) -> Result<(Runs, Dictionary)> {
    let bad = ReadError::Unreadable("a cross-reference table lopdf would not read");
    let rest = &bytes[at..];
    let mut rest = eol(rest.strip_prefix(b" ").unwrap_or(rest)).ok_or(bad.clone())?;
    let mut runs = Vec::new();
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
    let rest = skip_space(rest);
    let rest = rest.strip_prefix(b"trailer").ok_or(bad)?;
    let end = memchr::memmem::find(rest, b"startxref").unwrap_or(rest.len());
    match parse_direct(skip_space(&rest[..end]))? {
        Object::Dictionary(trailer) => Ok((runs, trailer)),
        _ => unreadable("a trailer that is not a dictionary"),
    }
}

/// One table entry at the front, and what follows it (`None` if there is
/// none; `Some(Err)` for one lopdf would skip).
fn table_entry(bytes: &[u8]) -> Option<(Result<Entry>, &[u8])> {
    let (offset, r) = integer(bytes)?;
    let (generation, r) = integer(r.strip_prefix(b" ")?)?;
    let r = r.strip_prefix(b" ")?;
    let kind = *r.first()?;
    let r = &r[1..];
    let r = [b" \r".as_slice(), b" \n", b"\r\n", b"\n", b"\r"]
        .iter()
        .find_map(|end| r.strip_prefix(*end))?;
    let entry = match (kind, u16::try_from(generation), usize::try_from(offset)) {
        (b'n', Ok(generation), Ok(offset)) if u32::try_from(offset).is_ok() => {
            Ok(Entry::Normal { offset, generation })
        }
        (b'f', _, _) => Ok(Entry::Free),
        (b'n', _, _) => Err(ReadError::Unreadable("a table entry lopdf would skip")),
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
    let value = std::str::from_utf8(&bytes[..digits]).ok()?.parse().ok()?;
    Some((value, &bytes[digits..]))
}
