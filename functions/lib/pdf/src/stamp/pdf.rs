//! Affixing the mark to a PDF as an incremental update.
//!
//! The original bytes stay, byte for byte, the prefix of the output: the mark
//! is the widget of a new (unsigned) signature field whose appearance is a Form
//! XObject; the only changed objects are the page (its `/Annots` grows) and
//! the form (its `/Fields` grows), written after the original with a new
//! cross-reference section whose `/Prev` points back. The page's content
//! stream is never touched, so a signature made before stamping stays valid
//! (pyHanko accepts a new signature field as an allowed change; it rejects a
//! free-standing `/Stamp` annotation).

use lopdf::{dictionary, Dictionary, Document, IncrementalDocument, Object, ObjectId, Stream};
use sha2::{Digest, Sha256};

use super::mark;

/// Where the mark goes (a rule of the domain, in `meterai-core`).
pub use meterai_core::jobs::Placement;

pub use meterai_core::jobs::DEFAULT_SIZE;

/// Limits on what the stamper accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_pages: u32,
    /// Most bytes one object or cross-reference stream may inflate to while
    /// the file is parsed. Real ones hold a few hundred objects (kilobytes);
    /// the bound keeps a small crafted file from inflating to gigabytes.
    pub max_stream_bytes: usize,
}

/// Default for [`Limits::max_stream_bytes`]: 16 MiB.
pub const DEFAULT_MAX_STREAM_BYTES: usize = 16 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            max_pages: 500,
            max_stream_bytes: DEFAULT_MAX_STREAM_BYTES,
        }
    }
}

/// Why a document cannot be stamped. All are permanent: retrying will not help.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StampError {
    #[error("the file is not a PDF")]
    NotPdf,
    #[error("the PDF is damaged and cannot be read: {0}")]
    Malformed(String),
    #[error(
        "the PDF's cross-reference data is damaged; it cannot be stamped without rewriting it"
    )]
    Damaged,
    #[error("the PDF is encrypted with a password")]
    Encrypted,
    #[error("a stream in the PDF inflates beyond {limit} bytes")]
    TooComplex { limit: usize },
    #[error("the PDF has no pages")]
    NoPages,
    #[error("the PDF has {pages} pages; the limit is {limit}")]
    TooManyPages { pages: u32, limit: u32 },
    #[error("the PDF is {bytes} bytes; the limit is {limit}")]
    TooLarge { bytes: usize, limit: usize },
    #[error("page {page} does not exist; the document has {pages} pages")]
    PageOutOfRange { page: u32, pages: u32 },
    #[error("the document could not be signed: {0}")]
    Unsigned(String),
    #[error("the mark ({width} x {height} pt at {x}, {y}) does not fit on page {page} ({page_width} x {page_height} pt)")]
    OffPage {
        page: u32,
        x: f64,
        y: f64,
        width: f64,
        height: f64,
        page_width: f64,
        page_height: f64,
    },
}

impl StampError {
    /// Stable error code recorded on the failed job.
    pub fn code(&self) -> &'static str {
        match self {
            StampError::NotPdf => "NOT_A_PDF",
            StampError::Malformed(_) => "MALFORMED_PDF",
            StampError::Damaged => "DAMAGED_PDF",
            StampError::Encrypted => "ENCRYPTED_PDF",
            StampError::TooComplex { .. } => "PDF_TOO_COMPLEX",
            StampError::NoPages => "NO_PAGES",
            StampError::TooManyPages { .. } => "TOO_MANY_PAGES",
            StampError::TooLarge { .. } => "DOCUMENT_TOO_LARGE",
            StampError::PageOutOfRange { .. } => "PAGE_OUT_OF_RANGE",
            StampError::OffPage { .. } => "RECT_OFF_PAGE",
            StampError::Unsigned(_) => "SIGNING_FAILED",
        }
    }
}

/// The stamped file.
#[derive(Debug, Clone)]
pub struct Stamped {
    pub bytes: Vec<u8>,
    /// Hex SHA-256 of `bytes`, the document the serial is bound to.
    pub sha256: String,
    pub pages: u32,
}

/// What the mark says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkText<'a> {
    pub serial: &'a str,
    pub verify_url: &'a str,
}

/// A page and the nodes above it in the page tree, nearest first: where the
/// inheritable attributes (`/MediaBox`, `/CropBox`, `/Rotate`) are found.
pub(crate) struct PageChain<'r> {
    pub nodes: Vec<Dictionary>,
    /// The object a reference in those attributes points to.
    pub resolve: &'r dyn Fn(&Object) -> Option<Object>,
}

/// What the placement is checked and mapped against: the visible box (in
/// default user space) and the rotation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageShape {
    page_box: [f64; 4],
    turns: u8,
}

impl PageChain<'_> {
    pub(crate) fn shape(&self) -> PageShape {
        PageShape {
            page_box: self.page_box().unwrap_or([0.0, 0.0, 612.0, 792.0]),
            turns: self.quarter_turns(),
        }
    }

    fn value(&self, object: &Object) -> Option<Object> {
        match object {
            Object::Reference(_) => (self.resolve)(object),
            other => Some(other.clone()),
        }
    }

    fn inherited(&self, key: &[u8]) -> Option<Object> {
        let found = self.nodes.iter().find_map(|node| node.get(key).ok())?;
        self.value(found)
    }

    /// The visible page box: `/CropBox` (inherited) if present, else `/MediaBox`.
    fn page_box(&self) -> Option<[f64; 4]> {
        let crop = self.inherited(b"CropBox").and_then(|o| self.rect(&o));
        let media = self.inherited(b"MediaBox").and_then(|o| self.rect(&o));
        let b = crop.or(media)?;
        Some([
            b[0].min(b[2]),
            b[1].min(b[3]),
            b[0].max(b[2]),
            b[1].max(b[3]),
        ])
    }

    fn rect(&self, object: &Object) -> Option<[f64; 4]> {
        let array = object.as_array().ok()?;
        if array.len() != 4 {
            return None;
        }
        let mut r = [0.0; 4];
        for (slot, value) in r.iter_mut().zip(array) {
            *slot = number(&self.value(value)?)?;
        }
        Some(r)
    }

    /// Page rotation in quarter turns clockwise (0-3).
    fn quarter_turns(&self) -> u8 {
        let degrees = self
            .inherited(b"Rotate")
            .and_then(|o| number(&o))
            .unwrap_or(0.0) as i64;
        (degrees.rem_euclid(360) / 90) as u8
    }
}

fn number(object: &Object) -> Option<f64> {
    match object {
        Object::Integer(i) => Some(*i as f64),
        Object::Real(r) => Some(f64::from(*r)),
        _ => None,
    }
}

/// Maps a rectangle given on the displayed page to default user space, and
/// the form matrix that keeps the mark upright on the rotated page.
pub fn to_user_space(placement: &Placement, page_box: [f64; 4], turns: u8) -> ([f64; 4], [f64; 6]) {
    let [llx, lly, urx, ury] = page_box;
    let map = |x: f64, y: f64| match turns {
        1 => (urx - y, lly + x),
        2 => (urx - x, ury - y),
        3 => (llx + y, ury - x),
        _ => (llx + x, lly + y),
    };
    let (x0, y0) = map(placement.x, placement.y);
    let (x1, y1) = map(
        placement.x + placement.width,
        placement.y + placement.height,
    );
    let user = [x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1)];
    let matrix = match turns {
        1 => [0.0, 1.0, -1.0, 0.0, 0.0, 0.0],
        2 => [-1.0, 0.0, 0.0, -1.0, 0.0, 0.0],
        3 => [0.0, -1.0, 1.0, 0.0, 0.0, 0.0],
        _ => [1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
    };
    (user, matrix)
}

/// Checks a file cheaply before any parsing (the API does this at accept time).
pub fn sniff(head: &[u8]) -> Result<(), StampError> {
    if head.starts_with(b"%PDF-") {
        Ok(())
    } else {
        Err(StampError::NotPdf)
    }
}

/// Whether lopdf stopped because a stream would inflate past the limit.
fn is_memory_limit(error: &lopdf::Error) -> bool {
    matches!(
        error,
        lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. })
    )
}

/// Loads and checks a document, and returns it with its page count.
pub(crate) fn load(original: &[u8], limits: &Limits) -> Result<Document, StampError> {
    if original.len() > limits.max_bytes {
        return Err(StampError::TooLarge {
            bytes: original.len(),
            limit: limits.max_bytes,
        });
    }
    sniff(original)?;
    let options = lopdf::LoadOptions {
        max_decompressed_size: Some(limits.max_stream_bytes),
        ..Default::default()
    };
    let doc = Document::load_mem_with_options(original, options).map_err(|e| {
        let message = e.to_string();
        if is_memory_limit(&e) {
            StampError::TooComplex {
                limit: limits.max_stream_bytes,
            }
        } else if message.to_ascii_lowercase().contains("password")
            || message.to_ascii_lowercase().contains("decrypt")
        {
            StampError::Encrypted
        } else {
            StampError::Malformed(message)
        }
    })?;
    if doc.is_encrypted() {
        return Err(StampError::Encrypted);
    }
    if doc.xref_recovery == Some(lopdf::xref::XrefRecovery::Reconstructed) {
        // lopdf rebuilt the table by scanning: an appended section would have
        // no trustworthy /Prev. Refuse rather than write a broken update.
        return Err(StampError::Damaged);
    }
    Ok(doc)
}

/// The signature part of the update: when it was made and how many bytes
/// its CMS may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureSpace {
    pub signing_time: time::OffsetDateTime,
    /// Bytes reserved in `/Contents` (see `signing::Chain::contents_capacity`).
    pub capacity: usize,
}

/// A stamped document whose signature is still a hole of zeros: sign
/// [`Prepared::digest`], then [`Prepared::seal`] the CMS into it.
#[derive(Debug, Clone)]
pub struct Prepared {
    bytes: Vec<u8>,
    /// `<` and one past `>` of the `/Contents` hex string: the only bytes
    /// the signature does not cover.
    hole: (usize, usize),
    /// SHA-256 of `bytes[..n]` (the original, hashed while it was copied):
    /// the signature's digest and the stamped file's hash both continue it,
    /// so the original is hashed once.
    hashed: (usize, Sha256),
    pub pages: u32,
}

/// Placeholder wide enough for any offset up to 10 GB, rewritten in place.
const BYTE_RANGE_PLACEHOLDER: [i64; 4] = [0, 1_000_000_000, 1_000_000_000, 1_000_000_000];

impl Prepared {
    /// `/ByteRange` of the signature: everything but the hole.
    pub fn byte_range(&self) -> [usize; 4] {
        let (start, end) = self.hole;
        [0, start, end, self.bytes.len() - end]
    }

    /// SHA-256 of the signed bytes (the CMS `messageDigest`).
    pub fn digest(&self) -> [u8; 32] {
        let (start, end) = self.hole;
        let (hashed, ref prefix) = self.hashed;
        let mut hasher = prefix.clone();
        hasher.update(&self.bytes[hashed..start]);
        hasher.update(&self.bytes[end..]);
        hasher.finalize().into()
    }

    /// Writes the CMS into the hole (hex, zero-padded).
    pub fn seal(mut self, cms: &[u8]) -> Result<Stamped, StampError> {
        let (start, end) = self.hole;
        let room = (end - start - 2) / 2;
        if cms.len() > room {
            return Err(StampError::Unsigned(format!(
                "the signature takes {} bytes; {room} were reserved",
                cms.len()
            )));
        }
        let encoded = hex::encode_upper(cms);
        self.bytes[start + 1..start + 1 + encoded.len()].copy_from_slice(encoded.as_bytes());
        let (hashed, prefix) = self.hashed;
        let mut hasher = prefix;
        hasher.update(&self.bytes[hashed..]);
        let sha256 = hex::encode(hasher.finalize());
        Ok(Stamped {
            bytes: self.bytes,
            sha256,
            pages: self.pages,
        })
    }
}

/// The signature's `/Reason`: the serial it stamps.
fn reason(serial: &str) -> String {
    format!("e-Meterai {serial}")
}

/// `D:YYYYMMDDHHmmSSZ`, the PDF date form of the signing time (UTC).
fn pdf_date(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Stamps `original` at `placement` with the mark for `text`, as a signature
/// field whose widget shows the mark and whose value is a PAdES signature
/// dictionary with a zeroed hole of `space.capacity` bytes for the CMS.
///
/// The file is read by its cross-reference data, only as far as the stamp
/// needs (see [`crate::reader`]); a file that cannot be read that way is
/// loaded whole, as lopdf repairs or refuses it.
pub fn prepare(
    original: &[u8],
    placement: &Placement,
    text: &MarkText<'_>,
    limits: &Limits,
    space: &SignatureSpace,
) -> Result<Prepared, StampError> {
    check_size(original, limits)?;
    match super::lazy::prepare(original, placement, text, limits, space) {
        Ok(prepared) => prepared,
        Err(crate::reader::ReadError::Unreadable(_)) => {
            prepare_loaded(original, placement, text, limits, space)
        }
    }
}

/// Whether [`prepare`] reads `original` by its cross-reference data (true:
/// the reader took it, to stamp it or to refuse it) or loads it whole
/// (false: the reader declined it). For tests and the benchmark.
pub fn read_lazily(original: &[u8], placement: &Placement, limits: &Limits) -> bool {
    let text = MarkText {
        serial: "0000000000000000000000",
        verify_url: "https://meterai.example/",
    };
    let space = SignatureSpace {
        signing_time: time::OffsetDateTime::UNIX_EPOCH,
        capacity: 64,
    };
    super::lazy::prepare(original, placement, &text, limits, &space).is_ok()
}

fn check_size(original: &[u8], limits: &Limits) -> Result<(), StampError> {
    if original.len() > limits.max_bytes {
        return Err(StampError::TooLarge {
            bytes: original.len(),
            limit: limits.max_bytes,
        });
    }
    sniff(original)
}

/// [`prepare`] on the whole file loaded by lopdf: for files the reader
/// declines (damaged or encrypted ones, offsets that need correcting).
pub(crate) fn prepare_loaded(
    original: &[u8],
    placement: &Placement,
    text: &MarkText<'_>,
    limits: &Limits,
    space: &SignatureSpace,
) -> Result<Prepared, StampError> {
    let doc = load(original, limits)?;
    let pages = doc.get_pages();
    let count = pages.len() as u32;
    if count == 0 {
        return Err(if doc.was_encrypted() {
            StampError::Encrypted
        } else {
            StampError::NoPages
        });
    }
    check_pages(count, placement.page, limits)?;
    let page_id = *pages
        .get(&placement.page)
        .ok_or(StampError::PageOutOfRange {
            page: placement.page,
            pages: count,
        })?;
    let resolve = |object: &Object| match object {
        Object::Reference(id) => doc.get_object(*id).ok().cloned(),
        other => Some(other.clone()),
    };
    let mut nodes = Vec::new();
    let mut node = doc.get_dictionary(page_id).ok();
    // Bounded against cycles in hostile files.
    while let Some(dict) = node.filter(|_| nodes.len() < 64) {
        nodes.push(dict.clone());
        node = dict
            .get(b"Parent")
            .and_then(Object::as_reference)
            .and_then(|p| doc.get_dictionary(p))
            .ok();
    }
    let chain = PageChain {
        nodes,
        resolve: &resolve,
    };
    let shape = chain.shape();
    let mut update = IncrementalDocument::create_from(original.to_vec(), doc);
    let signature = build(&mut update, page_id, shape, placement, text, space)?;
    let mut bytes = Vec::with_capacity(original.len() + 2 * space.capacity + 16 * 1024);
    update
        .save_to(&mut bytes)
        .map_err(|e| StampError::Malformed(format!("could not write the update: {e}")))?;
    // The signature dictionary, where the update's cross-reference section
    // puts it.
    let span = crate::reader::Reader::newest_offset(&bytes, signature)
        .filter(|at| *at >= original.len())
        .and_then(|at| Some(at..at + find(&bytes[at..], b"endobj")?))
        .ok_or_else(|| StampError::Unsigned("the signature dictionary was not written".into()))?;
    let hole = fill_byte_range(&mut bytes, span, space.capacity)?;
    Ok(Prepared::new(bytes, hole, (0, Sha256::new()), count))
}

impl Prepared {
    pub(crate) fn new(
        bytes: Vec<u8>,
        hole: (usize, usize),
        hashed: (usize, Sha256),
        pages: u32,
    ) -> Self {
        Self {
            bytes,
            hole,
            hashed,
            pages,
        }
    }
}

/// The page count against the limit, and the page asked for against it.
fn check_pages(count: u32, page: u32, limits: &Limits) -> Result<(), StampError> {
    if count == 0 {
        return Err(StampError::NoPages);
    }
    if count > limits.max_pages {
        return Err(StampError::TooManyPages {
            pages: count,
            limit: limits.max_pages,
        });
    }
    if page == 0 || page > count {
        return Err(StampError::PageOutOfRange { page, pages: count });
    }
    Ok(())
}

/// The objects an update adds and changes, over a document as it was read.
pub(crate) trait Update {
    /// The newest version of `id`: as this update changed it, else as read
    /// (`None` if there is no such object).
    fn object(&mut self, id: ObjectId) -> Option<Object>;
    /// Writes `object` as the new version of `id`.
    fn put(&mut self, id: ObjectId, object: Object);
    /// A new object.
    fn add(&mut self, object: Object) -> ObjectId;
    /// The catalog's id (the trailer's `/Root`).
    fn root(&self) -> Option<ObjectId>;
    /// A new signature dictionary whose `/Contents` is a hex string of
    /// `capacity` zero bytes (the hole the CMS goes into).
    fn add_signature(&mut self, mut dict: Dictionary, capacity: usize) -> ObjectId {
        dict.set(
            "Contents",
            Object::String(vec![0; capacity], lopdf::StringFormat::Hexadecimal),
        );
        self.add(Object::Dictionary(dict))
    }
}

impl Update for IncrementalDocument {
    fn object(&mut self, id: ObjectId) -> Option<Object> {
        self.new_document
            .get_object(id)
            .or_else(|_| self.get_prev_documents().get_object(id))
            .ok()
            .cloned()
    }

    fn put(&mut self, id: ObjectId, object: Object) {
        self.new_document.objects.insert(id, object);
    }

    fn add(&mut self, object: Object) -> ObjectId {
        self.new_document.add_object(object)
    }

    fn root(&self) -> Option<ObjectId> {
        self.new_document
            .trailer
            .get(b"Root")
            .and_then(Object::as_reference)
            .ok()
    }
}

/// Adds the signature field, its widget (the mark) and the signature
/// dictionary with its placeholder to `update`, on the page `page_id` of
/// that shape. Returns the signature dictionary's id.
pub(crate) fn build(
    update: &mut impl Update,
    page_id: ObjectId,
    shape: PageShape,
    placement: &Placement,
    text: &MarkText<'_>,
    space: &SignatureSpace,
) -> Result<ObjectId, StampError> {
    let PageShape { page_box, turns } = shape;
    let (shown_w, shown_h) = match turns {
        1 | 3 => (page_box[3] - page_box[1], page_box[2] - page_box[0]),
        _ => (page_box[2] - page_box[0], page_box[3] - page_box[1]),
    };
    let p = placement;
    let fits = p.width > 0.0
        && p.height > 0.0
        && p.x >= 0.0
        && p.y >= 0.0
        && p.x + p.width <= shown_w + 1e-6
        && p.y + p.height <= shown_h + 1e-6;
    if !fits || ![p.x, p.y, p.width, p.height].iter().all(|v| v.is_finite()) {
        return Err(StampError::OffPage {
            page: p.page,
            x: p.x,
            y: p.y,
            width: p.width,
            height: p.height,
            page_width: shown_w,
            page_height: shown_h,
        });
    }
    let (user_rect, matrix) = to_user_space(placement, page_box, turns);

    let form = Stream::new(
        dictionary! {
            "Type" => "XObject",
            "Subtype" => "Form",
            "BBox" => vec![0.into(), 0.into(), placement.width.into(), placement.height.into()],
            "Matrix" => matrix.iter().map(|v| Object::Real(*v as f32)).collect::<Vec<_>>(),
            "Resources" => dictionary! {
                "Font" => dictionary! {
                    "F1" => dictionary! { "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica", "Encoding" => "WinAnsiEncoding" },
                    "F2" => dictionary! { "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica-Bold", "Encoding" => "WinAnsiEncoding" },
                },
            },
        },
        scaled_content(text, placement),
    );
    let form_id = update.add(Object::Stream(form));
    let signature_id = update.add_signature(
        dictionary! {
            "Type" => "Sig",
            "Filter" => "Adobe.PPKLite",
            "SubFilter" => "ETSI.CAdES.detached",
            "ByteRange" => BYTE_RANGE_PLACEHOLDER.iter().map(|v| Object::Integer(*v)).collect::<Vec<_>>(),
            "Reason" => Object::string_literal(reason(text.serial)),
            "M" => Object::string_literal(pdf_date(space.signing_time)),
            "ContactInfo" => Object::string_literal(text.verify_url),
        },
        space.capacity,
    );
    // The signature field and its widget, merged into one dictionary; the
    // mark is the widget's appearance, never page content, so signatures
    // made before stamping stay valid.
    let annotation: Dictionary = dictionary! {
        "Type" => "Annot",
        "Subtype" => "Widget",
        "FT" => "Sig",
        "T" => Object::string_literal(format!("e-Meterai {}", text.serial)),
        "V" => signature_id,
        "Rect" => user_rect.iter().map(|v| Object::Real(*v as f32)).collect::<Vec<_>>(),
        // Print (4) + Locked (128): printed with the page, not movable in viewers.
        "F" => 132,
        "P" => page_id,
        "NM" => Object::string_literal(format!("e-meterai-{}", text.serial)),
        "Contents" => Object::string_literal(format!("e-Meterai {}", text.serial)),
        "AP" => dictionary! { "N" => form_id },
    };
    let annotation_id = update.add(Object::Dictionary(annotation));
    let malformed = |why: &str| StampError::Malformed(why.to_string());
    let need_appearances = add_field(update, annotation_id).map_err(malformed)?;
    // A form that asks viewers to draw its fields themselves makes some
    // (poppler) redraw our signature widget as well, empty. The mark is then
    // also a stamp annotation, which no viewer redraws: under the widget,
    // with the same appearance.
    if need_appearances {
        let stamp = dictionary! {
            "Type" => "Annot",
            "Subtype" => "Stamp",
            "Rect" => user_rect.iter().map(|v| Object::Real(*v as f32)).collect::<Vec<_>>(),
            "F" => 132,
            "P" => page_id,
            "NM" => Object::string_literal(format!("e-meterai-{}-mark", text.serial)),
            "Contents" => Object::string_literal(format!("e-Meterai {}", text.serial)),
            "AP" => dictionary! { "N" => form_id },
        };
        let stamp_id = update.add(Object::Dictionary(stamp));
        add_annotation(update, page_id, stamp_id).map_err(malformed)?;
    }
    add_annotation(update, page_id, annotation_id).map_err(malformed)?;
    Ok(signature_id)
}

/// Finds the `/ByteRange` placeholder in the signature dictionary written
/// at `span` and the `/Contents` hex string after it, zeroes that string (in
/// an encrypted document it was encrypted with the update, and the standard
/// exempts it: readers never decrypt it) and writes the real byte range over
/// the placeholder, padded to the same width so no offset moves. Only the
/// signature's own bytes are searched: a page or form of the original that
/// carries the same placeholder, rewritten by the update, is never touched.
pub(crate) fn fill_byte_range(
    bytes: &mut [u8],
    span: std::ops::Range<usize>,
    capacity: usize,
) -> Result<(usize, usize), StampError> {
    let lost = || StampError::Unsigned("the signature placeholder was not written".into());
    let placeholder = format!(
        "[{}]",
        BYTE_RANGE_PLACEHOLDER.map(|v| v.to_string()).join(" ")
    );
    let signature = bytes.get(span.clone()).ok_or_else(lost)?;
    let at = span.start + find(signature, placeholder.as_bytes()).ok_or_else(lost)?;
    let after = at + placeholder.len();
    let start = after + find(&bytes[after..span.end], b"/Contents<").ok_or_else(lost)? + 9;
    let end = start
        + 1
        + bytes[start + 1..]
            .iter()
            .position(|b| *b == b'>')
            .ok_or_else(lost)?
        + 1;
    let hex = &mut bytes[start + 1..end - 1];
    if hex.len() < 2 * capacity || !hex.iter().all(u8::is_ascii_hexdigit) {
        return Err(lost());
    }
    hex.fill(b'0');
    let actual = format!("[0 {start} {end} {}]", bytes.len() - end);
    let padded = format!("{actual:<width$}", width = placeholder.len());
    if padded.len() != placeholder.len() {
        return Err(lost());
    }
    bytes[at..at + padded.len()].copy_from_slice(padded.as_bytes());
    Ok((start, end))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// Stamps and signs in one go with a local key (tests and the benchmark;
/// the worker signs with KMS between [`prepare`] and [`Prepared::seal`]).
pub fn stamp(
    original: &[u8],
    placement: &Placement,
    text: &MarkText<'_>,
    limits: &Limits,
    signer: &crate::signing::LocalSigner,
) -> Result<Stamped, StampError> {
    use crate::signing::Signer;
    let space = SignatureSpace {
        signing_time: time::OffsetDateTime::now_utc(),
        capacity: signer.chain().contents_capacity(),
    };
    let prepared = prepare(original, placement, text, limits, &space)?;
    let cms = crate::signing::sign_document_now(signer, &prepared.digest())
        .map_err(|e| StampError::Unsigned(e.to_string()))?;
    prepared.seal(&cms)
}

/// The mark keeps its square shape (a stretched QR code may not decode): it
/// is scaled to the smaller side of the box and centred in it.
fn scaled_content(text: &MarkText<'_>, placement: &Placement) -> Vec<u8> {
    let side = placement.width.min(placement.height);
    let mut content = format!(
        "q {scale:.4} 0 0 {scale:.4} {dx:.4} {dy:.4} cm\n",
        scale = side / mark::DESIGN,
        dx = (placement.width - side) / 2.0,
        dy = (placement.height - side) / 2.0,
    )
    .into_bytes();
    content.extend(mark::content(text.serial, text.verify_url));
    content.extend_from_slice(b"Q\n");
    content
}

/// `items` with `item` appended; anything but an array becomes one.
fn appended(items: Option<Object>, item: ObjectId) -> Object {
    let mut items = match items {
        Some(Object::Array(items)) => items,
        _ => Vec::new(),
    };
    items.push(Object::Reference(item));
    Object::Array(items)
}

/// Appends `item` to the array `key` of `dict`: a direct array (or none,
/// then a new one) grows in `dict`; an array object of its own grows there.
fn append_to(
    update: &mut impl Update,
    dict: &mut Dictionary,
    key: &[u8],
    item: ObjectId,
) -> Result<(), &'static str> {
    match dict.get(key).ok().cloned() {
        Some(Object::Reference(array_id)) => {
            let array = update.object(array_id).ok_or("a missing array object")?;
            update.put(array_id, appended(Some(array), item));
        }
        other => dict.set(key.to_vec(), appended(other, item)),
    }
    Ok(())
}

/// Adds the field to the catalog's `/AcroForm /Fields`, keeping every existing
/// field; the form may be absent, a direct dictionary or a reference, and so
/// may its `/Fields` array. True if the form says `/NeedAppearances true`.
fn add_field(update: &mut impl Update, field: ObjectId) -> Result<bool, &'static str> {
    let root = update.root().ok_or("no catalog")?;
    let catalog = update.object(root).ok_or("no catalog")?;
    let mut catalog = catalog.as_dict().map_err(|_| "no catalog")?.clone();
    let (form_id, mut form) = match catalog.get(b"AcroForm").ok().cloned() {
        Some(Object::Reference(id)) => match update.object(id) {
            Some(Object::Dictionary(form)) => (Some(id), form),
            _ => return Err("a form that is not a dictionary"),
        },
        Some(Object::Dictionary(form)) => (None, form),
        _ => (None, Dictionary::new()),
    };
    append_to(update, &mut form, b"Fields", field)?;
    // SignaturesExist (1) + AppendOnly (2): viewers then save changes as
    // incremental updates, which keeps our signature valid.
    let flags = form.get(b"SigFlags").and_then(Object::as_i64).unwrap_or(0);
    if flags & 3 != 3 {
        form.set("SigFlags", flags | 3);
    }
    let need_appearances = form
        .get(b"NeedAppearances")
        .and_then(Object::as_bool)
        .unwrap_or(false);
    match form_id {
        Some(id) => update.put(id, Object::Dictionary(form)),
        None => {
            catalog.set("AcroForm", form);
            update.put(root, Object::Dictionary(catalog));
        }
    }
    Ok(need_appearances)
}

/// Appends the annotation to the page's `/Annots`, which may be absent, a
/// direct array, or a reference to an array object.
fn add_annotation(
    update: &mut impl Update,
    page_id: ObjectId,
    annotation: ObjectId,
) -> Result<(), &'static str> {
    let page = update.object(page_id).ok_or("a missing page")?;
    let mut page = page
        .as_dict()
        .map_err(|_| "a page that is not a dictionary")?
        .clone();
    let direct = !matches!(page.get(b"Annots"), Ok(Object::Reference(_)));
    append_to(update, &mut page, b"Annots", annotation)?;
    if direct {
        update.put(page_id, Object::Dictionary(page));
    }
    Ok(())
}

/// A one-page PDF whose page content is just the mark at `placement` (for
/// the peer benchmark: what `qpdf --overlay` lays over a page).
pub fn mark_page_pdf(text: &MarkText<'_>, placement: &Placement, page_size: [i64; 2]) -> Vec<u8> {
    let mut doc = Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let mut content = format!("q 1 0 0 1 {} {} cm\n", placement.x, placement.y).into_bytes();
    content.extend(scaled_content(text, placement));
    content.extend_from_slice(b"Q\n");
    let content_id = doc.add_object(Stream::new(Dictionary::new(), content));
    let font = |base: &str| {
        dictionary! { "Type" => "Font", "Subtype" => "Type1", "BaseFont" => base.to_string(), "Encoding" => "WinAnsiEncoding" }
    };
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page",
        "Parent" => pages_id,
        "Contents" => content_id,
        "MediaBox" => vec![0.into(), 0.into(), page_size[0].into(), page_size[1].into()],
        "Resources" => dictionary! { "Font" => dictionary! { "F1" => font("Helvetica"), "F2" => font("Helvetica-Bold") } },
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(
            dictionary! { "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1 },
        ),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).expect("in-memory save");
    bytes
}

/// Builds small PDFs for tests and benchmarks: `pages` pages of the given
/// media box and rotation, each with a line of text, saved with a classic
/// cross-reference table.
pub fn sample_pdf(pages: u32, media_box: [i64; 4], rotate: Option<i64>) -> Vec<u8> {
    let mut doc = Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(
        dictionary! { "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica" },
    );
    let mut kids = Vec::new();
    for n in 1..=pages {
        let content = format!("BT /F1 12 Tf 72 720 Td (Application letter, page {n}) Tj ET");
        let content_id = doc.add_object(Stream::new(Dictionary::new(), content.into_bytes()));
        let mut page = dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
        };
        if let Some(r) = rotate {
            page.set("Rotate", r);
        }
        kids.push(Object::Reference(doc.add_object(page)));
    }
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => pages as i64,
            // Inherited by every page.
            "MediaBox" => media_box.iter().map(|v| Object::Integer(*v)).collect::<Vec<_>>(),
            "Resources" => dictionary! { "Font" => dictionary! { "F1" => font_id } },
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    // Most real-world PDFs still end in a classic table (the oracle tests
    // convert to cross-reference streams with qpdf where they need them).
    doc.reference_table.cross_reference_type = lopdf::xref::XrefType::CrossReferenceTable;
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).expect("in-memory save");
    bytes
}

/// The next of a deterministic pseudo-random sequence (xorshift64): sample
/// files and the tests' fuzz are the same bytes on every run.
pub(crate) fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// A one-page sample PDF of about `bytes` bytes: the page also draws a
/// greyscale image of pseudo-random (incompressible) pixels, as a scan
/// would. The benchmark compares it with a many-page file of the same size.
pub fn sample_pdf_of_size(bytes: usize) -> Vec<u8> {
    let base = sample_pdf(1, [0, 0, 595, 842], None);
    let side = ((bytes.saturating_sub(base.len() + 400)) as f64).sqrt() as usize;
    let side = side.max(1);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let pixels: Vec<u8> = (0..side * side)
        .map(|_| xorshift(&mut state) as u8)
        .collect();
    let mut doc = Document::load_mem(&base).expect("the sample loads");
    let image = doc.add_object(Stream::new(
        dictionary! {
            "Type" => "XObject", "Subtype" => "Image", "Width" => side as i64,
            "Height" => side as i64, "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8,
        },
        pixels,
    ));
    let page = doc.get_pages()[&1];
    let content = doc.add_object(Stream::new(
        Dictionary::new(),
        b"q 400 0 0 400 97 200 cm /Scan Do Q".to_vec(),
    ));
    let page = doc.get_dictionary_mut(page).expect("the sample's page");
    let text = page
        .get(b"Contents")
        .cloned()
        .expect("the sample's content");
    page.set("Contents", vec![text, content.into()]);
    page.set(
        "Resources",
        dictionary! {
            "Font" => dictionary! { "F1" => dictionary! { "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica" } },
            "XObject" => dictionary! { "Scan" => image },
        },
    );
    doc.reference_table.cross_reference_type = lopdf::xref::XrefType::CrossReferenceTable;
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("in-memory save");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    static SIGNER: std::sync::LazyLock<crate::signing::LocalSigner> =
        std::sync::LazyLock::new(crate::signing::tests::test_signer);

    #[test]
    fn the_signature_covers_all_but_its_hole_and_checks_against_our_chain() {
        use crate::signing::Signer;
        let original = sample_pdf(2, [0, 0, 595, 842], None);
        let space = SignatureSpace {
            // 2026-11-23 08:30:05 UTC
            signing_time: time::OffsetDateTime::from_unix_timestamp(1_795_422_605).unwrap(),
            capacity: SIGNER.chain().contents_capacity(),
        };
        let prepared = prepare(
            &original,
            &at(1, 10.0, 10.0),
            &text(),
            &Limits::default(),
            &space,
        )
        .unwrap();
        let [zero, start, end, tail] = prepared.byte_range();
        let len = prepared.bytes.len();
        assert_eq!((zero, end + tail), (0, len));
        assert!(start > original.len(), "the hole is in the update");
        assert_eq!(&prepared.bytes[start..start + 1], b"<");
        assert_eq!(&prepared.bytes[end - 1..end], b">");
        assert_eq!(end - start, 2 * space.capacity + 2);
        let written = String::from_utf8_lossy(&prepared.bytes[original.len()..]).to_string();
        assert!(
            written.contains(&format!("/ByteRange[0 {start} {end} {tail}")),
            "{written}"
        );
        assert!(written.contains("/SubFilter/ETSI.CAdES.detached"));
        assert!(written.contains("/M(D:20261123083005Z)"));
        assert!(written.contains(&format!("/Reason(e-Meterai {})", text().serial)));
        assert!(written.contains("/SigFlags 3"));

        let digest = prepared.digest();
        let cms = crate::signing::sign_document_now(&SIGNER, &digest).unwrap();
        let stamped = prepared.seal(&cms).unwrap();
        assert_eq!(stamped.bytes.len(), len, "sealing moves no byte");
        let doc = Document::load_mem(&stamped.bytes).unwrap();
        let signature = doc
            .objects
            .values()
            .filter_map(|o| o.as_dict().ok())
            .find(|d| d.get(b"Type").and_then(Object::as_name).ok() == Some(b"Sig"))
            .expect("a signature dictionary");
        let contents = signature.get(b"Contents").unwrap().as_str().unwrap();
        let check = crate::signing::check(contents, &digest, SIGNER.chain()).unwrap();
        assert!(check.is_valid(), "{check:?}");

        // Too small a hole is an error, never a truncated signature.
        let tight = SignatureSpace {
            capacity: 64,
            ..space
        };
        let prepared = prepare(
            &original,
            &at(1, 10.0, 10.0),
            &text(),
            &Limits::default(),
            &tight,
        )
        .unwrap();
        let err = prepared.seal(&cms).unwrap_err();
        assert_eq!(err.code(), "SIGNING_FAILED");
    }

    /// Stamps and signs with the test key.
    fn stamp(
        original: &[u8],
        placement: &Placement,
        text: &MarkText<'_>,
        limits: &Limits,
    ) -> Result<Stamped, StampError> {
        super::stamp(original, placement, text, limits, &SIGNER)
    }

    const SERIAL: &str = "0123456789ABCDEFGHJKMN";

    /// Prepares `file` by the reader (`None` if it declines the file) and by
    /// the full load, with the same signing time and capacity.
    fn both_ways(
        file: &[u8],
        placement: &Placement,
    ) -> (
        Option<Result<Prepared, StampError>>,
        Result<Prepared, StampError>,
    ) {
        let space = SignatureSpace {
            signing_time: time::OffsetDateTime::UNIX_EPOCH,
            capacity: 64,
        };
        let limits = Limits::default();
        let fast = std::panic::catch_unwind(|| {
            check_size(file, &limits)
                .map(|()| super::super::lazy::prepare(file, placement, &text(), &limits, &space))
        })
        .unwrap_or_else(|_| panic!("the reader panicked"));
        let fast = match fast {
            Err(refused) => Some(Err(refused)),
            Ok(Ok(answer)) => Some(answer),
            Ok(Err(_declined)) => None,
        };
        let full = std::panic::catch_unwind(|| {
            check_size(file, &limits)
                .and_then(|()| prepare_loaded(file, placement, &text(), &limits, &space))
        })
        .unwrap_or_else(|_| panic!("the full load panicked"));
        (fast, full)
    }

    fn text() -> MarkText<'static> {
        MarkText {
            serial: SERIAL,
            verify_url: "https://meterai.example/v1/verify/0123456789ABCDEFGHJKMN",
        }
    }

    fn at(page: u32, x: f64, y: f64) -> Placement {
        Placement {
            page,
            x,
            y,
            width: DEFAULT_SIZE,
            height: DEFAULT_SIZE,
        }
    }

    fn annotations(bytes: &[u8], page: u32) -> Vec<Dictionary> {
        let doc = Document::load_mem(bytes).unwrap();
        let page_id = doc.get_pages()[&page];
        let annots = match doc.get_dictionary(page_id).unwrap().get(b"Annots") {
            Ok(Object::Array(items)) => items.clone(),
            Ok(Object::Reference(id)) => doc.get_object(*id).unwrap().as_array().unwrap().clone(),
            _ => vec![],
        };
        annots
            .iter()
            .map(|a| {
                doc.get_dictionary(a.as_reference().unwrap())
                    .unwrap()
                    .clone()
            })
            .collect()
    }

    #[test]
    fn stamp_is_an_incremental_update_with_a_signature_field_widget() {
        let original = sample_pdf(3, [0, 0, 595, 842], None);
        let stamped = stamp(&original, &at(2, 400.0, 50.0), &text(), &Limits::default()).unwrap();
        assert!(
            stamped.bytes.starts_with(&original),
            "the original bytes are the prefix"
        );
        assert!(stamped.bytes.len() > original.len());
        assert_eq!(stamped.pages, 3);
        assert_eq!(stamped.sha256, hex::encode(Sha256::digest(&stamped.bytes)));
        let tail = &stamped.bytes[original.len()..];
        let tail_text = String::from_utf8_lossy(tail);
        assert!(
            tail_text.contains("/Prev"),
            "the new xref section points back"
        );
        assert!(annotations(&stamped.bytes, 1).is_empty());
        assert!(annotations(&stamped.bytes, 3).is_empty());
        let annots = annotations(&stamped.bytes, 2);
        assert_eq!(annots.len(), 1);
        let annot = &annots[0];
        assert_eq!(annot.get(b"Subtype").unwrap().as_name().unwrap(), b"Widget");
        assert_eq!(annot.get(b"FT").unwrap().as_name().unwrap(), b"Sig");
        let rect: Vec<f64> = annot
            .get(b"Rect")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|o| number(o).unwrap())
            .collect();
        assert_eq!(rect, vec![400.0, 50.0, 500.0, 150.0]);
        let doc = Document::load_mem(&stamped.bytes).unwrap();
        let ap = annot
            .get(b"AP")
            .unwrap()
            .as_dict()
            .unwrap()
            .get(b"N")
            .unwrap()
            .as_reference()
            .unwrap();
        let form = doc.get_object(ap).unwrap().as_stream().unwrap();
        let content = String::from_utf8_lossy(&form.content);
        assert!(content.contains(&format!("({SERIAL}) Tj")));
    }

    #[test]
    fn a_stamped_document_can_be_stamped_again() {
        let original = sample_pdf(1, [0, 0, 612, 792], None);
        let once = stamp(&original, &at(1, 10.0, 10.0), &text(), &Limits::default()).unwrap();
        let twice = stamp(
            &once.bytes,
            &at(1, 200.0, 10.0),
            &text(),
            &Limits::default(),
        )
        .unwrap();
        assert!(twice.bytes.starts_with(&once.bytes));
        assert_eq!(annotations(&twice.bytes, 1).len(), 2);
    }

    #[test]
    fn non_zero_origins_and_rotation_land_where_asked() {
        // Page box [10 20 610 820]: 600 wide, 800 high in user space.
        let b = [10.0, 20.0, 610.0, 820.0];
        let p = Placement {
            page: 1,
            x: 50.0,
            y: 30.0,
            width: 100.0,
            height: 60.0,
        };
        assert_eq!(to_user_space(&p, b, 0).0, [60.0, 50.0, 160.0, 110.0]);
        // Rotated 90 degrees clockwise: displayed 800 wide, 600 high; its
        // lower-left corner is user space's lower-right.
        assert_eq!(to_user_space(&p, b, 1).0, [520.0, 70.0, 580.0, 170.0]);
        assert_eq!(to_user_space(&p, b, 2).0, [460.0, 730.0, 560.0, 790.0]);
        assert_eq!(to_user_space(&p, b, 3).0, [40.0, 670.0, 100.0, 770.0]);
        assert_eq!(to_user_space(&p, b, 1).1, [0.0, 1.0, -1.0, 0.0, 0.0, 0.0]);

        let rotated = sample_pdf(1, [10, 20, 610, 820], Some(90));
        let stamped = stamp(&rotated, &p, &text(), &Limits::default()).unwrap();
        let annot = &annotations(&stamped.bytes, 1)[0];
        let rect: Vec<f64> = annot
            .get(b"Rect")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|o| number(o).unwrap())
            .collect();
        assert_eq!(rect, vec![520.0, 70.0, 580.0, 170.0]);
        // 700 + 100 fits the displayed width of 800, but not the user-space width of 600.
        assert!(stamp(&rotated, &at(1, 700.0, 10.0), &text(), &Limits::default()).is_ok());
        assert!(stamp(&rotated, &at(1, 10.0, 550.0), &text(), &Limits::default()).is_err());
    }

    #[test]
    fn bad_input_is_a_permanent_error_with_a_code() {
        let pdf = sample_pdf(2, [0, 0, 595, 842], None);
        let limits = Limits::default();
        let code = |bytes: &[u8], placement: Placement, limits: &Limits| {
            stamp(bytes, &placement, &text(), limits)
                .unwrap_err()
                .code()
        };
        assert_eq!(code(b"GIF89a....", at(1, 0.0, 0.0), &limits), "NOT_A_PDF");
        assert_eq!(code(b"", at(1, 0.0, 0.0), &limits), "NOT_A_PDF");
        assert_eq!(code(&pdf, at(0, 0.0, 0.0), &limits), "PAGE_OUT_OF_RANGE");
        assert_eq!(code(&pdf, at(3, 0.0, 0.0), &limits), "PAGE_OUT_OF_RANGE");
        assert_eq!(code(&pdf, at(1, 500.0, 0.0), &limits), "RECT_OFF_PAGE");
        assert_eq!(code(&pdf, at(1, -1.0, 0.0), &limits), "RECT_OFF_PAGE");
        assert_eq!(code(&pdf, at(1, 0.0, f64::NAN), &limits), "RECT_OFF_PAGE");
        assert_eq!(
            code(
                &pdf,
                Placement {
                    width: 0.0,
                    ..at(1, 0.0, 0.0)
                },
                &limits
            ),
            "RECT_OFF_PAGE"
        );
        let few_pages = Limits {
            max_pages: 1,
            ..limits
        };
        assert_eq!(code(&pdf, at(1, 0.0, 0.0), &few_pages), "TOO_MANY_PAGES");
        let small = Limits {
            max_bytes: 100,
            ..limits
        };
        assert_eq!(code(&pdf, at(1, 0.0, 0.0), &small), "DOCUMENT_TOO_LARGE");
        let garbage = b"%PDF-1.7\n\x00\x01\x02 this is not a pdf body at all\n%%EOF".to_vec();
        let err = code(&garbage, at(1, 0.0, 0.0), &limits);
        assert!(
            ["MALFORMED_PDF", "DAMAGED_PDF", "NO_PAGES"].contains(&err),
            "{err}"
        );
    }

    #[test]
    fn a_pdf_without_pages_is_refused() {
        let empty = sample_pdf(0, [0, 0, 595, 842], None);
        let err = stamp(&empty, &at(1, 0.0, 0.0), &text(), &Limits::default()).unwrap_err();
        assert_eq!(err.code(), "NO_PAGES");
    }

    #[test]
    fn truncated_files_are_refused_not_half_stamped() {
        let pdf = sample_pdf(2, [0, 0, 595, 842], None);
        for cut in [pdf.len() / 3, pdf.len() / 2, pdf.len() - 40] {
            let err =
                stamp(&pdf[..cut], &at(1, 0.0, 0.0), &text(), &Limits::default()).unwrap_err();
            assert!(
                ["MALFORMED_PDF", "DAMAGED_PDF", "NO_PAGES"].contains(&err.code()),
                "cut at {cut}: {err:?}"
            );
        }
    }

    /// A one-page PDF whose page object sits in a compressed object stream
    /// padded with `padding` spaces, found through a cross-reference stream.
    fn object_stream_pdf(padding: usize) -> Vec<u8> {
        use std::io::Write;
        let mut out = b"%PDF-1.7\n".to_vec();
        let mut offsets = Vec::new();
        let mut object = |out: &mut Vec<u8>, body: &[u8]| {
            offsets.push(out.len());
            out.extend_from_slice(body);
        };
        object(
            &mut out,
            b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n",
        );
        object(
            &mut out,
            b"2 0 obj\n<< /Type /Pages /Kids [5 0 R] /Count 1 /MediaBox [0 0 595 842] >>\nendobj\n",
        );
        let header = b"5 0 ";
        let mut plain = header.to_vec();
        plain.extend(std::iter::repeat_n(b' ', padding));
        plain.extend_from_slice(b"<< /Type /Page /Parent 2 0 R >>");
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&plain).unwrap();
        let packed = z.finish().unwrap();
        offsets.push(out.len());
        out.extend_from_slice(
            format!(
                "3 0 obj\n<< /Type /ObjStm /N 1 /First {} /Filter /FlateDecode /Length {} >>\nstream\n",
                header.len(),
                packed.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&packed);
        out.extend_from_slice(b"\nendstream\nendobj\n");
        let xref_at = out.len();
        // Rows of /W [1 4 2]: type, offset or stream number, generation or index.
        let mut rows = vec![0u8, 0, 0, 0, 0, 0xff, 0xff];
        for (i, at) in offsets.iter().enumerate() {
            let _ = i;
            rows.push(1);
            rows.extend_from_slice(&(*at as u32).to_be_bytes());
            rows.extend_from_slice(&[0, 0]);
        }
        rows.extend_from_slice(&[1]);
        rows.extend_from_slice(&(xref_at as u32).to_be_bytes());
        rows.extend_from_slice(&[0, 0]);
        rows.extend_from_slice(&[2, 0, 0, 0, 3, 0, 0]);
        out.extend_from_slice(
            format!(
                "4 0 obj\n<< /Type /XRef /Size 6 /W [1 4 2] /Root 1 0 R /Length {} >>\nstream\n",
                rows.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&rows);
        out.extend_from_slice(
            format!("\nendstream\nendobj\nstartxref\n{xref_at}\n%%EOF\n").as_bytes(),
        );
        out
    }

    #[test]
    fn an_object_stream_that_inflates_past_the_limit_is_refused() {
        let limits = Limits::default();
        // The control: the same structure, small, is stamped.
        let small = object_stream_pdf(1_000);
        let stamped = stamp(&small, &at(1, 10.0, 10.0), &text(), &limits).unwrap();
        assert!(stamped.bytes.starts_with(&small));
        // 64 MiB of spaces packs into about 64 KiB: a decompression bomb.
        let bomb = object_stream_pdf(64 * 1024 * 1024);
        assert!(bomb.len() < 200 * 1024, "{}", bomb.len());
        let err = stamp(&bomb, &at(1, 10.0, 10.0), &text(), &limits).unwrap_err();
        assert_eq!(err.code(), "PDF_TOO_COMPLEX", "{err:?}");
    }

    #[test]
    fn pdf_versions_from_1_4_to_2_0_are_stamped_and_keep_their_header() {
        let pdf = sample_pdf(1, [0, 0, 595, 842], None);
        for version in ["1.4", "1.5", "1.6", "2.0"] {
            let mut file = pdf.clone();
            file[5..8].copy_from_slice(version.as_bytes());
            let stamped = stamp(&file, &at(1, 20.0, 20.0), &text(), &Limits::default()).unwrap();
            assert!(stamped.bytes.starts_with(&file), "{version}");
            let again = Document::load_mem(&stamped.bytes).unwrap();
            assert_eq!(again.version, version);
            assert_eq!(annotations(&stamped.bytes, 1).len(), 1, "{version}");
        }
    }

    #[test]
    fn clean_files_and_their_updates_are_read_lazily_with_the_same_answer() {
        let limits = Limits::default();
        let mut files = vec![
            sample_pdf(1, [0, 0, 595, 842], None),
            sample_pdf(7, [0, 0, 595, 842], Some(270)),
            object_stream_pdf(100),
        ];
        // Stamped, and stamped again: updates after a table and after a stream.
        for _ in 0..2 {
            let stamped: Vec<_> = files
                .iter()
                .map(|f| {
                    stamp(f, &at(1, 10.0, 10.0), &text(), &limits)
                        .unwrap()
                        .bytes
                })
                .collect();
            files.extend(stamped);
        }
        for (i, file) in files.iter().enumerate() {
            let (fast, full) = both_ways(file, &at(1, 10.0, 10.0));
            let fast = fast.unwrap_or_else(|| {
                panic!(
                    "file {i}: the reader declined it: {:?}",
                    super::super::lazy::prepare(
                        file,
                        &at(1, 10.0, 10.0),
                        &text(),
                        &limits,
                        &SignatureSpace {
                            signing_time: time::OffsetDateTime::UNIX_EPOCH,
                            capacity: 64,
                        }
                    )
                    .err()
                )
            });
            let (fast, full) = (fast.unwrap(), full.unwrap());
            assert_eq!(fast.pages, full.pages, "file {i}");
            // Both updates put the widget on the same page object.
            let sealed = |p: Prepared| p.seal(&[]).unwrap().bytes;
            let (fast, full) = (sealed(fast), sealed(full));
            assert!(fast.starts_with(file) && full.starts_with(file));
            assert_eq!(annotations(&fast, 1), annotations(&full, 1), "file {i}");
        }
    }

    /// Three pages in a tree of two levels, as lopdf numbers them: an empty
    /// `/Pages` node first (no page), page 1 at the root, pages 2 and 3 under
    /// a `/Pages` node that turns them; the media box is an indirect object
    /// inherited from the root, the crop box of page 3 its own.
    fn tree_pdf() -> Vec<u8> {
        let mut doc = Document::with_version("1.7");
        let root_id = doc.new_object_id();
        let inner_id = doc.new_object_id();
        let media = doc.add_object(vec![0.into(), 0.into(), 400.into(), 500.into()]);
        let empty = doc.add_object(dictionary! {
            "Type" => "Pages", "Parent" => root_id, "Kids" => Vec::<Object>::new(), "Count" => 0,
        });
        let page = |doc: &mut Document, parent: ObjectId, n: i64| {
            let content = doc.add_object(Stream::new(
                Dictionary::new(),
                format!("BT /F1 12 Tf 20 20 Td (page {n}) Tj ET").into_bytes(),
            ));
            doc.add_object(
                dictionary! { "Type" => "Page", "Parent" => parent, "Contents" => content },
            )
        };
        let first = page(&mut doc, root_id, 1);
        let second = page(&mut doc, inner_id, 2);
        let third = page(&mut doc, inner_id, 3);
        doc.get_dictionary_mut(third).unwrap().set(
            "CropBox",
            vec![50.into(), 60.into(), 350.into(), 460.into()],
        );
        doc.objects.insert(
            inner_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages", "Parent" => root_id, "Kids" => vec![second.into(), third.into()],
                "Count" => 2, "Rotate" => 90,
            }),
        );
        doc.objects.insert(
            root_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages", "Kids" => vec![empty.into(), first.into(), inner_id.into()],
                "Count" => 3, "MediaBox" => media,
            }),
        );
        let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => root_id });
        doc.trailer.set("Root", catalog);
        doc.reference_table.cross_reference_type = lopdf::xref::XrefType::CrossReferenceTable;
        let mut bytes = Vec::new();
        doc.save_to(&mut bytes).unwrap();
        bytes
    }

    #[test]
    fn every_page_of_a_deeper_tree_is_found_as_lopdf_numbers_it() {
        let limits = Limits::default();
        let tree = tree_pdf();
        assert_eq!(Document::load_mem(&tree).unwrap().get_pages().len(), 3);
        for page in 1..=3 {
            let placement = at(page, 10.0, 10.0);
            assert!(read_lazily(&tree, &placement, &limits), "page {page}");
            let (fast, full) = both_ways(&tree, &placement);
            let (fast, full) = (fast.unwrap().unwrap(), full.unwrap());
            assert_eq!(fast.pages, 3);
            let sealed = |p: Prepared| p.seal(&[]).unwrap().bytes;
            let (fast, full) = (sealed(fast), sealed(full));
            // The widget on the same page, at the same place (the rotated
            // and cropped page 3 maps the placement differently).
            let widgets = annotations(&fast, page);
            assert_eq!(widgets.len(), 1, "page {page}");
            assert_eq!(widgets, annotations(&full, page), "page {page}");
            for other in (1..=3).filter(|p| *p != page) {
                assert!(annotations(&fast, other).is_empty(), "page {page}");
            }
        }
        // Counts that lie (a node that says 5 for its 2 pages, a root that
        // says 9): lopdf numbers the leaves, and so does the reader.
        let mut lying = tree.clone();
        for (from, to) in [(b"/Count 2", b"/Count 5"), (b"/Count 3", b"/Count 9")] {
            let at = find(&lying, from).expect("the fixture's counts");
            lying[at..at + to.len()].copy_from_slice(to);
        }
        for page in 1..=3 {
            let placement = at(page, 10.0, 10.0);
            let (fast, full) = both_ways(&lying, &placement);
            let (fast, full) = (fast.unwrap().unwrap(), full.unwrap());
            assert_eq!((fast.pages, full.pages), (3, 3), "page {page}");
            let sealed = |p: Prepared| p.seal(&[]).unwrap().bytes;
            assert_eq!(
                annotations(&sealed(fast), page),
                annotations(&sealed(full), page),
                "page {page}"
            );
        }
        // Past the count, and a mark off the cropped page: the same refusals.
        for placement in [at(4, 10.0, 10.0), at(3, 350.0, 10.0)] {
            let (fast, full) = both_ways(&tree, &placement);
            let expected = full.unwrap_err().code();
            if let Some(answer) = fast {
                assert_eq!(answer.unwrap_err().code(), expected);
            }
        }
    }

    /// Where the widgets on `page` are: the page each names and its /Rect
    /// (what lopdf reads of the stamped file, errors included).
    #[allow(clippy::type_complexity)]
    fn placements(
        bytes: &[u8],
        page: u32,
    ) -> Result<Vec<(Option<Object>, Option<Object>)>, String> {
        let doc = Document::load_mem(bytes).map_err(|e| e.to_string())?;
        let page_id = *doc.get_pages().get(&page).ok_or("no such page")?;
        let annots = match doc
            .get_dictionary(page_id)
            .map_err(|e| e.to_string())?
            .get(b"Annots")
        {
            Ok(Object::Array(items)) => items.clone(),
            Ok(Object::Reference(id)) => doc
                .get_object(*id)
                .and_then(Object::as_array)
                .map_err(|e| e.to_string())?
                .clone(),
            _ => vec![],
        };
        annots
            .iter()
            .map(|a| {
                let dict = a
                    .as_reference()
                    .and_then(|id| doc.get_dictionary(id))
                    .map_err(|e| e.to_string())?;
                Ok((
                    dict.get(b"P").ok().cloned(),
                    dict.get(b"Rect").ok().cloned(),
                ))
            })
            .collect()
    }

    #[test]
    fn a_placeholder_planted_in_the_page_does_not_take_the_byte_range() {
        use crate::signing::Signer;
        // The page carries our placeholder array and a hole of zeros, and is
        // rewritten by the update before the signature dictionary.
        let mut doc = Document::load_mem(&sample_pdf(1, [0, 0, 595, 842], None)).unwrap();
        let page = doc.get_pages()[&1];
        let capacity = SIGNER.chain().contents_capacity();
        let planted = doc.get_dictionary_mut(page).unwrap();
        planted.set(
            "ByteRange",
            BYTE_RANGE_PLACEHOLDER
                .iter()
                .map(|v| Object::Integer(*v))
                .collect::<Vec<_>>(),
        );
        planted.set(
            "Contents",
            Object::String(vec![0; capacity], lopdf::StringFormat::Hexadecimal),
        );
        let mut original = Vec::new();
        doc.save_to(&mut original).unwrap();
        for lazily in [true, false] {
            let space = SignatureSpace {
                signing_time: time::OffsetDateTime::UNIX_EPOCH,
                capacity,
            };
            let (placement, limits) = (at(1, 10.0, 10.0), Limits::default());
            assert!(read_lazily(&original, &placement, &limits));
            let prepared = if lazily {
                prepare(&original, &placement, &text(), &limits, &space)
            } else {
                prepare_loaded(&original, &placement, &text(), &limits, &space)
            }
            .unwrap();
            let cms = crate::signing::sign_document_now(&SIGNER, &prepared.digest()).unwrap();
            let stamped = prepared.seal(&cms).unwrap();
            let found = super::super::signatures::signatures(&stamped.bytes, &limits).unwrap();
            let ours = found
                .iter()
                .find(|f| f.reason == format!("e-Meterai {SERIAL}"))
                .unwrap();
            let digest = ours.digest(&stamped.bytes).unwrap();
            assert!(
                crate::signing::check(&ours.contents, &digest, SIGNER.chain())
                    .unwrap()
                    .is_valid(),
                "lazily: {lazily}"
            );
            assert_eq!(ours.signed_len(), Some(stamped.bytes.len()));
        }
    }

    /// A small deterministic fuzz: thousands of mutated files (flipped bytes,
    /// cuts, spliced ranges, planted tokens) must each end in a stamped file
    /// or a refusal with a code; never a panic.
    #[test]
    fn mutated_files_are_stamped_or_refused_never_a_panic() {
        let limits = Limits::default();
        // Plain, with object streams, and both once stamped (an update's
        // table after a table, an update's stream after a stream).
        let plain = sample_pdf(3, [0, 0, 595, 842], Some(90));
        let packed = object_stream_pdf(100);
        let seeds = [
            stamp(&plain, &at(1, 10.0, 10.0), &text(), &limits)
                .unwrap()
                .bytes,
            stamp(&packed, &at(1, 10.0, 10.0), &text(), &limits)
                .unwrap()
                .bytes,
            plain,
            packed,
            tree_pdf(),
        ];
        let tokens: [&[u8]; 14] = [
            b" 0 R ",
            b"<<",
            b">>",
            b"[",
            b"stream\n",
            b"/Length 999999999 ",
            b"9999999999 0 obj",
            b"/Type /ObjStm /N 99999 ",
            b"/Count 0 ",
            b"/Count 2 ",
            b"/Type /Pages ",
            b"/Size 4294967295 ",
            b" 00001 n",
            b"/Parent 1 0 R ",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || xorshift(&mut state);
        let (mut stamped, mut refused, mut read_lazily) = (0, 0, 0);
        for round in 0..20_000 {
            let mut file = seeds[round % seeds.len()].clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() as usize) % file.len();
                match next() % 4 {
                    0 => file[at] = next() as u8,
                    1 => file.truncate(at.max(8)),
                    2 => {
                        let len = (next() as usize % 64).min(file.len() - at);
                        let piece = file[at..at + len].to_vec();
                        let to = (next() as usize) % file.len();
                        file.splice(to..to, piece);
                    }
                    _ => {
                        let token = tokens[(next() as usize) % tokens.len()];
                        file.splice(at..at, token.iter().copied());
                    }
                }
            }
            let result =
                std::panic::catch_unwind(|| stamp(&file, &at(1, 10.0, 10.0), &text(), &limits));
            // Where the reader takes a file, it answers as the full load does.
            let page = 1 + (round % 3) as u32;
            let (fast, full) = both_ways(&file, &at(page, 10.0, 10.0));
            if let Some(fast) = fast {
                match (&fast, &full) {
                    (Ok(a), Ok(b)) => {
                        // The same page of the same count, the widget at the
                        // same place.
                        assert_eq!(a.pages, b.pages, "round {round}");
                        // New objects' numbers may differ (lopdf also counts object-stream members no entry lists).
                        let placed = |p: &Prepared| {
                            let bytes = p.clone().seal(&[]).unwrap().bytes;
                            placements(&bytes, page)
                        };
                        let (pa, pb) = (placed(a), placed(b));
                        assert_eq!(pa, pb, "round {round}");
                        read_lazily += 1;
                    }
                    (Err(a), Err(b)) if a.code() == b.code() => read_lazily += 1,
                    _ => panic!(
                        "round {round}: the reader answers {:?}, the full load {:?}",
                        fast.map(|p| p.pages),
                        full.map(|p| p.pages)
                    ),
                }
            }
            match result {
                Ok(Ok(out)) => {
                    assert!(out.bytes.starts_with(&file));
                    stamped += 1;
                }
                Ok(Err(e)) => {
                    assert!(!e.code().is_empty());
                    refused += 1;
                }
                Err(_) => panic!("stamping panicked on mutation round {round}"),
            }
        }
        assert!(
            stamped > 0 && refused > 0 && read_lazily > 500,
            "{stamped} stamped, {refused} refused, {read_lazily} read lazily"
        );
    }
}
