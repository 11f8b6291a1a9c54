"""Preparing a corpus: its audio checked in one process against worker processes, measured side by side in one run.

    python bench/prepare.py ravdess ../shared/data/ravdess --workers 2 --repeat 3 \\
        --json results/bench/prepare_ravdess_workers2.json

Figures go to ``results/bench/prepare_<corpus>_workers<N>.json``.

``mmser prepare`` decodes every clip once (duration, rate, peak, clipping, SHA-256). Both settings run as fresh
``mmser prepare`` processes (``prepare.workers=1`` and ``=N``), alternated ``--repeat`` times after one untimed
read of every file (so the page cache serves both alike); printed: the median seconds per clip of each, their
ratio, the main process's peak RSS and the largest worker's (a forked worker's counts the pages it shares with
the main process), and whether the manifests came out byte-identical.
The audio checks alone (``data_prep.common.check_all`` over the corpus's files, in this process) are timed the
same way, since a command's fixed start (importing torch) weighs on a small corpus.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from report import machine, measured, report, worker_peak_mb  # bench/report.py (scripts run as `python bench/<name>.py`)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", help="a corpus layout of `mmser prepare` (ravdess, iemocap, csv, ...)")
    parser.add_argument("root")
    parser.add_argument("--workers", type=int, default=2, help="processes of the parallel run")
    parser.add_argument("--repeat", type=int, default=3, help="alternated runs of each setting (the median counts)")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.workers < 2:
        raise SystemExit("--workers: give 2 or more (the other run uses 1)")

    files = [p for p in Path(args.root).rglob("*") if p.is_file()]
    for path in files:  # untimed: the page cache holds the corpus for every timed run alike
        path.read_bytes()
    seconds: dict[int, list[float]] = {1: [], args.workers: []}
    rss: dict[int, int] = {}
    worker_rss: dict[int, int] = {}
    manifests: dict[int, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for workers in seconds:
                out = Path(tmp) / f"w{workers}" / "manifest.csv"
                took, peak, done = measured(["prepare", args.corpus, args.root, "--out", str(out),
                                             f"prepare.workers={workers}"])
                seconds[workers].append(took)
                rss[workers] = max(rss.get(workers, 0), peak)
                worker_rss[workers] = max(worker_rss.get(workers, 0), worker_peak_mb(done))
                manifests[workers] = out.read_bytes()
        clips = manifests[1].count(b"\n") - 1
    one, many = (statistics.median(seconds[w]) for w in seconds)
    from data_prep import SCANNERS
    from data_prep.common import check_all

    paths = [c.path for c in SCANNERS[args.corpus](args.root).candidates]
    checks: dict[int, list[float]] = {1: [], args.workers: []}
    for _ in range(args.repeat):
        for workers in checks:
            start = time.perf_counter()
            check_all(paths, workers, progress=False)
            checks[workers].append(time.perf_counter() - start)
    check_one, check_many = (statistics.median(checks[w]) for w in checks)
    report({
        "corpus": args.corpus, "clips": clips, "repeat": args.repeat, **machine(),
        "workers_1_s": round(one, 2), f"workers_{args.workers}_s": round(many, 2),
        "workers_1_ms_per_clip": round(1000 * one / clips, 2),
        f"workers_{args.workers}_ms_per_clip": round(1000 * many / clips, 2),
        "speedup": round(one / many, 2),
        "checks_workers_1_ms_per_clip": round(1000 * check_one / len(paths), 2),
        f"checks_workers_{args.workers}_ms_per_clip": round(1000 * check_many / len(paths), 2),
        "checks_speedup": round(check_one / check_many, 2),
        "peak_rss_mb_main_process": {str(w): mb for w, mb in rss.items()},
        "peak_rss_mb_largest_worker": {str(w): mb for w, mb in worker_rss.items()},
        "manifests_identical": manifests[1] == manifests[args.workers],
        "runs_s": {str(w): [round(s, 2) for s in runs] for w, runs in seconds.items()},
    }, args.json)


if __name__ == "__main__":
    main()
