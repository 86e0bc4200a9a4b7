//! Writes a small sample PDF (A4 pages with a line of text) for demos.
//!
//!     target/release/meterai-sample-pdf <pages> <out.pdf>

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(pages), Some(out)) = (
        args.first().and_then(|p| p.parse::<u32>().ok()),
        args.get(1),
    ) else {
        eprintln!("usage: meterai-sample-pdf <pages> <out.pdf>");
        std::process::exit(2);
    };
    let bytes = meterai_pdf::stamp::pdf::sample_pdf(pages.clamp(1, 1000), [0, 0, 595, 842], None);
    if let Err(e) = std::fs::write(out, bytes) {
        eprintln!("cannot write {out}: {e}");
        std::process::exit(1);
    }
}
