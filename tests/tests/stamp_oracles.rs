//! The stamper, in-process with the test key, judged by tools we did not
//! write: qpdf checks the structure, poppler extracts the text, renders the
//! page and checks the signature (`pdfsig`), zbar reads the QR code and
//! pyHanko validates every signature (see `e2e::oracles`).

use std::path::PathBuf;

use e2e::oracles::{
    applicant_signed, assert_qpdf_clean, assert_signature_broken, assert_signatures_valid,
    page_text, qr_codes, qr_codes_browser, qr_codes_mupdf, run, s, Browser, Scratch, TEST_SIGNING,
};
use meterai_pdf::signing::LocalSigner;
use meterai_pdf::stamp::pdf::{read_lazily, sample_pdf, DEFAULT_SIZE};
use meterai_pdf::stamp::{stamp, Limits, MarkText, Placement, Serial};

/// The mark at its default size, lower-left corner at (`x`, `y`) on `page`.
fn at(page: u32, x: f64, y: f64) -> Placement {
    Placement {
        page,
        x,
        y,
        width: DEFAULT_SIZE,
        height: DEFAULT_SIZE,
    }
}

/// The test signing key and its chain.
fn signer() -> LocalSigner {
    let key = std::fs::read_to_string(format!("{TEST_SIGNING}/signer.key.pem")).unwrap();
    let chain = std::fs::read(format!("{TEST_SIGNING}/chain.pem")).unwrap();
    LocalSigner::from_pem(&key, &chain).unwrap()
}

/// The RSA test key (the template's default key type) and its chain.
fn rsa_signer() -> LocalSigner {
    let key = std::fs::read_to_string(format!("{TEST_SIGNING}/signer-rsa.key.pem")).unwrap();
    let chain = std::fs::read(format!("{TEST_SIGNING}/chain-rsa.pem")).unwrap();
    LocalSigner::from_pem(&key, &chain).unwrap()
}

fn test_ca() -> PathBuf {
    PathBuf::from(format!("{TEST_SIGNING}/ca.pem"))
}

/// Stamps and signs, checks the original is the untouched prefix (as `cmp`
/// sees it), and has pyHanko and pdfsig validate the signature.
fn stamp_file(scratch: &Scratch, input: &[u8], placement: Placement, serial: &Serial) -> PathBuf {
    let out = stamp_unchecked(scratch, input, placement, serial);
    assert_signatures_valid(&out, &[&test_ca()], 1);
    out
}

fn stamp_unchecked(
    scratch: &Scratch,
    input: &[u8],
    placement: Placement,
    serial: &Serial,
) -> PathBuf {
    let url = format!("http://127.0.0.1/v1/verify/{serial}");
    let stamped = stamp(
        input,
        &placement,
        &MarkText {
            serial: serial.as_str(),
            verify_url: &url,
        },
        &Limits::default(),
        &signer(),
    )
    .unwrap_or_else(|e| panic!("stamping failed: {e}"));
    let out = scratch.write("stamped.pdf", &stamped.bytes);
    let original = scratch.write("original.pdf", input);
    let (same, text) = run(
        "cmp",
        &["-n", &input.len().to_string(), s(&original), s(&out)],
    );
    assert!(same, "original bytes are the prefix: {text}");
    out
}

#[test]
fn stamped_pdf_passes_qpdf_and_shows_the_serial_on_the_requested_page() {
    let scratch = Scratch::new("oracle-basic");
    let serial = Serial::generate();
    let original = sample_pdf(3, [0, 0, 595, 842], None);
    let placement = at(2, 450.0, 40.0);
    let file = stamp_file(&scratch, &original, placement, &serial);
    assert_qpdf_clean(&file);
    assert!(
        page_text(&file, 2).contains(serial.as_str()),
        "serial on page 2"
    );
    assert!(
        !page_text(&file, 1).contains(serial.as_str()),
        "and not on page 1"
    );
    assert!(page_text(&file, 2).contains("METERAI"));
}

#[test]
fn the_qr_code_reads_back_as_the_verification_url() {
    let scratch = Scratch::new("oracle-qr");
    let serial = Serial::generate();
    let original = sample_pdf(1, [0, 0, 595, 842], None);
    let placement = Placement {
        page: 1,
        x: 200.0,
        y: 300.0,
        width: 200.0,
        height: 200.0,
    };
    let file = stamp_file(&scratch, &original, placement, &serial);
    let expected = format!("http://127.0.0.1/v1/verify/{serial}");
    let codes = qr_codes(&scratch, &file, 1);
    assert!(codes.contains(&expected), "zbarimg read: {codes:?}");
}

#[test]
fn xref_streams_rotation_and_offset_media_boxes_stay_valid() {
    let scratch = Scratch::new("oracle-variants");
    let classic = scratch.path("classic.pdf");
    std::fs::write(&classic, sample_pdf(2, [-50, 100, 562, 892], Some(270))).unwrap();
    let streams = scratch.path("streams.pdf");
    let (ok, text) = run(
        "qpdf",
        &["--object-streams=generate", s(&classic), s(&streams)],
    );
    assert!(ok, "qpdf: {text}");
    let original = std::fs::read(&streams).unwrap();
    assert!(
        String::from_utf8_lossy(&original).contains("/XRef"),
        "input uses a cross-reference stream"
    );
    let serial = Serial::generate();
    let placement = at(2, 600.0, 20.0);
    let file = stamp_file(&scratch, &original, placement, &serial);
    assert_qpdf_clean(&file);
    assert!(page_text(&file, 2).contains(serial.as_str()));
    let (ok, text) = run(
        "pdftoppm",
        &[
            "-r",
            "30",
            "-png",
            "-f",
            "2",
            "-l",
            "2",
            s(&file),
            s(&scratch.path("r")),
        ],
    );
    assert!(ok, "pdftoppm renders the rotated page: {text}");
}

#[test]
fn a_password_protected_pdf_is_refused_and_a_permissions_only_one_is_stamped_and_signed() {
    let scratch = Scratch::new("oracle-encrypted");
    let plain = scratch.path("plain.pdf");
    std::fs::write(&plain, sample_pdf(1, [0, 0, 595, 842], None)).unwrap();
    let locked = scratch.path("locked.pdf");
    let (ok, text) = run(
        "qpdf",
        &[
            "--encrypt",
            "user-secret",
            "owner-secret",
            "256",
            "--",
            s(&plain),
            s(&locked),
        ],
    );
    assert!(ok, "qpdf: {text}");
    let bytes = std::fs::read(&locked).unwrap();
    let placement = at(1, 10.0, 10.0);
    let serial = Serial::generate();
    let mark = MarkText {
        serial: serial.as_str(),
        verify_url: "http://127.0.0.1/v",
    };
    let err = stamp(&bytes, &placement, &mark, &Limits::default(), &signer()).unwrap_err();
    assert_eq!(err.code(), "ENCRYPTED_PDF", "{err}");

    let permissions = scratch.path("permissions.pdf");
    let (ok, text) = run(
        "qpdf",
        &[
            "--encrypt",
            "",
            "owner-secret",
            "256",
            "--print=none",
            "--",
            s(&plain),
            s(&permissions),
        ],
    );
    assert!(ok, "qpdf: {text}");
    // Readable without a password: stamped, its update encrypted like the
    // rest, except the signature's /Contents (which the standard exempts).
    let original = std::fs::read(&permissions).unwrap();
    let file = stamp_file(&scratch, &original, placement, &serial);
    assert_qpdf_clean(&file);
    assert!(page_text(&file, 1).contains(serial.as_str()));
    let written = std::fs::read(&file).unwrap();
    assert!(
        !written[original.len()..]
            .windows(serial.as_str().len())
            .any(|w| w == serial.as_str().as_bytes()),
        "the update's strings are encrypted"
    );
    // Verification still finds the stamp, through the signature's /Reason.
    let signatures =
        meterai_pdf::stamp::signatures::signatures(&written, &Limits::default()).unwrap();
    let (serials, _) = meterai_pdf::verify::stamp_serials(&written, &signatures);
    assert_eq!(serials, vec![serial.clone()]);
    assert!(meterai_pdf::verify::find_serials(&written).0.is_empty());
}

/// Applicants sign first and stamp last: a signature made before stamping
/// must stay valid, because the mark lives in an annotation, not the page.
#[test]
fn a_signature_made_before_stamping_stays_valid() {
    let scratch = Scratch::new("oracle-signed");
    let (signed, cert) = applicant_signed(&scratch, &sample_pdf(2, [0, 0, 595, 842], None));
    assert_signatures_valid(&signed, &[&cert], 1);

    let serial = Serial::generate();
    let placement = at(1, 450.0, 40.0);
    let stamped = stamp_unchecked(
        &scratch,
        &std::fs::read(&signed).unwrap(),
        placement,
        &serial,
    );
    assert_qpdf_clean(&stamped);
    // Both the applicant's signature and ours are valid.
    assert_signatures_valid(&stamped, &[&cert, &test_ca()], 2);
    assert!(page_text(&stamped, 1).contains(serial.as_str()));
}

/// lopdf's trap: when it has to rebuild the cross-reference table by scanning,
/// an appended update would have no usable /Prev. Such files are refused;
/// files whose `startxref` is merely off are stamped into a valid file.
#[test]
fn broken_cross_reference_data_is_refused_or_repaired_never_half_written() {
    let scratch = Scratch::new("oracle-xref");
    let original = sample_pdf(1, [0, 0, 595, 842], None);
    let text = String::from_utf8_lossy(&original).to_string();
    let startxref = text.rfind("startxref").expect("a startxref keyword");
    let placement = at(1, 10.0, 10.0);
    let serial = Serial::generate();
    for (name, broken) in [
        // The xref section is gone: the table must be rebuilt by scanning.
        ("no-xref", {
            let xref = text.find("\nxref").expect("a classic xref table");
            format!("{}\n{}", &text[..xref], &text[startxref..])
        }),
        // startxref points a few bytes off.
        ("off-by-some", {
            let offset: usize = text[startxref + 9..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
            format!("{}startxref\n{}\n%%EOF\n", &text[..startxref], offset + 3)
        }),
    ] {
        let url = format!("http://127.0.0.1/v1/verify/{serial}");
        match stamp(
            broken.as_bytes(),
            &placement,
            &MarkText {
                serial: serial.as_str(),
                verify_url: &url,
            },
            &Limits::default(),
            &signer(),
        ) {
            Err(e) => assert!(
                ["DAMAGED_PDF", "MALFORMED_PDF"].contains(&e.code()),
                "{name}: {e:?}"
            ),
            Ok(stamped) => {
                let file = scratch.path(&format!("{name}.pdf"));
                std::fs::write(&file, &stamped.bytes).unwrap();
                assert_qpdf_clean(&file);
                assert!(page_text(&file, 1).contains(serial.as_str()), "{name}");
                assert_signatures_valid(&file, &[&test_ca()], 1);
            }
        }
    }
}

/// One byte changed inside the signed range: both validators say so.
#[test]
fn a_byte_changed_after_stamping_breaks_the_signature_for_both_tools() {
    let scratch = Scratch::new("oracle-tamper");
    let serial = Serial::generate();
    let original = sample_pdf(1, [0, 0, 595, 842], None);
    let placement = at(1, 40.0, 40.0);
    let file = stamp_file(&scratch, &original, placement, &serial);
    let mut bytes = std::fs::read(&file).unwrap();
    // "page 1" in the original text becomes "page 7": same length, still a PDF.
    let at = bytes
        .windows(6)
        .position(|w| w == b"page 1")
        .expect("sample text")
        + 5;
    bytes[at] = b'7';
    let tampered = scratch.path("tampered.pdf");
    std::fs::write(&tampered, &bytes).unwrap();
    assert_signature_broken(&tampered, &[&test_ca()]);
}

/// Both key types make the same structure, and both validators accept each.
#[test]
fn an_rsa_key_signs_as_validly_as_a_p256_one() {
    let scratch = Scratch::new("oracle-rsa");
    let original = sample_pdf(1, [0, 0, 595, 842], None);
    let serial = Serial::generate();
    let placement = at(1, 40.0, 40.0);
    let stamped = stamp(
        &original,
        &placement,
        &MarkText {
            serial: serial.as_str(),
            verify_url: "http://127.0.0.1/v",
        },
        &Limits::default(),
        &rsa_signer(),
    )
    .unwrap();
    let file = scratch.write("rsa.pdf", &stamped.bytes);
    assert_qpdf_clean(&file);
    assert_signatures_valid(&file, &[&test_ca()], 1);
    let (_, text) = run("pdfsig", &[s(&file)]);
    assert!(text.contains("meterai test RSA signer"), "{text}");
}

/// At the smallest mark, with the longest verification URL a deployment
/// may have, the QR code still decodes from a 150 dpi render, wherever the
/// mark falls on the pixel grid, and in a box that is not square; in
/// poppler's render and in MuPDF's (and, for the square mark, pdf.js's and
/// Chromium's viewer's).
#[test]
fn the_qr_code_decodes_at_150_dpi_at_the_smallest_size() {
    use meterai_core::jobs::{verify_url, MAX_QR_URL, MIN_SIZE};
    let scratch = Scratch::new("oracle-qr-min");
    let serial = Serial::generate();
    let original = sample_pdf(1, [0, 0, 595, 842], None);
    let shortest = verify_url("https://x.id", serial.as_str()).len();
    let base = format!("https://{}.id", "a".repeat(MAX_QR_URL - shortest + 1));
    let url = verify_url(&base, serial.as_str());
    assert_eq!(url.len(), MAX_QR_URL);
    let boxes = [
        (200.0, 300.0, MIN_SIZE, MIN_SIZE),
        (200.3, 300.3, MIN_SIZE, MIN_SIZE),
        (200.61, 300.61, MIN_SIZE, MIN_SIZE),
        (100.0, 300.0, 400.0, MIN_SIZE),
    ];
    for (i, (x, y, width, height)) in boxes.into_iter().enumerate() {
        let placement = Placement {
            page: 1,
            x,
            y,
            width,
            height,
        };
        let stamped = stamp(
            &original,
            &placement,
            &MarkText {
                serial: serial.as_str(),
                verify_url: &url,
            },
            &Limits::default(),
            &signer(),
        )
        .unwrap();
        let file = scratch.write(&format!("min-{i}.pdf"), &stamped.bytes);
        let codes = qr_codes(&scratch, &file, 1);
        assert!(codes.contains(&url), "box {i}: zbarimg read {codes:?}");
        let codes = qr_codes_mupdf(&scratch, &file, 1);
        assert!(
            codes.contains(&url),
            "box {i}, MuPDF: zbarimg read {codes:?}"
        );
        // The browsers, on the smallest square mark.
        if i == 0 {
            for browser in [Browser::PdfJs, Browser::Chromium] {
                let codes = qr_codes_browser(&scratch, &file, browser);
                assert!(codes.contains(&url), "{browser:?}: zbarimg read {codes:?}");
            }
        }
    }
}

/// A one-page form as LibreOffice, pdfLaTeX and Evince write them: a text
/// field and `/NeedAppearances true` (viewers draw the fields themselves).
fn form_pdf() -> Vec<u8> {
    let content = b"BT /F1 18 Tf 1 0 0 1 72 760 Tm (Formulir lamaran) Tj ET";
    let objects: [Vec<u8>; 6] = [
        b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [5 0 R] /NeedAppearances true /DA (/Helv 0 Tf 0 g) /DR << /Font << /Helv 6 0 R >> >> >> >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 6 0 R >> >> /Annots [5 0 R] >>".to_vec(),
        [
            format!("<< /Length {} >>\nstream\n", content.len()).as_bytes(),
            content,
            b"\nendstream",
        ]
        .concat(),
        b"<< /Type /Annot /Subtype /Widget /FT /Tx /T (nama) /V (Budi) /Rect [72 700 300 720] /P 3 0 R /F 4 /DA (/Helv 12 Tf 0 g) >>".to_vec(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
    ];
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend(body);
        out.extend(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        out.extend(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A form that asks viewers to draw its fields themselves still shows our
/// mark in poppler (which then redraws every field it can, and a signature
/// field it cannot) and in MuPDF: the QR code is read back from both
/// renders, and from pdf.js's and Chromium's viewer's, and the signatures
/// stay valid.
#[test]
fn the_mark_shows_on_a_form_that_needs_appearances() {
    let scratch = Scratch::new("oracle-need-appearances");
    let serial = Serial::generate();
    let file = stamp_file(&scratch, &form_pdf(), at(1, 200.0, 300.0), &serial);
    assert_qpdf_clean(&file);
    let expected = format!("http://127.0.0.1/v1/verify/{serial}");
    let codes = qr_codes(&scratch, &file, 1);
    assert!(codes.contains(&expected), "zbarimg read: {codes:?}");
    let codes = qr_codes_mupdf(&scratch, &file, 1);
    assert!(codes.contains(&expected), "MuPDF: zbarimg read: {codes:?}");
    for browser in [Browser::PdfJs, Browser::Chromium] {
        let codes = qr_codes_browser(&scratch, &file, browser);
        assert!(
            codes.contains(&expected),
            "{browser:?}: zbarimg read: {codes:?}"
        );
    }

    // Signed by the applicant first: both signatures stay valid.
    let (signed, cert) = applicant_signed(&scratch, &form_pdf());
    let serial = Serial::generate();
    let stamped = stamp_unchecked(
        &scratch,
        &std::fs::read(&signed).unwrap(),
        at(1, 200.0, 300.0),
        &serial,
    );
    assert_qpdf_clean(&stamped);
    assert_signatures_valid(&stamped, &[&cert, &test_ca()], 2);
    let expected = format!("http://127.0.0.1/v1/verify/{serial}");
    let codes = qr_codes(&scratch, &stamped, 1);
    assert!(codes.contains(&expected), "zbarimg read: {codes:?}");
    for browser in [Browser::PdfJs, Browser::Chromium] {
        let codes = qr_codes_browser(&scratch, &stamped, browser);
        assert!(
            codes.contains(&expected),
            "{browser:?}: zbarimg read: {codes:?}"
        );
    }
}

/// The benchmark corpus (`tests/bench/corpus.py`: a scanned letter, a
/// report with embedded fonts, a form, a signed contract, object streams,
/// earlier updates, the synthetic files), each stamped where the benchmark
/// stamps it: the original is the prefix, qpdf finds nothing wrong, pyHanko
/// and pdfsig judge every signature valid (a contract's own one too), and
/// zbar reads the QR code on that page.
#[test]
fn every_file_of_the_benchmark_corpus_passes_every_oracle() {
    let scratch = Scratch::new("oracle-corpus");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = scratch.path("corpus");
    let (made, text) = run(
        &format!("{root}/tests/.venv/bin/python"),
        &[
            &format!("{root}/tests/bench/corpus.py"),
            "--out",
            s(&out),
            "--bin",
            &format!("{root}/target/release"),
        ],
    );
    assert!(made, "corpus.py: {text}");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("corpus.json")).unwrap()).unwrap();
    let entries = index.as_array().expect("a list of files");
    assert!(entries.len() >= 10, "{index}");
    for entry in entries {
        let name = entry["file"].as_str().unwrap();
        let number = |key: &str| {
            entry[key]
                .as_f64()
                .unwrap_or_else(|| panic!("{name}: {key}"))
        };
        let page = number("page") as u32;
        let input = std::fs::read(out.join(name)).unwrap();
        let serial = Serial::generate();
        let placement = at(page, number("x"), number("y"));
        // Read by its cross-reference data, not loaded whole.
        assert!(
            read_lazily(&input, &placement, &Limits::default()),
            "{name}: the reader declined it"
        );
        let stamped = stamp_unchecked(&scratch, &input, placement, &serial);
        assert_qpdf_clean(&stamped);
        let signed_before = entry["signed_before"].as_bool() == Some(true);
        assert_signatures_valid(&stamped, &[&test_ca()], 1 + usize::from(signed_before));
        let expected = format!("http://127.0.0.1/v1/verify/{serial}");
        let codes = qr_codes(&scratch, &stamped, page);
        assert!(codes.contains(&expected), "{name}: zbarimg read {codes:?}");
    }
}
