//! The visible e-Meterai mark, drawn as vectors in a 100 x 100 design space:
//! a frame, "METERAI ELEKTRONIK", the duty "10000", a QR code of the public
//! verification URL and the serial number as real (extractable) text.
//!
//! Everything that does not change per document (frame, labels, fonts) is
//! built once; per document only the QR modules and the serial are added.

use std::fmt::Write;
use std::sync::OnceLock;

use qrcode::{EcLevel, QrCode};

/// Side of the design space the content stream is drawn in; the form's
/// matrix scales it to the requested size.
pub const DESIGN: f64 = 100.0;

/// Where the QR code is drawn (its quiet zone included), in design units:
/// most of the card, because its modules must stay large enough to decode
/// at the smallest mark size (see `MIN_SIZE` in `meterai-core`'s jobs).
const QR_X: f64 = 5.0;
const QR_Y: f64 = 13.0;
const QR_SIDE: f64 = 70.0;
/// White modules around the code, inside the card's white (a reader
/// needs a margin to find the code; the card's frame is further out).
const QR_QUIET: f64 = 2.0;

fn static_part() -> &'static str {
    static PART: OnceLock<String> = OnceLock::new();
    PART.get_or_init(|| {
        let mut s = String::new();
        // White card with a dark green frame and an inner hairline.
        s.push_str("q 1 1 1 rg 0 0 100 100 re f Q\n");
        s.push_str("q 0.05 0.35 0.2 RG 2 w 1 1 98 98 re S 0.5 w 4 4 92 92 re S Q\n");
        // The title on one line across the top, Helvetica-Bold (F2) in
        // dark green; the duty in a column right of the code.
        s.push_str("BT 0.05 0.35 0.2 rg /F2 6.8 Tf 1 0 0 1 11 88 Tm (METERAI ELEKTRONIK) Tj ET\n");
        s.push_str("BT 0 0 0 rg /F2 6.2 Tf 1 0 0 1 76.9 52 Tm (10000) Tj ET\n");
        s.push_str("BT 0 0 0 rg /F1 4.2 Tf 1 0 0 1 77.5 46 Tm (RUPIAH) Tj ET\n");
        s
    })
}

/// The content stream of the mark for one serial and verification URL.
pub fn content(serial: &str, verify_url: &str) -> Vec<u8> {
    let mut s = String::with_capacity(8 * 1024);
    s.push_str(static_part());
    // The QR code as one path of filled module rectangles (horizontal runs
    // merged to keep the stream short). Level L: the mark is printed or
    // shown whole, and fewer modules mean larger ones.
    if let Ok(code) = QrCode::with_error_correction_level(verify_url.as_bytes(), EcLevel::L) {
        let width = code.width();
        let module = QR_SIDE / (width as f64 + 2.0 * QR_QUIET);
        let colors = code.to_colors();
        s.push_str("q 0 0 0 rg\n");
        for row in 0..width {
            let mut col = 0;
            while col < width {
                if colors[row * width + col] == qrcode::Color::Dark {
                    let start = col;
                    while col < width && colors[row * width + col] == qrcode::Color::Dark {
                        col += 1;
                    }
                    let x = QR_X + (start as f64 + QR_QUIET) * module;
                    let y = QR_Y + QR_SIDE - (row as f64 + 1.0 + QR_QUIET) * module;
                    let _ = writeln!(
                        s,
                        "{x:.3} {y:.3} {:.3} {module:.3} re",
                        (col - start) as f64 * module
                    );
                } else {
                    col += 1;
                }
            }
        }
        s.push_str("f Q\n");
    }
    // Serial: Helvetica 5.6 pt across the bottom (the font's glyphs for our
    // alphabet are at most 0.72 em, so 22 characters fit the card).
    let _ = writeln!(
        s,
        "BT 0 0 0 rg /F1 5.6 Tf 1 0 0 1 8 6.5 Tm ({}) Tj ET",
        escape(serial)
    );
    s.into_bytes()
}

/// Escapes a PDF literal string.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_carries_labels_serial_and_a_qr_code() {
        let text = String::from_utf8(content(
            "ABCDEFGHJKMNPQRSTVWXY0",
            "https://meterai.example/v1/verify/ABCDEFGHJKMNPQRSTVWXY0",
        ))
        .unwrap();
        assert!(text.contains("(METERAI ELEKTRONIK) Tj"));
        assert!(text.contains("(10000) Tj"));
        assert!(text.contains("(ABCDEFGHJKMNPQRSTVWXY0) Tj"));
        let modules = text.matches(" re\n").count();
        assert!(modules > 50, "a QR code draws many modules, got {modules}");
    }

    #[test]
    fn only_the_per_document_part_differs() {
        let a = content("AAAAAAAAAAAAAAAAAAAAAA", "https://x/a");
        let b = content("BBBBBBBBBBBBBBBBBBBBBB", "https://x/b");
        let prefix = static_part().len();
        assert_eq!(a[..prefix], b[..prefix]);
        assert_ne!(a, b);
    }

    #[test]
    fn literal_strings_are_escaped() {
        assert_eq!(escape(r"a(b)c\d"), r"a\(b\)c\\d");
        assert_eq!(escape("é"), "?");
    }
}
