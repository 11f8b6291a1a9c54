"""Scale: extraction and cross-validation from the cache on corpora 1x, 4x and 16x the demo's size, measured in
one run on one machine.

    python bench/scale.py --sizes 1 4 16 --work /tmp/scale --json results/bench/scale.json

For each size N, the SYNTHETIC espeak-ng corpus with N x 40 utterances per speaker (10 speakers; every
clip spoken with its own prosody jitter, so no two clips are byte-identical and the content-keyed cache
cannot dedupe them) is prepared, then two stages run, each in a fresh process whose peak RSS is read
from the kernel (``VmHWM``):

1. extraction: ``mmser extract`` with Whisper tiny.en (every layer, clip window) into an empty cache;
2. cross-validation from the cache: ``mmser cv`` of a light audio-only model (leave-one-session-out, fixed
   epochs, ``features.store`` left at ``auto``: small corpora are held in memory, large ones read lazily).

Printed and written: clips, unique clips, seconds per clip and peak RSS of each stage at each size, and the
ratios of the largest size to the smallest (targets: training RSS <= 1.5x, time per clip <= 1.25x).
Figures go to ``results/bench/scale.json``.
"""

from __future__ import annotations

import argparse
import platform
import shutil
from pathlib import Path

import pandas as pd
import torch

from report import measured, report  # bench/report.py (scripts run as `python bench/<name>.py`)

DEMO_PER_SPEAKER = 40  # utterances per speaker of the demo corpus (10 speakers)
CV_CONFIG = """data:
  name: scale
  classes: [neutral, happy, sad, angry]
split:
  protocol: leave_one_session_out
  val_speakers: 0
features:
  audio_encoders: ["whisper-ct2:tiny.en"]
  whisper_window: clip
  frame_stride: 2
model:
  kind: audio_only
  hidden_dim: 64
train:
  max_epochs: 2
trainer:
  accelerator: cpu
  enable_progress_bar: false
"""


def corpus(work: Path, size: int) -> Path:
    """The prepared manifest of the size-``size`` corpus (made once)."""
    from data_prep import prepare_corpus
    from mmser.config import load_config
    from mmser.synth import synthesize

    folder = work / f"x{size}"
    manifest = folder / "manifest.csv"
    if not manifest.exists():
        synthesize(folder / "corpus", seed=size, per_speaker=DEMO_PER_SPEAKER * size)
        prepare_corpus("iemocap", folder / "corpus", manifest, load_config([], []).prepare, progress=False)
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16], help="corpus sizes, x the demo's")
    parser.add_argument("--work", default="/tmp/mmser-scale", help="folder for the corpora, caches and runs")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    (work / "cv.yaml").write_text(CV_CONFIG)
    rows = []
    for size in sorted(args.sizes):
        manifest = corpus(work, size)
        df = pd.read_csv(manifest)
        cache = work / f"x{size}" / "cache"
        shutil.rmtree(cache, ignore_errors=True)  # extraction is timed into an empty cache
        shutil.rmtree(work / f"x{size}" / "cv", ignore_errors=True)
        extract_s, extract_rss, _ = measured(["extract", str(manifest), "--encoder", "whisper-ct2:tiny.en",
                                              "features.whisper_window=clip", f"features.cache_dir={cache}"])
        cv_s, cv_rss, done = measured(["cv", str(work / "cv.yaml"), f"data.manifest={manifest}",
                                       f"features.cache_dir={cache}", "--out", str(work / f"x{size}" / "cv")])
        out = done.stdout
        rows.append({"size": size, "clips": len(df), "unique_clips": int(df["audio_sha256"].nunique()),
                     "audio_hours": round(float(df["duration_s"].sum()) / 3600, 2),
                     "extract_s_per_clip": round(extract_s / len(df), 4), "extract_peak_rss_mb": extract_rss,
                     "cv_s_per_clip": round(cv_s / len(df), 4), "cv_peak_rss_mb": cv_rss,
                     "cv_summary": out.strip().splitlines()[-2] if out.strip() else ""})
        print(rows[-1], flush=True)
    small, large = rows[0], rows[-1]
    figures = {
        "sizes": rows, "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
        "largest_over_smallest": large["size"] / small["size"],
        "cv_rss_ratio": round(large["cv_peak_rss_mb"] / small["cv_peak_rss_mb"], 3),
        "extract_rss_ratio": round(large["extract_peak_rss_mb"] / small["extract_peak_rss_mb"], 3),
        "extract_time_per_clip_ratio": round(large["extract_s_per_clip"] / small["extract_s_per_clip"], 3),
        "cv_time_per_clip_ratio": round(large["cv_s_per_clip"] / small["cv_s_per_clip"], 3),
    }
    report(figures, args.json)


if __name__ == "__main__":
    main()
