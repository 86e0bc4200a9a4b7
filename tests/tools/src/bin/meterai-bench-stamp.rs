//! Stamping benchmark, in-process: stamped-and-signed documents per second on
//! a 1-, 50- and 500-page PDF (median of timed rounds), the cost ratio between
//! them, and the share of it the signature takes (hashing, signed attributes,
//! the signature with a local key file, sealing), for the RSA 2048 and the
//! P-256 test keys (in the worker KMS makes the signature itself).
//!
//!     target/release/meterai-bench-stamp [rounds] [--write DIR] [--key PEM --chain PEM]
//!     target/release/meterai-bench-stamp [rounds] --in FILE [--page N] [--at X,Y] [--stamped-out PATH]   (one JSON line)
//!     target/release/meterai-bench-stamp [rounds] --in A --page N --versus B --versus-page M   (one JSON line)
//!     target/release/meterai-bench-stamp --mark-pdf OUT
//!
//! `--write DIR` also saves one stamped file per size there, to look at.
//! `--in` stamps a given file (the peer benchmark, `tests/bench/peers.py`,
//! gives every tool the same files) and prints, as JSON, docs/s and ms signed
//! and unsigned, the SHA-256 time of the same bytes (the limit: an
//! incremental stamp must hash the file once), the time to verify one
//! stamped output as `POST /v1/verify` does (`--stamped-out PATH` keeps that
//! file, for the verifying peers) and peak memory; without `--at` the mark
//! goes to the page's lower right;
//! `--versus` times two files in alternating rounds and prints the median
//! of the per-pair cost ratios (the 500-page against the 1-page file of the
//! same bytes: noise on a shared machine falls on both);
//! `--mark-pdf` writes a page holding only the mark, for `qpdf --overlay`.
//! Bounded: `rounds` (default 5) rounds of at most 200 stamps each.

use std::time::Instant;

use meterai_pdf::signing::{LocalSigner, Signer};
use meterai_pdf::stamp::pdf::{sample_pdf, DEFAULT_SIZE};
use meterai_pdf::stamp::{
    prepare, stamp, Limits, MarkText, Placement, Serial, SignatureSpace, StampError, Stamped,
};
use sha2::Digest;

/// The test key and chain (a test CA; never deployed) unless `--key`/`--chain`.
const TEST_SIGNING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../functions/lib/pdf/testdata/signing"
);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(5)
        .clamp(1, 50);
    let write_dir = args
        .iter()
        .position(|a| a == "--write")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let limits = Limits::default();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let load = |key: &str, chain: &str| {
        LocalSigner::from_pem(
            &std::fs::read_to_string(key).expect("reads the key file"),
            &std::fs::read(chain).expect("reads the chain file"),
        )
        .expect("a key and its chain")
    };
    let signers = match (flag("--key"), flag("--chain")) {
        (Some(key), Some(chain)) => vec![("given key", load(&key, &chain))],
        _ => vec![
            (
                "RSA 2048",
                load(
                    &format!("{TEST_SIGNING}/signer-rsa.key.pem"),
                    &format!("{TEST_SIGNING}/chain-rsa.pem"),
                ),
            ),
            (
                "P-256",
                load(
                    &format!("{TEST_SIGNING}/signer.key.pem"),
                    &format!("{TEST_SIGNING}/chain.pem"),
                ),
            ),
        ],
    };
    // `--in` (the peer benchmark) uses the first: the template's default type.
    let signer = &signers[0].1;
    if let Some(out) = flag("--mark-pdf") {
        let serial = Serial::generate();
        let url = format!("https://meterai.example/v1/verify/{serial}");
        let mark = MarkText {
            serial: serial.as_str(),
            verify_url: &url,
        };
        let placement = at(1);
        std::fs::write(
            out,
            meterai_pdf::stamp::pdf::mark_page_pdf(&mark, &placement, [595, 842]),
        )
        .expect("writes the mark page");
        return;
    }
    let page_of = |name: &str| flag(name).and_then(|p| p.parse().ok()).unwrap_or(1);
    if let (Some(a), Some(b)) = (flag("--in"), flag("--versus")) {
        let files = [(a, page_of("--page")), (b, page_of("--versus-page"))];
        paired(&files, rounds, &limits, signer);
        return;
    }
    if let Some(path) = flag("--in") {
        let original = std::fs::read(&path).expect("reads the input PDF");
        let page = page_of("--page");
        let placement = match flag("--at") {
            Some(at) => match at.split_once(',').map(|(x, y)| (x.parse(), y.parse())) {
                Some((Ok(x), Ok(y))) => Placement {
                    x,
                    y,
                    ..self::at(page)
                },
                _ => {
                    eprintln!("--at takes X,Y in points");
                    std::process::exit(2);
                }
            },
            None => fitted(&original, page, &limits, signer),
        };
        let per_round = (200_000_000 / original.len().max(1)).clamp(4, 200);
        let mut pages = 0;
        let median = median_ms(rounds, per_round, || {
            pages = stamp_once(&original, &placement, &limits, signer).pages;
        });
        let unsigned = median_ms(rounds, per_round, || {
            prepare_once(&original, &placement, &limits, signer);
        });
        // The limit: one SHA-256 pass over the same bytes.
        let sha256 = median_ms(rounds, per_round, || {
            std::hint::black_box(sha2::Sha256::digest(&original));
        });
        // Measured before verification runs: the stamp's own peak.
        let peak = peak_rss_mib();
        // Verification of one stamped output, as `POST /v1/verify` reads it
        // (revision hashes, signatures, later changes; the registry aside).
        let stamped = stamp_once(&original, &placement, &limits, signer).bytes;
        if let Some(out) = flag("--stamped-out") {
            std::fs::write(out, &stamped).expect("writes the stamped file");
        }
        let chain = signer.chain();
        let judged = meterai_app::verification::inspect(chain, &stamped).expect("a PDF");
        let valid = judged
            .candidates()
            .iter()
            .filter(|(_, s)| s.status == "valid");
        if valid.count() != 1 {
            eprintln!("verification does not find the one valid stamp: {judged:?}");
            std::process::exit(1);
        }
        let verify = median_ms(rounds, per_round, || {
            std::hint::black_box(meterai_app::verification::inspect(chain, &stamped).ok());
        });
        println!(
            "{}",
            serde_json::json!({
                "tool": "meterai", "file": path, "bytes": original.len(), "pages": pages,
                "docs_per_s": (1000.0 / median * 10.0).round() / 10.0,
                "median_ms": thousandths(median),
                "unsigned_ms": thousandths(unsigned),
                "sha256_ms": thousandths(sha256),
                "verify_ms": thousandths(verify),
                "stamped_bytes": stamped.len(),
                "peak_rss_mib": peak,
            })
        );
        return;
    }
    for (name, signer) in &signers {
        println!("signed with the local {name} key");
        table(signer, &limits, rounds, write_dir.as_deref());
    }
}

/// Stamped-and-signed documents per second on 1, 50 and 500 pages.
fn table(signer: &LocalSigner, limits: &Limits, rounds: usize, write_dir: Option<&str>) {
    let mut baseline = None;
    println!(
        "{:>6} {:>10} {:>12} {:>14} {:>8} {:>14} {:>9}",
        "pages", "bytes", "median ms", "signed docs/s", "ratio", "unsigned ms", "signing"
    );
    for pages in [1u32, 50, 500] {
        let original = sample_pdf(pages, [0, 0, 595, 842], None);
        let placement = at(pages);
        let per_round = (200 / pages as usize).max(4);
        let median = median_ms(rounds, per_round, || {
            stamp_once(&original, &placement, limits, signer);
        });
        // The same update with its hole left empty: what signing adds is the rest.
        let unsigned = median_ms(rounds, per_round, || {
            prepare_once(&original, &placement, limits, signer);
        });
        let ratio = median / *baseline.get_or_insert(median);
        println!(
            "{pages:>6} {:>10} {median:>12.3} {:>14.1} {ratio:>8.1} {unsigned:>14.3} {:>8.1}%",
            original.len(),
            1000.0 / median,
            (median - unsigned).max(0.0) / median * 100.0
        );
        if let Some(dir) = write_dir {
            let stamped = stamp_once(&original, &placement, limits, signer);
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(format!("{dir}/stamped-{pages}.pdf"), stamped.bytes).unwrap();
        }
    }
}

/// Where every tool puts the mark: the lower right of `page`.
fn at(page: u32) -> Placement {
    Placement {
        page,
        x: 450.0,
        y: 40.0,
        width: DEFAULT_SIZE,
        height: DEFAULT_SIZE,
    }
}

/// The mark at the lower right of `page`: where every tool puts it on an
/// A4 page, moved inside a smaller one (the page's size comes from the
/// stamper's own refusal, which names it).
fn fitted(original: &[u8], page: u32, limits: &Limits, signer: &LocalSigner) -> Placement {
    let placement = at(page);
    let serial = Serial::generate();
    let url = format!("https://meterai.example/v1/verify/{serial}");
    let mark = MarkText {
        serial: serial.as_str(),
        verify_url: &url,
    };
    match stamp(original, &placement, &mark, limits, signer) {
        Ok(_) => placement,
        Err(StampError::OffPage {
            page_width,
            page_height,
            ..
        }) => Placement {
            x: (page_width - placement.width - 10.0).max(0.0),
            y: (page_height - placement.height).clamp(0.0, 10.0),
            ..placement
        },
        Err(e) => {
            eprintln!("the file cannot be stamped: {e} ({})", e.code());
            std::process::exit(1);
        }
    }
}

/// `--in A --versus B`: the cost of stamping A over that of B (each file
/// with its page; the mark at 450, 40), measured in alternating rounds (A,
/// B, A, B ...) so that whatever else the machine does falls on both; the
/// median of the per-pair ratios, with each file's median ms.
fn paired(files: &[(String, u32); 2], rounds: usize, limits: &Limits, signer: &LocalSigner) {
    let [(a, page_a), (b, page_b)] = files;
    let read = |path: &str| std::fs::read(path).expect("reads the input PDF");
    let (first, second) = (read(a), read(b));
    let (at_a, at_b) = (at(*page_a), at(*page_b));
    let per_round = (200_000_000 / first.len().max(second.len()).max(1)).clamp(4, 200);
    let mut pairs = Vec::with_capacity(rounds * 3);
    for _ in 0..rounds * 3 {
        let a_ms = median_ms(1, per_round, || {
            stamp_once(&first, &at_a, limits, signer);
        });
        let b_ms = median_ms(1, per_round, || {
            stamp_once(&second, &at_b, limits, signer);
        });
        pairs.push((a_ms, b_ms));
    }
    println!(
        "{}",
        serde_json::json!({
            "in": a, "versus": b, "pairs": pairs.len(),
            "ratio": thousandths(median(pairs.iter().map(|(x, y)| x / y).collect())),
            "in_ms": thousandths(median(pairs.iter().map(|p| p.0).collect())),
            "versus_ms": thousandths(median(pairs.iter().map(|p| p.1).collect())),
        })
    );
}

/// The middle of `samples` (the upper one of an even count).
fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Rounded to three decimals, as the JSON lines print figures.
fn thousandths(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Median milliseconds per call over `rounds` rounds of `per_round` calls.
fn median_ms(rounds: usize, per_round: usize, mut once: impl FnMut()) -> f64 {
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        for _ in 0..per_round {
            once();
        }
        samples.push(started.elapsed().as_secs_f64() * 1000.0 / per_round as f64);
    }
    median(samples)
}

/// The process's peak resident memory (Linux `VmHWM`), MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kib| (kib / 1024.0 * 10.0).round() / 10.0)
        .unwrap_or(0.0)
}

/// One stamp with a fresh serial, signed, as the worker makes it.
fn stamp_once(
    original: &[u8],
    placement: &Placement,
    limits: &Limits,
    signer: &LocalSigner,
) -> Stamped {
    let serial = Serial::generate();
    let url = format!("https://meterai.example/v1/verify/{serial}");
    let mark = MarkText {
        serial: serial.as_str(),
        verify_url: &url,
    };
    std::hint::black_box(
        stamp(original, placement, &mark, limits, signer).expect("benchmark documents stamp"),
    )
}

/// The same stamp without its signature (hole reserved, not filled).
fn prepare_once(original: &[u8], placement: &Placement, limits: &Limits, signer: &LocalSigner) {
    let serial = Serial::generate();
    let url = format!("https://meterai.example/v1/verify/{serial}");
    let mark = MarkText {
        serial: serial.as_str(),
        verify_url: &url,
    };
    let space = SignatureSpace {
        signing_time: time::OffsetDateTime::now_utc(),
        capacity: signer.chain().contents_capacity(),
    };
    let prepared = prepare(original, placement, &mark, limits, &space).expect("prepares");
    std::hint::black_box(prepared);
}
