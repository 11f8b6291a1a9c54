"""Plots (matplotlib, no display): confusion matrix per run and training curves, from stored results."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import confusion_matrix  # noqa: E402

from mmser.labels import EMOTIONS  # noqa: E402


def plot_confusion(run: Path, classes: list[str] | None = None) -> Path:
    """Row-normalised confusion matrix of a run's pooled test predictions -> ``run/confusion.png``."""
    pred = pd.concat(pd.read_csv(p, dtype={"true": str, "pred": str}) for p in sorted(run.glob("*/predictions.csv")))
    labels = classes or [e for e in EMOTIONS if e in set(pred["true"]) | set(pred["pred"])]
    cm = confusion_matrix(pred["true"], pred["pred"], labels=labels).astype(float)
    cm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1 + 0.7 * len(labels), 0.8 + 0.7 * len(labels)))
    ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{cm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if cm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{run.name}: recall per class (rows)", fontsize=9)
    fig.tight_layout()
    out = run / "confusion.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_training_curves(run: Path) -> Path | None:
    """Training loss and validation UA per epoch of every fold's members -> ``run/training_curves.png`` (None:
    the run writes no metrics with histories)."""
    histories = []
    for meta in sorted(run.glob("*/metrics.json")):
        for j, member in enumerate(json.loads(meta.read_text()).get("members", [])):
            if member.get("history"):
                histories.append((f"{meta.parent.name}/m{j}", member["history"]))
    if not histories:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for name, hist in histories:
        epochs = [h["epoch"] for h in hist]
        axes[0].plot(epochs, [h["train_loss"] for h in hist], lw=0.8, label=name)
        val_ua = [np.nan if h["val_ua"] is None else h["val_ua"] for h in hist]  # None: trained without validation
        axes[1].plot(epochs, val_ua, lw=0.8)
    axes[0].set(xlabel="epoch", ylabel="training loss")
    axes[1].set(xlabel="epoch", ylabel="validation UA (training speakers)")
    if len(histories) <= 12:
        axes[0].legend(fontsize=6)
    fig.suptitle(run.name, fontsize=9)
    fig.tight_layout()
    out = run / "training_curves.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_enrolment(table: pd.DataFrame, out: Path) -> Path:
    """UA against the number of enrolment clips per clip (log axis), one line per run, each run's
    cross-validated UA (its own enrolment clips) as a dashed level -> ``out``."""
    columns = sorted((c for c in table.columns if c.endswith(" clips")), key=lambda c: int(c.split()[0]))
    counts = [int(c.split()[0]) for c in columns]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for r in table.to_dict("records"):
        line, = ax.plot(counts, [r[c] for c in columns], marker="o", label=r["run"])
        ax.axhline(r["clean"], color=line.get_color(), lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xticks(counts, [str(k) for k in counts])
    ax.set(xlabel="enrolment clips per clip (dashed: as cross-validated)", ylabel="UA (%) over folds")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


def plot_curve(table: pd.DataFrame, out: Path, title: str) -> Path:
    """UA (mean ± std over folds) against training examples per class, log x axis -> ``out``."""
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.errorbar(table["per_class"], 100 * table["UA_mean"], yerr=100 * table["UA_std"], marker="o", capsize=3)
    ax.set_xscale("log")
    ax.set(xlabel="training examples per class", ylabel="UA (%) over folds", title=title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def snr_of(column: str) -> float:
    """The SNR (dB) of a robustness table column such as ``"10 dB"``."""
    return float(column.split()[0])


def plot_robustness(table: pd.DataFrame, out: Path, kind: str) -> Path:
    """UA against SNR (clean at the right), one line per run -> ``out``."""
    columns = sorted((c for c in table.columns if c.endswith(" dB")), key=snr_of)  # lowest SNR first
    snrs = [snr_of(c) for c in columns]
    clean_x = max(snrs) + 10
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for r in table.to_dict("records"):
        ax.plot(snrs + [clean_x], [r[c] for c in columns] + [r["clean"]], marker="o", label=r["run"])
    ax.set_xticks(snrs + [clean_x], [f"{s:g}" for s in snrs] + ["clean"])
    noise = "white noise in a telephone band (4 kHz)" if kind == "telephone" else f"{kind} noise"
    ax.set(xlabel=f"SNR of added {noise} (dB)", ylabel="UA (%) over folds")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18))  # below the axes: no line hidden
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out
