//! Writes a small sample PDF (A4 pages with a line of text) for demos and
//! benchmarks; `--pad-to BYTES` makes one page of about that size instead
//! (the page also draws an image of noise, as a scan would).
//!
//!     target/release/meterai-sample-pdf <pages> <out.pdf> [--pad-to BYTES]

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(pages), Some(out)) = (
        args.first().and_then(|p| p.parse::<u32>().ok()),
        args.get(1),
    ) else {
        eprintln!("usage: meterai-sample-pdf <pages> <out.pdf> [--pad-to BYTES]");
        std::process::exit(2);
    };
    let pad_to = match args.get(2).map(String::as_str) {
        None => None,
        Some("--pad-to") => match args.get(3).and_then(|b| b.parse::<usize>().ok()) {
            Some(bytes) if pages == 1 && bytes <= 64 * 1024 * 1024 => Some(bytes),
            _ => {
                eprintln!("--pad-to takes a size in bytes (at most 64 MiB), for one page");
                std::process::exit(2);
            }
        },
        Some(other) => {
            eprintln!("unknown argument {other}");
            std::process::exit(2);
        }
    };
    let bytes = match pad_to {
        Some(size) => meterai_pdf::stamp::pdf::sample_pdf_of_size(size),
        None => meterai_pdf::stamp::pdf::sample_pdf(pages.clamp(1, 1000), [0, 0, 595, 842], None),
    };
    if let Err(e) = std::fs::write(out, bytes) {
        eprintln!("cannot write {out}: {e}");
        std::process::exit(1);
    }
}
