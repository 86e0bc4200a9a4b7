//! Tools we did not write, as judges of stamped files: qpdf (structure),
//! poppler (text, rendering, `pdfsig`), zbar (QR codes) and pyHanko
//! (signature validation). `scripts/test` installs them: Debian's qpdf,
//! poppler-utils and zbar-tools, and pyHanko in `tests/.venv`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The test signing key and chain (a test CA; never deployed).
pub const TEST_SIGNING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../functions/lib/pdf/testdata/signing"
);

/// A scratch directory removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "meterai-{name}-{}-{}",
            std::process::id(),
            crate::unique("")
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
    /// Writes `bytes` to `file` here and returns its path.
    pub fn write(&self, file: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(file);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a tool; returns whether it exited 0 and its stdout + stderr.
pub fn run(program: &str, args: &[&str]) -> (bool, String) {
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

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// pyHanko (PyPI), from the venv `scripts/test` installs, or `$PYHANKO`.
pub fn pyhanko() -> String {
    std::env::var("PYHANKO")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/pyhanko").to_string())
}

pub fn assert_qpdf_clean(file: &Path) {
    let (ok, text) = run("qpdf", &["--check", s(file)]);
    assert!(
        ok && text.contains("No syntax or stream encoding errors"),
        "qpdf --check: {text}"
    );
}

pub fn page_text(file: &Path, page: u32) -> String {
    let p = page.to_string();
    let (ok, text) = run("pdftotext", &["-f", &p, "-l", &p, s(file), "-"]);
    assert!(ok, "pdftotext: {text}");
    text
}

/// The QR codes zbar reads on MuPDF's 150 dpi render of `page`.
pub fn qr_codes_mupdf(scratch: &Scratch, file: &Path, page: u32) -> Vec<String> {
    let png = scratch.path("qr-mupdf.png");
    let (ok, text) = run(
        "mutool",
        &[
            "draw",
            "-q",
            "-r",
            "150",
            "-o",
            s(&png),
            s(file),
            &page.to_string(),
        ],
    );
    assert!(ok, "mutool draw: {text}");
    zbar(&png)
}

/// A viewer in the browser: pdf.js (as Firefox and the portal draw a page)
/// or Chromium's built-in viewer (PDFium).
#[derive(Clone, Copy, Debug)]
pub enum Browser {
    PdfJs,
    Chromium,
}

/// The QR codes zbar reads on `browser`'s 150 dpi render of page 1, drawn
/// in Debian's Chromium by `tests/render/render.mjs`.
pub fn qr_codes_browser(scratch: &Scratch, file: &Path, browser: Browser) -> Vec<String> {
    let png = scratch.path(&format!("qr-{browser:?}.png"));
    let viewer = match browser {
        Browser::PdfJs => "pdfjs",
        Browser::Chromium => "chromium",
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/render/render.mjs");
    let (ok, text) = run("node", &[script, viewer, s(file), s(&png)]);
    assert!(ok, "render.mjs {viewer}: {text}");
    zbar(&png)
}

/// The QR codes zbar reads in an image, one per line.
fn zbar(png: &Path) -> Vec<String> {
    let (ok, text) = run("zbarimg", &["--quiet", "--raw", s(png)]);
    assert!(ok, "zbarimg: {text}");
    // zbar may add D-Bus noise on stderr; each decoded symbol is its own line.
    text.lines().map(|l| l.trim().to_string()).collect()
}

/// The QR codes zbar reads on poppler's 150 dpi render of `page`.
pub fn qr_codes(scratch: &Scratch, file: &Path, page: u32) -> Vec<String> {
    let p = page.to_string();
    let prefix = scratch.path("qr-page");
    let (ok, text) = run(
        "pdftoppm",
        &[
            "-r",
            "150",
            "-png",
            "-singlefile",
            "-f",
            &p,
            "-l",
            &p,
            s(file),
            s(&prefix),
        ],
    );
    assert!(ok, "pdftoppm: {text}");
    zbar(&scratch.path("qr-page.png"))
}

/// `pyhanko sign validate` trusting only `trust` (our CA, plus the CAs of
/// any signature made before ours).
pub fn pyhanko_validate(file: &Path, trust: &[&Path]) -> String {
    let mut args = vec![
        "sign",
        "validate",
        "--pretty-print",
        "--no-revocation-check",
        "--trust-replace",
    ];
    for anchor in trust {
        args.extend(["--trust", s(anchor)]);
    }
    args.push(s(file));
    run(&pyhanko(), &args).1
}

/// pyHanko judges every signature VALID and pdfsig finds `count` valid ones.
pub fn assert_signatures_valid(file: &Path, trust: &[&Path], count: usize) {
    let report = pyhanko_validate(file, trust);
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

/// Both tools say a signature in `file` is broken.
pub fn assert_signature_broken(file: &Path, trust: &[&Path]) {
    let report = pyhanko_validate(file, trust);
    assert!(
        report.contains("INVALID") && !report.contains("judged VALID"),
        "pyhanko on a tampered file: {report}"
    );
    let (_, text) = run("pdfsig", &[s(file)]);
    assert!(
        text.contains("Signature Validation:") && !text.contains("Signature is Valid."),
        "pdfsig on a tampered file: {text}"
    );
}

/// `input` signed by pyHanko in a new field `name`, after any signature
/// already there, with a fresh self-signed RSA certificate for `CN=name` (as
/// most personal certificates are). Returns the signed file and the
/// certificate (to trust it).
pub fn pyhanko_signed(scratch: &Scratch, input: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (key, cert) = (
        scratch.path(&format!("{name}.key")),
        scratch.path(&format!("{name}.pem")),
    );
    let subject = format!("/CN={name}");
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
            &subject,
        ],
    );
    assert!(ok, "openssl: {text}");
    let signed = scratch.path(&format!("signed-by-{name}.pdf"));
    let (ok, text) = run(
        &pyhanko(),
        &[
            "sign",
            "addsig",
            "--field",
            name,
            "pemder",
            "--key",
            s(&key),
            "--cert",
            s(&cert),
            "--no-pass",
            s(input),
            s(&signed),
        ],
    );
    assert!(ok, "pyhanko addsig: {text}");
    (signed, cert)
}

/// An applicant's signature on `unsigned`, made before stamping.
pub fn applicant_signed(scratch: &Scratch, unsigned: &[u8]) -> (PathBuf, PathBuf) {
    let input = scratch.write("unsigned.pdf", unsigned);
    pyhanko_signed(scratch, &input, "Applicant")
}
