"""Result tables built only from stored per-utterance predictions (``*/predictions.csv``).

``mmser table RESULTS_DIR`` finds every run (a folder whose sub-folders hold ``predictions.csv``),
recomputes its metrics from the predictions, and writes ``results.csv`` and ``results.md``. Next to the test
metrics stands the validation UA, from the folds' ``val_predictions.csv`` (validation speakers drawn from the
training side): the score any choice between runs reads.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from mmser.data.manifest import atomic_write_bytes
from mmser.errors import MmserError
from mmser.training.metrics import bootstrap_ci, classification_metrics


def find_runs(root: str | Path) -> list[Path]:
    """Run folders below ``root``: those with at least one ``<fold>/predictions.csv``. Linked folders are
    followed (a robustness or selection folder links the runs it shares with another instead of copying
    them); the returned paths go through the links, so tables name the run as it is found below ``root``."""
    runs, seen = set(), set()
    for folder, subfolders, files in os.walk(Path(root), followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a link back up the tree, or a second link to the same folder
            subfolders.clear()
            continue
        seen.add(real)
        if "predictions.csv" in files:
            runs.add(Path(folder).parent)
    return sorted(runs)


def run_classes(run: Path) -> list[str] | None:
    cfg_path = run / "config.yaml"
    if cfg_path.is_file():
        classes = OmegaConf.load(cfg_path).get("data", {}).get("classes")
        return list(classes) if classes else None
    return None


SUBGROUP_COLUMNS = ("corpus", "gender")  # prediction columns that get their own table rows when they vary
SPEAKER_DEPENDENT_LABEL = " [SPEAKER-DEPENDENT: random utterances]"


def is_speaker_dependent(run: Path) -> bool:
    """Whether ``run``'s folds put its test speakers in training (``split.protocol: random_utterance``)."""
    cfg_path = run / "config.yaml"
    if cfg_path.is_file():
        split = OmegaConf.load(cfg_path).get("split", {}) or {}
        if split.get("protocol") == "random_utterance":
            return True
    return any(json.loads(p.read_text()).get("speaker_independent") is False for p in run.glob("*/metrics.json"))


def run_row(run: Path, root: Path) -> dict:
    """Metrics of one run from its predictions: per-fold mean ± std, pooled, and a bootstrap 95 % CI of UA."""
    return run_rows(run, root)[0]


def run_rows(run: Path, root: Path) -> list[dict]:
    """The run's row, then one row per corpus and per gender when its predictions carry more than one
    corpus, or genders (``<run> · corpus=X``, ``<run> · gender=F``): the same metrics over those utterances."""
    folds = sorted(p.parent for p in run.glob("*/predictions.csv"))
    classes = run_classes(run)
    preds, val_preds, overlaps = [], [], []
    for fold in folds:
        preds.append(read_predictions(fold / "predictions.csv"))
        if (fold / "val_predictions.csv").is_file():
            val_preds.append(read_predictions(fold / "val_predictions.csv"))
        meta = fold / "metrics.json"
        if meta.is_file():
            value = json.loads(meta.read_text()).get("test_sentences_in_train")
            if value is not None:
                overlaps.append(value)
    name = run.relative_to(root).as_posix() if run != root else run.name
    if is_speaker_dependent(run):
        name += SPEAKER_DEPENDENT_LABEL
    rows = [metrics_row(name, preds, classes, overlaps, val_preds)]
    everything = pd.concat(preds)
    for column in SUBGROUP_COLUMNS:
        if not all(column in p.columns for p in preds):  # folds written before mmser stored it: no partial rows
            continue
        values = sorted(v for v in everything[column].unique() if v != "")
        if (column == "corpus" and len(values) < 2) or not values:
            continue
        for value in values:
            parts = [p[p[column] == value] for p in preds if (p[column] == value).any()]
            val_parts = [p[p[column] == value] for p in val_preds if column in p.columns and (p[column] == value).any()]
            rows.append(metrics_row(f"{name} · {column}={value}", parts, classes, overlaps, val_parts))
    return rows


def read_predictions(path: Path) -> pd.DataFrame:
    """A fold's ``predictions.csv`` or ``val_predictions.csv``, labels and subgroups kept as strings."""
    return pd.read_csv(path, dtype={c: str for c in ("true", "pred", *SUBGROUP_COLUMNS)}, keep_default_na=False)


def metrics_row(name: str, preds: list[pd.DataFrame], classes: list[str] | None, overlaps: list[float],
                val_preds: list[pd.DataFrame] = ()) -> dict:
    """Per-fold mean ± std, pooled UA and its bootstrap 95 % CI of the per-fold prediction tables ``preds``;
    the mean per-fold UA of the validation predictions ``val_preds`` (NaN without any)."""
    per_fold = [classification_metrics(p["true"].values, p["pred"].values, classes) for p in preds]
    allp = pd.concat(preds)
    total = classification_metrics(allp["true"].values, allp["pred"].values, classes)
    lo, hi = bootstrap_ci(allp["true"].values, allp["pred"].values)
    row = {"run": name, "folds": len(preds), "utterances": int(len(allp))}
    row["val_UA_mean"] = float(np.mean([classification_metrics(p["true"].values, p["pred"].values, classes)["UA"]
                                        for p in val_preds])) if len(val_preds) else np.nan
    for key in ("UA", "WA", "macro_F1", "weighted_F1"):
        vals = [m[key] for m in per_fold]
        row[f"{key}_mean"], row[f"{key}_std"] = float(np.mean(vals)), float(np.std(vals))
    row["UA_pooled"], row["UA_ci_low"], row["UA_ci_high"] = total["UA"], lo, hi
    row["test_sentences_in_train"] = float(np.mean(overlaps)) if overlaps else np.nan
    return row


def build_table(root: str | Path) -> pd.DataFrame:
    root = Path(root)
    runs = find_runs(root)
    if not runs:
        raise MmserError(f"{root}: no run folders with <fold>/predictions.csv")
    return pd.DataFrame([row for r in runs for row in run_rows(r, root)])


def to_markdown(table: pd.DataFrame) -> str:
    """Markdown table; WA and UA always named as such (percent, mean ± std over folds); validation UA: the mean
    over folds of the UA on each fold's validation speakers (n/a: no validation predictions stored)."""
    lines = ["| run | folds | validation UA (%) | UA (%) | WA (%) | macro-F1 (%) | pooled UA [95% CI] (%) | "
             "test sentences seen in training |", "|---|---|---|---|---|---|---|---|"]
    for r in table.to_dict("records"):
        overlap = "n/a (no text)" if np.isnan(r["test_sentences_in_train"]) else f"{100 * r['test_sentences_in_train']:.0f} %"
        val = "n/a" if np.isnan(r["val_UA_mean"]) else f"{100 * r['val_UA_mean']:.1f}"
        lines.append(
            f"| {r['run']} | {r['folds']} | {val} | {100 * r['UA_mean']:.1f} ± {100 * r['UA_std']:.1f} | "
            f"{100 * r['WA_mean']:.1f} ± {100 * r['WA_std']:.1f} | {100 * r['macro_F1_mean']:.1f} ± {100 * r['macro_F1_std']:.1f} | "
            f"{100 * r['UA_pooled']:.1f} [{100 * r['UA_ci_low']:.1f}, {100 * r['UA_ci_high']:.1f}] | {overlap} |")
    return "\n".join(lines) + "\n"


def results_markdown(table: pd.DataFrame, root_label: str) -> str:
    """The text of ``results.md``: how it was generated (``mmser table ROOT_LABEL``), then the table."""
    header = (f"Generated by `mmser table {root_label}` from the per-utterance predictions below this folder.\n"
              "UA = unweighted accuracy (mean per-class recall), WA = weighted accuracy (overall accuracy).\n\n")
    return header + to_markdown(table)


def write_tables(root: str | Path, plots: bool = True) -> pd.DataFrame:
    """Rebuild ``results.csv`` and ``results.md`` (and each run's plots) under ``root`` from the stored predictions."""
    root = Path(root)
    table = build_table(root)
    if plots:
        from mmser.evaluation.plots import plot_confusion, plot_training_curves

        for run in find_runs(root):
            plot_confusion(run, run_classes(run))
            plot_training_curves(run)
    atomic_write_bytes(root / "results.csv", table.to_csv(index=False, float_format="%.4f").encode())
    atomic_write_bytes(root / "results.md", results_markdown(table, root.as_posix()).encode())
    return table
