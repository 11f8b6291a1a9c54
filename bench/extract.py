"""Feature extraction benchmark: bare encoder forward vs mmser's extraction, and the cached re-run.

    python bench/extract.py runs/ravdess/manifest.csv --encoder whisper-ct2:base --clips 120 \\
        features.whisper_window=clip --json results/bench/extract_whisper-base-clip.json

Figures go to ``results/bench/extract_<encoder>-<window>.json``.

Prints, measured side by side in one run on the same clips and the same loaded encoder:
- bare encoder throughput (clips/s): ``encoder.encode`` on waveforms already in memory,
- mmser extraction throughput (clips/s): ``mmser.features.extract.extract`` into an empty cache
  (reads and resamples audio, hashes, encodes, writes fp16 shards atomically),
- their ratio (target >= 0.9) and the cached re-run time as a fraction of the first run.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time

import torch

from mmser.audio import load_audio
from mmser.config import load_config
from mmser.data.manifest import read_manifest
from mmser.features.extract import extract, open_encoder

from report import report  # bench/report.py (scripts run as `python bench/<name>.py`)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest")
    parser.add_argument("--encoder", default="whisper-ct2:tiny.en")
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args()
    cfg = load_config([], args.overrides)
    df = read_manifest(args.manifest).head(args.clips).reset_index(drop=True)
    encoder = open_encoder(args.encoder, cfg.features)
    batch = cfg.features.batch_size

    wavs = [load_audio(p) for p in df["path"]]
    order = sorted(range(len(wavs)), key=lambda i: len(wavs[i]))  # same length buckets as extract()
    encoder.encode([wavs[order[0]]])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(order), batch):
        encoder.encode([wavs[j] for j in order[i:i + batch]])
    bare = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as cache_dir:
        cfg.features.cache_dir = cache_dir
        start = time.perf_counter()
        first = extract(df, args.encoder, cfg.features, encoder=encoder, progress=False)
        full = time.perf_counter() - start
        start = time.perf_counter()
        again = extract(df, args.encoder, cfg.features, encoder=encoder, progress=False)
        cached = time.perf_counter() - start
    assert first.computed == len(set(first.keys)) and again.computed == 0

    figures = {
        "encoder": args.encoder, "clips": len(df), "audio_seconds": round(float(df["duration_s"].sum()), 1),
        "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
        "bare_clips_per_s": round(len(df) / bare, 2), "mmser_clips_per_s": round(len(df) / full, 2),
        "throughput_ratio": round(bare / full, 3), "cached_rerun_s": round(cached, 3), "first_run_s": round(full, 2),
        "cached_time_ratio": round(cached / full, 4), "overrides": args.overrides,
    }
    report(figures, args.json)


if __name__ == "__main__":
    main()
