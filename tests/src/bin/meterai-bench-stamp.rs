//! Stamping benchmark, in-process: documents per second on a 1-, 50- and
//! 500-page PDF (median of timed rounds), and the cost ratio between them.
//!
//!     target/release/meterai-bench-stamp [rounds] [--write DIR]
//!     target/release/meterai-bench-stamp [rounds] --in FILE --page N    (one JSON line)
//!     target/release/meterai-bench-stamp --mark-pdf OUT
//!
//! `--write DIR` also saves one stamped file per size there, to look at.
//! `--in` stamps a given file (the peer benchmark, `tests/bench/peers.py`,
//! gives every tool the same files) and prints docs/s and peak memory as JSON;
//! `--mark-pdf` writes a page holding only the mark, for `qpdf --overlay`.
//! Bounded: `rounds` (default 5) rounds of at most 200 stamps each.

use std::time::Instant;

use meterai::stamp::pdf::{sample_pdf, DEFAULT_SIZE};
use meterai::stamp::{stamp, Limits, MarkText, Placement, Serial, Stamped};

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
            meterai::stamp::pdf::mark_page_pdf(&mark, &placement, [595, 842]),
        )
        .expect("writes the mark page");
        return;
    }
    if let Some(path) = flag("--in") {
        let original = std::fs::read(&path).expect("reads the input PDF");
        let page = flag("--page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let per_round = (200_000_000 / original.len().max(1)).clamp(4, 200);
        let median = median_ms(&original, &at(page), &limits, rounds, per_round);
        println!(
            "{}",
            serde_json::json!({
                "tool": "meterai", "file": path, "bytes": original.len(),
                "docs_per_s": (1000.0 / median * 10.0).round() / 10.0,
                "median_ms": (median * 1000.0).round() / 1000.0,
                "peak_rss_mib": peak_rss_mib(),
            })
        );
        return;
    }
    let mut baseline = None;
    println!(
        "{:>6} {:>10} {:>12} {:>14} {:>8}",
        "pages", "bytes", "median ms", "docs/s", "ratio"
    );
    for pages in [1u32, 50, 500] {
        let original = sample_pdf(pages, [0, 0, 595, 842], None);
        let placement = at(pages);
        let per_round = (200 / pages as usize).max(4);
        let median = median_ms(&original, &placement, &limits, rounds, per_round);
        let ratio = median / *baseline.get_or_insert(median);
        println!(
            "{pages:>6} {:>10} {median:>12.3} {:>14.1} {ratio:>8.1}",
            original.len(),
            1000.0 / median
        );
        if let Some(dir) = &write_dir {
            let stamped = stamp_once(&original, &placement, &limits);
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

/// Median milliseconds per stamp over `rounds` rounds of `per_round` stamps.
fn median_ms(
    original: &[u8],
    placement: &Placement,
    limits: &Limits,
    rounds: usize,
    per_round: usize,
) -> f64 {
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        for _ in 0..per_round {
            std::hint::black_box(stamp_once(original, placement, limits));
        }
        samples.push(started.elapsed().as_secs_f64() * 1000.0 / per_round as f64);
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
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

/// One stamp with a fresh serial, as the worker makes it.
fn stamp_once(original: &[u8], placement: &Placement, limits: &Limits) -> Stamped {
    let serial = Serial::generate();
    let url = format!("https://meterai.example/v1/verify/{serial}");
    let mark = MarkText {
        serial: serial.as_str(),
        verify_url: &url,
    };
    stamp(original, placement, &mark, limits).expect("benchmark documents stamp")
}
