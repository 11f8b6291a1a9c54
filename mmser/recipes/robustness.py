"""``mmser robustness``: cross-validate each config (or resume it), then predict every fold's test clips with
noise at each SNR (or, for enrolment models, with K enrolment clips each); one UA-per-SNR (per-K) table and plot
comparing the configs' models."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from mmser.audio import require_files
from mmser.data.manifest import atomic_write_bytes
from mmser.data.protocol import load_protocol
from mmser.errors import MmserError
from mmser.evaluation.robustness import (condition_names, condition_stored, enrolment_fold, enrolment_stem,
                                         enrolment_table, lost_fold_checkpoints, noisy_fold, robustness_markdown,
                                         robustness_stem, robustness_table)
from mmser.evaluation.selection import group_run
from mmser.recipes.cv import check_validation_groups, cross_validate_groups


def check_robustness(configs: dict[str, DictConfig], enrolment: bool, out: Path, conditions: list[str],
                     with_runs: list[Path] = (), val_groups: int = 1) -> dict[str, pd.DataFrame]:
    """Refuse, before any work, runs whose test clips robustness cannot find (cross-corpus runs, audio files
    gone), (``enrolment``: enrolment sizes)
    runs that standardise no clip with enrolment clips, ``val_groups`` the folds cannot hold, runs under ``out``
    with folds cross-validated earlier whose checkpoints are gone while some of ``conditions`` still need them,
    and ``with_runs`` (tabled from what they store) that lack a fold of one of ``conditions`` in one of the
    groups. Returns each config's protocol rows (the clips it predicts), read once."""
    for run in with_runs:
        folds = sorted(p.parent.name for p in run.glob("*/predictions.csv"))
        if not folds:
            raise MmserError(f"--with {run}: no <fold>/predictions.csv (give a run folder, e.g. of mmser average)")
        absent = [str(group_run(run, group) / name / fold) for group in range(val_groups) for name in conditions
                  for fold in folds if not condition_stored(group_run(run, group), name, fold)]
        if absent:
            raise MmserError(f"--with {run}: not stored: {', '.join(absent[:4])}{' ...' if len(absent) > 4 else ''} "
                             "(nothing is predicted for a --with run: predict those conditions for its parts first, "
                             "then mmser average them again)")
    rows: dict[str, pd.DataFrame] = {}
    for name, cfg in configs.items():
        if cfg.data.test_manifest is not None:
            raise MmserError(f"{name}: data.test_manifest (cross-corpus) is not supported by robustness")
        if enrolment and cfg.features.speaker_norm.mode != "enrol":
            raise MmserError(f"{name}: features.speaker_norm.mode is {cfg.features.speaker_norm.mode!r}, not enrol: "
                             "--enrol-clips varies the enrolment clips of models standardised with them")
        protocol = load_protocol(cfg.data)
        check_validation_groups(cfg, val_groups, protocol)
        rows[name] = protocol.rows
        require_files(rows[name]["path"], f"{name}: predicting its clips again")
    lost = [path for name in configs for group in range(val_groups)
            for path in lost_fold_checkpoints(group_run(out / name, group), conditions)]
    if lost:
        listed = ", ".join(str(p) for p in lost)
        raise MmserError(f"{listed}: checkpoint not found, and robustness predicts with it: those folds were "
                         "cross-validated earlier (their predictions are stored) and cross-validation keeps them as "
                         "done; move their fold folders aside to cross-validate them again, or give --out a run "
                         "that kept its checkpoints")
    return rows


def run_robustness(configs: dict[str, DictConfig], out: str | Path, snrs: list[float], kind: str,
                   device: str = "cpu", command: str = "mmser robustness", progress: bool = True,
                   split: str = "test", enrol_counts: list[int] | None = None,
                   with_runs: list[Path] = (), val_groups: int = 1) -> pd.DataFrame:
    """``configs``: run name -> config. Writes ``out/<name>/`` (the CV run and its noisy predictions) and
    ``out/robustness.{md,csv,png}`` (``split="val"``: the validation clips', ``out/robustness_val.*``); returns
    the table. ``enrol_counts``: instead of noise, clean clips standardised with each K of enrolment clips
    (``out/<name>/[val_]enrol_<K>clips/``, ``out/enrolment[_val].{md,csv,png}``). ``with_runs``: runs (averaged
    ones) tabled after the configs' from their stored predictions alone. ``val_groups`` (``split="val"`` only):
    each config is cross-validated once per validation group (``out/<name>/val_group<g>/`` beside group 0, as
    ``mmser select --val-groups`` trains them), each group's validation clips predicted under each condition, and
    the table holds the mean over the groups."""
    out = Path(out)
    if val_groups > 1 and split != "val":
        raise MmserError(f"--val-groups {val_groups}: validation groups are for --split val (every group has the "
                         "same test speakers)")
    conditions = condition_names(split, kind, snrs, enrol_counts)
    rows = check_robustness(configs, enrol_counts is not None, out, conditions, with_runs, val_groups)
    runs = []
    for name, cfg in configs.items():
        for run in cross_validate_groups(cfg, out / name, val_groups, progress):
            for fold in sorted(p.parent.name for p in run.glob("*/predictions.csv")):
                if enrol_counts is None:
                    noisy_fold(run, fold, rows[name], kind, snrs, device, progress, split)
                else:
                    enrolment_fold(run, fold, rows[name], enrol_counts, device, progress, split)
        runs.append(out / name)
    runs += with_runs
    from mmser.evaluation.plots import plot_enrolment, plot_robustness

    if enrol_counts is None:
        table, stem = robustness_table(runs, kind, snrs, split, val_groups), out / robustness_stem(split, kind)
        plot_robustness(table, stem.with_suffix(".png"), kind)
    else:
        table, stem = enrolment_table(runs, enrol_counts, split, val_groups), out / enrolment_stem(split)
        plot_enrolment(table, stem.with_suffix(".png"))
    atomic_write_bytes(stem.with_suffix(".csv"), table.to_csv(index=False, float_format="%.2f").encode())
    markdown = robustness_markdown(table, kind, command, split, enrolment=enrol_counts is not None,
                                   val_groups=val_groups)
    atomic_write_bytes(stem.with_suffix(".md"), markdown.encode())
    return table
