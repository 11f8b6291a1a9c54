"""``mmser demo``: the main job on the embedded default, end to end.

SYNTHETIC espeak-ng corpus (IEMOCAP layout) -> manifest -> speaker-independent folds -> Whisper tiny.en
transcripts (WER printed) -> ablation (audio / text / concat / cross-attention x gold and Whisper
transcripts, leave-one-session-out) -> the table. Each step is a library or recipe call; finished steps
are kept (the corpus, the manifest, transcripts and features are reused, finished folds skipped).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from data_prep import prepare_corpus
from mmser.config import CONFIG_DIR, load_config
from mmser.data.manifest import read_manifest
from mmser.data.splits import build_folds, describe_folds
from mmser.features.transcribe import describe_wer, transcribe_manifest
from mmser.recipes.ablate import run_ablation
from mmser.synth import synthesize

EXPERIMENT = CONFIG_DIR / "experiment" / "synthetic_ablation.yaml"
DEMO_ASR = "faster-whisper:tiny.en"


def step(text: str) -> None:
    print(f"\n$ {text}", flush=True)


def run_demo(out: str | Path, seed: int = 0, overrides: list[str] | None = None) -> pd.DataFrame:
    """The whole demo into ``out``; returns the ablation table (also printed by the CLI)."""
    out = Path(out)
    manifest = out / "manifest.csv"
    # the whole config first: a bad override stops here, before anything is generated
    cfg = load_config([EXPERIMENT], [f"data.manifest={manifest}", f"features.cache_dir={out / 'cache'}",
                                     *(overrides or [])])
    if not (out / "corpus" / "IEMOCAP_full_release" / "SYNTHETIC").exists():
        step(f"mmser synth {out / 'corpus'} --seed {seed}")
        root = synthesize(out / "corpus", seed=seed)
        print(f"wrote SYNTHETIC IEMOCAP-layout corpus to {root}")
    if not manifest.exists():
        step(f"mmser prepare iemocap {out / 'corpus'} --out {manifest}")
        df, summary = prepare_corpus("iemocap", out / "corpus", manifest, cfg.prepare)
        print(summary)
        print(f"wrote {manifest} ({len(df)} rows)")
    step(f"mmser folds {manifest} --config {EXPERIMENT}")
    df = read_manifest(manifest)
    s = cfg.split
    folds = build_folds(df, s.protocol, s.speakers_per_fold, s.val_speakers, s.seed, s.shuffle, s.folds_file, s.utterance_folds)
    print(f"{len(folds)} {s.protocol} folds, speaker-disjoint (checked):")
    print(describe_folds(df, folds))
    step(f"mmser transcribe {manifest} --asr {DEMO_ASR}")
    report = transcribe_manifest(manifest, DEMO_ASR, cfg.asr)
    print(describe_wer(manifest, DEMO_ASR, report))
    step(f"mmser ablate {EXPERIMENT} data.manifest={manifest} --out {out / 'ablation'}")
    return run_ablation(cfg, out / "ablation")
