"""``mmser robustness``: cross-validate each config (or resume it), then predict every fold's test clips with
noise at each SNR; one UA-per-SNR table and plot comparing the configs' models."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from mmser.data.manifest import atomic_write_bytes
from mmser.data.protocol import load_protocol
from mmser.distributed import say
from mmser.errors import MmserError
from mmser.evaluation.robustness import noisy_fold, robustness_markdown, robustness_stem, robustness_table
from mmser.recipes.cv import cross_validate


def check_robustness(configs: dict[str, DictConfig]) -> None:
    """Refuse, before any work, runs whose test clips robustness cannot find."""
    for name, cfg in configs.items():
        if cfg.data.test_manifest is not None:
            raise MmserError(f"{name}: data.test_manifest (cross-corpus) is not supported by robustness")


def run_robustness(configs: dict[str, DictConfig], out: str | Path, snrs: list[float], kind: str,
                   device: str = "cpu", command: str = "mmser robustness", progress: bool = True,
                   split: str = "test") -> pd.DataFrame:
    """``configs``: run name -> config. Writes ``out/<name>/`` (the CV run and its noisy predictions) and
    ``out/robustness.{md,csv,png}`` (``split="val"``: the validation clips', ``out/robustness_val.*``); returns
    the table."""
    check_robustness(configs)
    out = Path(out)
    runs = []
    for name, cfg in configs.items():
        run = out / name
        say(f"\n[{name}] cross-validation (folds done earlier are kept)", flush=True)
        cross_validate(cfg, run, progress)
        rows = load_protocol(cfg.data).rows
        folds = sorted(p.parent.name for p in run.glob("*/predictions.csv"))
        for fold in folds:
            noisy_fold(run, fold, rows, kind, snrs, device, progress, split)
        runs.append(run)
    table = robustness_table(runs, kind, snrs, split)
    stem = out / robustness_stem(split)
    atomic_write_bytes(stem.with_suffix(".csv"), table.to_csv(index=False, float_format="%.2f").encode())
    atomic_write_bytes(stem.with_suffix(".md"), robustness_markdown(table, kind, command, split).encode())
    from mmser.evaluation.plots import plot_robustness

    plot_robustness(table, stem.with_suffix(".png"), kind)
    return table
