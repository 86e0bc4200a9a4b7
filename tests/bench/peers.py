"""Stamper benchmark against the tools a user would pick instead.

Same machine, same files, one run: our stamper in-process (meterai-bench-stamp),
`qpdf --overlay` (Debian's qpdf, one process per document, as it is used) laying a
page that holds the same mark over the last page, and pyHanko's QR stamp
(`pyhanko.stamp.qr_stamp_file`, in-process, an incremental update like ours), on a
1-, 50- and 500-page PDF. Reports documents per second (median of timed rounds) and
peak resident memory, and the ratios ours / theirs.

    tests/.venv/bin/python tests/bench/peers.py [--seconds 2] [--out .build/bench]

Each tool is measured in a fresh process of its own, so its peak memory is its own.
Bounded: about `--seconds` per tool and size, at least 3 documents each.
"""

import argparse
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = ROOT / "target" / "release"
SIZES = [1, 50, 500]
ROUNDS = 5


def timed_rounds(run_once, seconds):
    """Median seconds per document over ROUNDS rounds sized to fill `seconds`."""
    started = time.perf_counter()
    run_once()
    first = max(time.perf_counter() - started, 1e-4)
    per_round = max(1, min(200, int(seconds / ROUNDS / first)))
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(per_round):
            run_once()
        samples.append((time.perf_counter() - started) / per_round)
    return statistics.median(samples)


def measure_one(tool, pdf, pages, mark, seconds):
    """Runs in its own process: measures one tool on one file, prints JSON."""
    workdir = tempfile.mkdtemp(prefix=f"peer-{tool}-")
    out = os.path.join(workdir, "out.pdf")
    if tool == "qpdf":
        def run_once():
            subprocess.run(
                ["qpdf", pdf, "--overlay", mark, f"--to={pages}", "--from=1", "--", out],
                check=True,
            )
        per_doc = timed_rounds(run_once, seconds)
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    elif tool == "pyhanko":
        from pyhanko.stamp import QRStampStyle, qr_stamp_file

        style = QRStampStyle(stamp_text="METERAI ELEKTRONIK 10000\n%(url)s")
        counter = [0]

        def run_once():
            counter[0] += 1
            qr_stamp_file(
                pdf, out, style, dest_page=pages - 1, x=450, y=40,
                url=f"https://meterai.example/v1/verify/{counter[0]:022d}",
            )
        per_doc = timed_rounds(run_once, seconds)
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    else:
        raise SystemExit(f"unknown tool {tool}")
    print(json.dumps({
        "tool": tool,
        "docs_per_s": round(1.0 / per_doc, 1),
        "median_ms": round(per_doc * 1000, 3),
        "peak_rss_mib": round(peak_kib / 1024, 1),
    }))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--out", default=str(ROOT / ".build" / "bench"))
    parser.add_argument("--one", nargs=4, metavar=("TOOL", "PDF", "PAGES", "MARK"))
    args = parser.parse_args()
    if args.one:
        tool, pdf, pages, mark = args.one
        measure_one(tool, pdf, int(pages), mark, args.seconds)
        return

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mark = out / "mark.pdf"
    subprocess.run([BIN / "meterai-bench-stamp", "--mark-pdf", mark], check=True)
    qpdf_version = subprocess.run(["qpdf", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    from importlib.metadata import version
    pyhanko_version = version("pyHanko")
    results = []
    for pages in SIZES:
        pdf = out / f"in-{pages}.pdf"
        subprocess.run([BIN / "meterai-sample-pdf", str(pages), pdf], check=True, stdout=subprocess.DEVNULL)
        ours = json.loads(subprocess.run(
            [BIN / "meterai-bench-stamp", "5", "--in", pdf, "--page", str(pages)],
            check=True, capture_output=True, text=True,
        ).stdout)
        row = {"pages": pages, "bytes": pdf.stat().st_size, "meterai": ours}
        for tool in ("qpdf", "pyhanko"):
            measured = subprocess.run(
                [sys.executable, __file__, "--seconds", str(args.seconds), "--one", tool, str(pdf), str(pages), str(mark)],
                check=True, capture_output=True, text=True,
            )
            row[tool] = json.loads(measured.stdout.strip().splitlines()[-1])
            row[f"speed_x_{tool}"] = round(ours["docs_per_s"] / row[tool]["docs_per_s"], 1)
            row[f"memory_vs_{tool}"] = round(ours["peak_rss_mib"] / row[tool]["peak_rss_mib"], 2)
        results.append(row)
    report = {
        "machine": {"cpus": os.cpu_count()},
        "versions": {"qpdf": qpdf_version, "pyhanko": pyhanko_version},
        "results": results,
    }
    (out / "peers.json").write_text(json.dumps(report, indent=2))
    print(f"{'pages':>5} {'bytes':>9} | {'meterai d/s':>11} {'MiB':>6} | {'qpdf d/s':>9} {'MiB':>6} | "
          f"{'pyHanko d/s':>11} {'MiB':>6} | {'x qpdf':>7} {'x pyHanko':>9}")
    for r in results:
        m, q, p = r["meterai"], r["qpdf"], r["pyhanko"]
        print(f"{r['pages']:>5} {r['bytes']:>9} | {m['docs_per_s']:>11} {m['peak_rss_mib']:>6} | "
              f"{q['docs_per_s']:>9} {q['peak_rss_mib']:>6} | {p['docs_per_s']:>11} {p['peak_rss_mib']:>6} | "
              f"{r['speed_x_qpdf']:>7} {r['speed_x_pyhanko']:>9}")
    first, last = results[0], results[-1]
    for tool in ("meterai", "qpdf", "pyhanko"):
        growth = first[tool]["docs_per_s"] / last[tool]["docs_per_s"]
        print(f"{tool}: a 500-page document costs {growth:.1f}x a 1-page one "
              f"({last['bytes'] / first['bytes']:.0f}x the bytes)")
    print(f"versions: {qpdf_version}, pyHanko {pyhanko_version}; report: {out / 'peers.json'}")


if __name__ == "__main__":
    main()
