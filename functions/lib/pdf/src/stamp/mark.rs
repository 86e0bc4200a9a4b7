//! The visible e-Meterai mark, drawn as vectors in a 100 x 100 design space:
//! a frame, "METERAI ELEKTRONIK", the duty "10000", a QR code of the public
//! verification URL and the serial number as real (extractable) text.
//!
//! Everything that does not change per document (frame, labels, fonts) is
//! built once; per document only the QR modules and the serial are added.

use std::fmt::Write;
use std::sync::OnceLock;

use qrcode::EcLevel;

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
    if let Some((width, dark)) = qr_modules(verify_url.as_bytes()) {
        // Drawn in module units (integers, quick to write) under one matrix
        // that scales a module and puts the code's top left below the quiet
        // zone; rows count down from the top.
        let module = QR_SIDE / (width as f64 + 2.0 * QR_QUIET);
        let _ = writeln!(
            s,
            "q 0 0 0 rg {module:.5} 0 0 {module:.5} {:.5} {:.5} cm",
            QR_X + QR_QUIET * module,
            QR_Y + QR_QUIET * module,
        );
        for row in 0..width {
            let mut col = 0;
            while col < width {
                if dark[row * width + col] {
                    let start = col;
                    while col < width && dark[row * width + col] {
                        col += 1;
                    }
                    let _ = writeln!(s, "{start} {} {} 1 re", width - 1 - row, col - start);
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

/// The QR code of `data` (level L) as rows of dark modules: the same code
/// as `qrcode`'s `QrCode::with_error_correction_level`, module for module.
/// That picks the mask with the lowest penalty by evaluating each of the
/// eight on a cloned canvas with general code (250 us of every stamp); the
/// same penalties are computed here on a flat grid of booleans.
pub fn qr_modules(data: &[u8]) -> Option<(usize, Vec<bool>)> {
    use qrcode::canvas::{Canvas, MaskPattern};
    let bits = qrcode::bits::encode_auto(data, EcLevel::L).ok()?;
    let version = bits.version();
    if !matches!(version, qrcode::Version::Normal(_)) {
        return None;
    }
    let width = version.width() as usize;
    let raw = bits.into_bytes();
    let (encoded, ec) = qrcode::ec::construct_codewords(&raw, version, EcLevel::L).ok()?;
    let mut canvas = Canvas::new(version, EcLevel::L);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(&encoded, &ec);
    // qrcode's order: with equal penalties the first pattern wins.
    const PATTERNS: [MaskPattern; 8] = [
        MaskPattern::Checkerboard,
        MaskPattern::HorizontalLines,
        MaskPattern::VerticalLines,
        MaskPattern::DiagonalLines,
        MaskPattern::LargeCheckerboard,
        MaskPattern::Fields,
        MaskPattern::Diamonds,
        MaskPattern::Meadow,
    ];
    let mut best: Option<(u16, Vec<bool>)> = None;
    for pattern in PATTERNS {
        let mut masked = canvas.clone();
        masked.apply_mask(pattern);
        let dark: Vec<bool> = masked
            .into_colors()
            .into_iter()
            .map(|c| c == qrcode::Color::Dark)
            .collect();
        let score = if width <= 64 {
            penalty_by_rows(&dark, width)
        } else {
            penalty(&dark, width)
        };
        if best.as_ref().is_none_or(|(lowest, _)| score < *lowest) {
            best = Some((score, dark));
        }
    }
    best.map(|(_, dark)| (width, dark))
}

/// ISO 18004's mask penalty, as `qrcode` 0.14 computes it (its u16
/// arithmetic, wrapping, and its finder rule included), on a row-major grid.
fn penalty(dark: &[bool], width: usize) -> u16 {
    let at = |x: usize, y: usize| dark[y * width + x];
    let mut score = 0u16;
    // Runs of five or more of one colour, rows then columns.
    for horizontal in [true, false] {
        for i in 0..width {
            let mut last = None;
            let mut run = 1u16;
            for j in 0..=width {
                let color = (j < width).then(|| if horizontal { at(j, i) } else { at(i, j) });
                if color.is_some() && color == last {
                    run += 1;
                } else {
                    last = color;
                    if run >= 5 {
                        score = score.wrapping_add(run - 2);
                    }
                    run = 1;
                }
            }
        }
    }
    // Blocks of 2 x 2 of one colour.
    for y in 0..width - 1 {
        for x in 0..width - 1 {
            let c = at(x, y);
            if at(x + 1, y) == c && at(x, y + 1) == c && at(x + 1, y + 1) == c {
                score = score.wrapping_add(3);
            }
        }
    }
    // Finder-like 1:1:3:1:1 runs without four light modules on one side.
    const FINDER: [bool; 7] = [true, false, true, true, true, false, true];
    for horizontal in [true, false] {
        let mut found = 0u16;
        for i in 0..width {
            let get = |k: usize| if horizontal { at(k, i) } else { at(i, k) };
            for j in 0..width - 6 {
                if (0..7).any(|k| get(j + k) != FINDER[k]) {
                    continue;
                }
                let dark_in = |from: isize, to: isize| {
                    (from..to).any(|k| k >= 0 && (k as usize) < width && get(k as usize))
                };
                let j = j as isize;
                if !dark_in(j - 4, j) || !dark_in(j + 7, j + 11) {
                    found = found.wrapping_add(40);
                }
            }
        }
        score = score.wrapping_add(found.wrapping_sub(360));
    }
    // Balance of dark and light.
    let dark_count = dark.iter().filter(|d| **d).count();
    let ratio = dark_count * 200 / dark.len();
    let balance = ratio.abs_diff(100);
    score.wrapping_add(balance as u16)
}

/// [`penalty`] on the grid's rows and columns as bit words (a code of up to
/// 64 modules a side: version 11 and below; the verification URL takes
/// version 4 or 5): runs from the positions where colours change, blocks
/// and finder patterns by shifts and masks, all without a branch per module.
fn penalty_by_rows(dark: &[bool], width: usize) -> u16 {
    let mut rows = vec![0u64; width];
    let mut cols = vec![0u64; width];
    for y in 0..width {
        for x in 0..width {
            if dark[y * width + x] {
                rows[y] |= 1 << x;
                cols[x] |= 1 << y;
            }
        }
    }
    let all = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    let mut score = 0u16;
    for lines in [&rows, &cols] {
        for &line in lines.iter() {
            // Bit x set where module x and x + 1 differ: the ends of runs.
            let mut ends = (line ^ (line >> 1)) & (all >> 1);
            let mut start = 0u32;
            loop {
                let end = if ends == 0 {
                    width as u32
                } else {
                    ends.trailing_zeros() + 1
                };
                let run = (end - start) as u16;
                if run >= 5 {
                    score = score.wrapping_add(run - 2);
                }
                if ends == 0 {
                    break;
                }
                ends &= ends - 1;
                start = end;
            }
        }
    }
    for pair in rows.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let same_down = !(a ^ b);
        let same_across = !(a ^ (a >> 1));
        let blocks = same_down & (same_down >> 1) & same_across & (all >> 1);
        score = score.wrapping_add(3 * blocks.count_ones() as u16);
    }
    const FINDER: [bool; 7] = [true, false, true, true, true, false, true];
    for lines in [&rows, &cols] {
        let mut found = 0u16;
        for &line in lines.iter() {
            let mut starts = all >> 6;
            for (k, dark) in FINDER.iter().enumerate() {
                starts &= if *dark { line >> k } else { !line >> k };
            }
            while starts != 0 {
                let j = starts.trailing_zeros() as usize;
                starts &= starts - 1;
                // Dark modules in [from, to), clipped to the line.
                let dark_in = |from: usize, to: usize| {
                    let to = to.min(width);
                    from < to && (line >> from) & ((1u64 << (to - from)) - 1) != 0
                };
                if !dark_in(j.saturating_sub(4), j) || !dark_in(j + 7, j + 11) {
                    found = found.wrapping_add(40);
                }
            }
        }
        score = score.wrapping_add(found.wrapping_sub(360));
    }
    let dark_count: u32 = rows.iter().map(|r| r.count_ones()).sum();
    let ratio = dark_count as usize * 200 / (width * width);
    let balance = ratio.abs_diff(100);
    score.wrapping_add(balance as u16)
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
    use qrcode::QrCode;

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
    fn the_qr_code_is_qrcodes_own_module_for_module() {
        // Short and long data, so several versions and masks are covered.
        let mut masks_seen = std::collections::BTreeSet::new();
        for n in 0..400u32 {
            let serial = format!("{:022}", u64::from(n) * 7_919_993);
            let data = format!(
                "https://meterai.example/v1/verify/{serial}{}",
                "x".repeat((n % 90) as usize)
            );
            let ours = qr_modules(data.as_bytes()).unwrap();
            let theirs = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::L).unwrap();
            let theirs_dark: Vec<bool> = theirs
                .to_colors()
                .iter()
                .map(|c| *c == qrcode::Color::Dark)
                .collect();
            assert_eq!(ours.0, theirs.width(), "{data}");
            assert!(ours.1 == theirs_dark, "{data}");
            masks_seen.insert(ours.1[..ours.0 * 9].to_vec());
        }
        // The format bits differ by mask: many masks were chosen.
        assert!(masks_seen.len() >= 4, "{}", masks_seen.len());
    }

    #[test]
    fn the_penalty_by_bit_rows_is_the_penalty() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for round in 0..3_000 {
            let width = [21usize, 25, 29, 33, 37, 41, 57, 64][round % 8];
            let dark: Vec<bool> = (0..width * width)
                .map(|_| {
                    // Biased at times, so long runs and blocks occur.
                    (crate::stamp::pdf::xorshift(&mut state) % 7) < [1, 3, 4, 6][round % 4]
                })
                .collect();
            assert_eq!(
                penalty_by_rows(&dark, width),
                penalty(&dark, width),
                "round {round}"
            );
        }
    }

    #[test]
    fn literal_strings_are_escaped() {
        assert_eq!(escape(r"a(b)c\d"), r"a\(b\)c\\d");
        assert_eq!(escape("é"), "?");
    }
}
