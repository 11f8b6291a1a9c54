"""Subcommands beyond data preparation (demo, transcribe, extract, train, cv, ablate, table, predict)."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_demo(args: argparse.Namespace) -> None:
    """The embedded default: SYNTHETIC corpus -> manifest -> folds (later: transcripts, features, ablation)."""
    from mmser.cli import main as cli

    out = Path(args.out)
    manifest = out / "manifest.csv"
    corpus_root = out / "corpus" / "IEMOCAP_full_release"
    steps: list[list[str]] = []
    if not (corpus_root / "SYNTHETIC").exists():
        steps.append(["synth", str(out / "corpus"), "--seed", str(args.seed)])
    steps.append(["prepare", "iemocap", str(out / "corpus"), "--out", str(manifest)])
    steps.append(["folds", str(manifest), "--config", "configs/data/synthetic.yaml"])
    for step in steps:
        print(f"\n$ mmser {' '.join(step)}", flush=True)
        if cli(step) != 0:
            raise SystemExit(2)


def register(add) -> None:
    """Add this module's subcommands to the CLI parser (``add(name, func, help)``)."""
    p = add("demo", cmd_demo, "the main job on the embedded SYNTHETIC default (generate, prepare, evaluate)")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--seed", type=int, default=0)
