"""The feature store's two modes side by side: cross-validation of one config on one corpus with
``features.store=memory`` and ``features.store=lazy``, each in a fresh process, in one run.

    python bench/store_modes.py configs/experiment/synthetic_ablation.yaml data.manifest=M.csv \\
        features.cache_dir=C model.kind=audio_only --json results/bench/store_modes_synthetic.json

Figures go to ``results/bench/store_modes_<corpus>.json``: seconds and peak RSS (``VmHWM``) of each mode, and
lazy over memory. The cache must already hold the corpus (``mmser extract`` first); both runs read it.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

import torch

from report import measured, report  # bench/report.py (scripts run as `python bench/<name>.py`)

def cross_validate(config: str, overrides: list[str], mode: str, out: Path) -> tuple[float, int, str]:
    """(seconds, peak RSS in MB, the summary line) of ``mmser cv`` in ``mode``, in a fresh process."""
    took, rss, done = measured(["cv", config, *overrides, f"features.store={mode}", "--out", str(out)])
    if "extract " in done.stderr:  # a progress bar of encoding: the timing would include it
        raise SystemExit("the cache does not hold the corpus: run `mmser extract` first")
    summary = [line for line in done.stdout.splitlines() if " UA " in line][-1]
    return took, rss, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args()
    figures: dict = {"config": args.config, "overrides": args.overrides, "threads": torch.get_num_threads(),
                     "machine": platform.processor() or platform.machine()}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("memory", "lazy"):
            seconds, rss, summary = cross_validate(args.config, args.overrides, mode, Path(tmp) / mode)
            figures[f"{mode}_cv_s"], figures[f"{mode}_peak_rss_mb"], figures[f"{mode}_summary"] = \
                round(seconds, 2), rss, summary
    figures["lazy_over_memory_time"] = round(figures["lazy_cv_s"] / figures["memory_cv_s"], 3)
    figures["lazy_over_memory_rss"] = round(figures["lazy_peak_rss_mb"] / figures["memory_peak_rss_mb"], 3)
    report(figures, args.json)


if __name__ == "__main__":
    main()
