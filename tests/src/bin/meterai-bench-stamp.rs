//! Stamping benchmark, in-process: documents per second on a 1-, 50- and
//! 500-page PDF (median of timed rounds), and the cost ratio between them.
//!
//!     target/release/meterai-bench-stamp [rounds] [--write DIR]
//!
//! `--write DIR` also saves one stamped file per size there, to look at.
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
    let mut baseline = None;
    println!(
        "{:>6} {:>10} {:>12} {:>14} {:>8}",
        "pages", "bytes", "median ms", "docs/s", "ratio"
    );
    for pages in [1u32, 50, 500] {
        let original = sample_pdf(pages, [0, 0, 595, 842], None);
        let placement = Placement {
            page: pages,
            x: 450.0,
            y: 40.0,
            width: DEFAULT_SIZE,
            height: DEFAULT_SIZE,
        };
        let per_round = (200 / pages as usize).max(4);
        let mut samples = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let started = Instant::now();
            for _ in 0..per_round {
                std::hint::black_box(stamp_once(&original, &placement, &limits));
            }
            samples.push(started.elapsed().as_secs_f64() * 1000.0 / per_round as f64);
        }
        samples.sort_by(f64::total_cmp);
        let median = samples[samples.len() / 2];
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
