//! The stamper judged by tools we did not write: qpdf checks the structure,
//! poppler extracts the text and renders the page, zbar reads the QR code.
//! (Installed by `scripts/test`: Debian's qpdf, poppler-utils, zbar-tools.)

use std::path::{Path, PathBuf};
use std::process::Command;

use meterai::signing::LocalSigner;
use meterai::stamp::pdf::{sample_pdf, DEFAULT_SIZE};
use meterai::stamp::{stamp, Limits, MarkText, Placement, Serial};

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("meterai-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is not installed ({e}); scripts/test installs it"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/signing");

/// The test signing key and its chain (a test CA; never deployed).
fn signer() -> LocalSigner {
    let key = std::fs::read_to_string(format!("{TESTDATA}/signer.key.pem")).unwrap();
    let chain = std::fs::read(format!("{TESTDATA}/chain.pem")).unwrap();
    LocalSigner::from_pem(&key, &chain).unwrap()
}

/// Stamps and signs, checks the original is the untouched prefix (as `cmp`
/// would), and has pyHanko and pdfsig validate the signature.
fn stamp_file(scratch: &Scratch, input: &[u8], placement: Placement, serial: &Serial) -> PathBuf {
    let out = stamp_unchecked(scratch, input, placement, serial);
    assert_signatures_valid(&out, &[], 1);
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
    let out = scratch.path("stamped.pdf");
    std::fs::write(&out, &stamped.bytes).unwrap();
    let original = scratch.path("original.pdf");
    std::fs::write(&original, input).unwrap();
    let (same, text) = run(
        "cmp",
        &["-n", &input.len().to_string(), s(&original), s(&out)],
    );
    assert!(same, "original bytes are the prefix: {text}");
    out
}

/// pyHanko judges every signature VALID against our CA (plus `extra_trust`,
/// for signatures made before ours) and pdfsig finds `count` valid ones.
fn assert_signatures_valid(file: &Path, extra_trust: &[&Path], count: usize) {
    let report = pyhanko_validate(file, extra_trust);
    assert_eq!(
        report.matches("The signature is judged VALID").count(),
        count,
        "pyhanko validate: {report}"
    );
    assert!(!report.contains("INVALID"), "pyhanko validate: {report}");
    // pdfsig exits 0 even on a digest mismatch: read what it says.
    let (_, text) = run("pdfsig", &[s(file)]);
    assert_eq!(
        text.matches("Signature Validation: Signature is Valid.")
            .count(),
        count,
        "pdfsig: {text}"
    );
}

fn pyhanko_validate(file: &Path, extra_trust: &[&Path]) -> String {
    let ca = format!("{TESTDATA}/ca.pem");
    let mut args = vec![
        "sign",
        "validate",
        "--pretty-print",
        "--no-revocation-check",
        "--trust-replace",
        "--trust",
        &ca,
    ];
    for trust in extra_trust {
        args.extend(["--trust", s(trust)]);
    }
    args.push(s(file));
    run(&pyhanko(), &args).1
}

fn assert_qpdf_clean(file: &Path) {
    let (ok, text) = run("qpdf", &["--check", s(file)]);
    assert!(
        ok && text.contains("No syntax or stream encoding errors"),
        "qpdf --check: {text}"
    );
}

fn page_text(file: &Path, page: u32) -> String {
    let p = page.to_string();
    let (ok, text) = run("pdftotext", &["-f", &p, "-l", &p, s(file), "-"]);
    assert!(ok, "pdftotext: {text}");
    text
}

#[test]
fn stamped_pdf_passes_qpdf_and_shows_the_serial_on_the_requested_page() {
    let scratch = Scratch::new("oracle-basic");
    let serial = Serial::generate();
    let original = sample_pdf(3, [0, 0, 595, 842], None);
    let placement = Placement {
        page: 2,
        x: 450.0,
        y: 40.0,
        width: DEFAULT_SIZE,
        height: DEFAULT_SIZE,
    };
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
    let prefix = scratch.path("page");
    let (ok, text) = run(
        "pdftoppm",
        &["-r", "150", "-png", "-singlefile", s(&file), s(&prefix)],
    );
    assert!(ok, "pdftoppm: {text}");
    let (ok, text) = run(
        "zbarimg",
        &["--quiet", "--raw", s(&scratch.path("page.png"))],
    );
    assert!(ok, "zbarimg: {text}");
    // zbar may add D-Bus noise on stderr; the decoded symbol is its own line.
    let expected = format!("http://127.0.0.1/v1/verify/{serial}");
    assert!(
        text.lines().any(|line| line.trim() == expected),
        "zbarimg read: {text}"
    );
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
    let placement = Placement {
        page: 2,
        x: 600.0,
        y: 20.0,
        width: DEFAULT_SIZE,
        height: DEFAULT_SIZE,
    };
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
fn encrypted_pdfs_are_refused_even_with_an_empty_user_password() {
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
    let placement = Placement {
        page: 1,
        x: 10.0,
        y: 10.0,
        width: DEFAULT_SIZE,
        height: DEFAULT_SIZE,
    };
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
    // Readable without a password, but a signature cannot go into it: the
    // update would be encrypted, and the standard exempts the signature's
    // /Contents from that, which our PDF library does not.
    let original = std::fs::read(&permissions).unwrap();
    let err = stamp(&original, &placement, &mark, &Limits::default(), &signer()).unwrap_err();
    assert_eq!(err.code(), "ENCRYPTED_PDF", "{err}");
}

/// pyHanko (PyPI), from the venv `scripts/test` installs, or `$PYHANKO`.
fn pyhanko() -> String {
    std::env::var("PYHANKO").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/.venv/bin/pyhanko").to_string()
    })
}

/// Applicants sign first and stamp last: a signature made before stamping
/// must stay valid, because the mark lives in an annotation, not the page.
#[test]
fn a_signature_made_before_stamping_stays_valid() {
    let scratch = Scratch::new("oracle-signed");
    let (key, cert) = (scratch.path("key.pem"), scratch.path("cert.pem"));
    let (ok, text) = run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            s(&key),
            "-out",
            s(&cert),
            "-days",
            "2",
            "-subj",
            "/CN=Applicant",
        ],
    );
    assert!(ok, "openssl: {text}");
    let unsigned = scratch.path("unsigned.pdf");
    std::fs::write(&unsigned, sample_pdf(2, [0, 0, 595, 842], None)).unwrap();
    let signed = scratch.path("signed.pdf");
    let (ok, text) = run(
        &pyhanko(),
        &[
            "sign",
            "addsig",
            "--field",
            "Sig1",
            "pemder",
            "--key",
            s(&key),
            "--cert",
            s(&cert),
            "--no-pass",
            s(&unsigned),
            s(&signed),
        ],
    );
    assert!(ok, "pyhanko addsig: {text}");
    let validate = |file: &Path| {
        run(
            &pyhanko(),
            &[
                "sign",
                "validate",
                "--pretty-print",
                "--no-revocation-check",
                "--trust",
                s(&cert),
                s(file),
            ],
        )
    };
    let (_, before) = validate(&signed);
    assert!(before.contains("The signature is judged VALID"), "{before}");

    let serial = Serial::generate();
    let placement = Placement {
        page: 1,
        x: 450.0,
        y: 40.0,
        width: DEFAULT_SIZE,
        height: DEFAULT_SIZE,
    };
    let stamped = stamp_unchecked(
        &scratch,
        &std::fs::read(&signed).unwrap(),
        placement,
        &serial,
    );
    assert_qpdf_clean(&stamped);
    // Both the applicant's signature and ours are valid.
    assert_signatures_valid(&stamped, &[&cert], 2);
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
    let at = text.rfind("startxref").expect("a startxref keyword");
    let placement = Placement {
        page: 1,
        x: 10.0,
        y: 10.0,
        width: DEFAULT_SIZE,
        height: DEFAULT_SIZE,
    };
    let serial = Serial::generate();
    for (name, broken) in [
        // The xref section is gone: the table must be rebuilt by scanning.
        ("no-xref", {
            let xref = text.find("\nxref").expect("a classic xref table");
            format!("{}\n{}", &text[..xref], &text[at..])
        }),
        // startxref points a few bytes off.
        ("off-by-some", {
            let offset: usize = text[at + 9..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
            format!("{}startxref\n{}\n%%EOF\n", &text[..at], offset + 3)
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
                assert_signatures_valid(&file, &[], 1);
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
    let placement = Placement {
        page: 1,
        x: 40.0,
        y: 40.0,
        width: DEFAULT_SIZE,
        height: DEFAULT_SIZE,
    };
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
    let report = pyhanko_validate(&tampered, &[]);
    assert!(
        report.contains("INVALID") && !report.contains("judged VALID"),
        "pyhanko on the tampered file: {report}"
    );
    let (_, text) = run("pdfsig", &[s(&tampered)]);
    assert!(
        text.contains("Signature Validation:") && !text.contains("Signature is Valid."),
        "pdfsig on the tampered file: {text}"
    );
}
