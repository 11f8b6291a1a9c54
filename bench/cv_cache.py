"""Cross-validation from cached features vs re-encoding every fold, measured side by side in one run.

    python bench/cv_cache.py configs/experiment/ravdess_audio_base_30s.yaml data.manifest=runs/ravdess/manifest.csv \\
        --sample 60 --json results/bench/cv_cache_base30s.json

Figures go to ``results/bench/cv_cache_<config, and overrides if any>.json``; the JSON records the config and
overrides it was run with.

1. Encoding (measured): the config's encoder(s) encode ``--sample`` clips drawn at random from the
   protocol's manifest into an empty temporary cache: real forward passes on an already loaded encoder
   (audio read + resample + encode + fp16 shard write; model loading not counted). ``--sample 0``
   encodes every clip. Re-encoding every fold encodes each fold's training, validation and test clips:
   every clip once per fold, so ``folds x clips x seconds per clip``.
2. Cross-validation from the cache (measured): the full protocol of the config (every fold: cache read,
   training with model selection on validation speakers, test prediction) into a temporary folder.

Prints both times and the ratio (re-encoding CV) / (cached CV), where re-encoding CV = encoding every
fold + the same training. The cache must already hold every clip (``mmser extract`` first).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from mmser.config import load_config
from mmser.features.extract import cache_for, extract, item_keys, open_encoder
from mmser.errors import MmserError
from mmser.data.protocol import load_protocol, make_folds
from mmser.evaluation.crossval import run_cv
from mmser.features.store import store_for

from report import report  # bench/report.py (scripts run as `python bench/<name>.py`)


def encoder_specs(cfg) -> list[tuple[str, str]]:
    """(encoder spec, text source) of every encoder the config's model reads."""
    kind = cfg.model.kind
    audio = [(spec, "gold") for spec in cfg.features.audio_encoders] if kind != "text_only" else []
    text = [(cfg.features.text_encoder, cfg.data.text_source)] if kind != "audio_only" else []
    return audio + text


def seconds_per_clip(df, spec: str, encoder, text_source: str, features_cfg, sample: int,
                     seed: int) -> tuple[float, int]:
    """Measured encoding time per clip of the loaded ``encoder`` (``spec``) on ``sample`` random rows
    (0 = all), into an empty cache."""
    rows = df if sample <= 0 or sample >= len(df) else df.sample(n=sample, random_state=seed)
    rows = rows.reset_index(drop=True)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = features_cfg.copy()
        cfg.cache_dir = tmp
        extract(rows.head(1), spec, cfg, text_source=text_source, encoder=encoder, progress=False)  # warm-up
        cfg.cache_dir = str(Path(tmp) / "timed")
        start = time.perf_counter()
        result = extract(rows, spec, cfg, text_source=text_source, encoder=encoder, progress=True)
        elapsed = time.perf_counter() - start
    return elapsed / max(result.computed, 1), result.computed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("--sample", type=int, default=60, help="clips encoded to time the encoder (0 = every clip)")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args()
    cfg = load_config([args.config], args.overrides)
    protocol = load_protocol(cfg.data)
    df = protocol.rows
    folds = make_folds(protocol, cfg.split)
    specs = encoder_specs(cfg)

    encoders = {spec: open_encoder(spec, cfg.features) for spec, _ in specs}
    for spec, source in specs:  # the cached side must not encode anything
        missing = cache_for(encoders[spec], cfg.features, spec).missing(item_keys(df, spec, source))
        if missing:
            raise MmserError(f"{spec}: {len(missing)} of {len(df)} clips are not cached; run `mmser extract` first")

    per_clip = {}
    for spec, source in specs:
        per_clip[spec], timed = seconds_per_clip(df, spec, encoders[spec], source, cfg.features, args.sample,
                                                 int(cfg.split.seed))
        print(f"{spec}: {per_clip[spec]:.3f} s per clip (timed on {timed} clips)", flush=True)
    encode_one_pass = sum(per_clip.values()) * len(df)

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        store = store_for(df, cfg, [cfg.model.kind], [cfg.data.text_source], progress=False)
        load_s = time.perf_counter() - start
        summary = run_cv(cfg, protocol, store, out)
        cached_cv = time.perf_counter() - start
        train_s = sum(json.loads(p.read_text())["train_seconds"] for p in Path(out).glob("*/metrics.json"))
    assert store.encode_seconds == 0.0, "the cached side encoded something"

    reencode_cv = len(folds) * encode_one_pass + train_s
    figures = {
        "config": args.config, "overrides": args.overrides, "clips": len(df), "folds": len(folds),
        "encoders": [s for s, _ in specs], "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "encode_s_per_clip": {k: round(v, 4) for k, v in per_clip.items()},
        "encode_sample_clips": args.sample if args.sample > 0 else len(df),
        "encode_one_pass_s": round(encode_one_pass, 1),
        "reencode_every_fold_s": round(len(folds) * encode_one_pass, 2),
        "cache_load_s": round(load_s, 2), "train_and_predict_s": round(train_s, 2),
        "cached_cv_s": round(cached_cv, 2), "reencode_cv_s": round(reencode_cv, 2),
        "speedup": round(reencode_cv / cached_cv, 2), "cv_UA_mean": round(summary["UA_mean"], 4),
    }
    report(figures, args.json)


if __name__ == "__main__":
    main()
