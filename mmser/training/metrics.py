"""WA (accuracy), UA (mean per-class recall), F1, confusion; fold aggregates and bootstrap intervals."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from mmser.labels import EMOTIONS


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str] | None = None) -> dict:
    """Metrics over the ``classes`` present in the protocol (names from :data:`EMOTIONS`)."""
    classes = classes or sorted(set(y_true) | set(y_pred), key=EMOTIONS.index)
    labels = [c for c in classes]
    p, r, f, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = [c for c in labels if (np.asarray(y_true) == c).any()]
    return {
        "WA": float(accuracy_score(y_true, y_pred)),
        "UA": float(np.mean([r[labels.index(c)] for c in present])),
        "macro_F1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "weighted_F1": float(f1_score(y_true, y_pred, labels=present, average="weighted", zero_division=0)),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
                      for i, c in enumerate(labels)},
        "confusion": {"labels": labels, "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist()},
        "n": int(len(y_true)),
    }


def unweighted_accuracy(y_true, y_pred) -> float:
    """UA: mean recall over the classes present in ``y_true`` (sklearn's balanced accuracy, without its warning
    when ``y_pred`` holds a class ``y_true`` lacks, as one speaker's predictions often do)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]))


def resampled_ua(y_true: np.ndarray, preds: list[np.ndarray], idx: np.ndarray) -> list[np.ndarray]:
    """UA of each prediction vector in ``preds`` on each utterance resample ``idx`` ``(B, N)``, all at once from
    per-class counts: mean recall over the classes present in the resample (as :func:`unweighted_accuracy`).
    Returns one ``(B,)`` array per prediction vector."""
    n_boot = idx.shape[0]
    classes, y_index = np.unique(y_true, return_inverse=True)
    cell = (np.arange(n_boot)[:, None] * len(classes) + y_index[idx]).ravel()  # (B*N,) resample x true class
    size = n_boot * len(classes)
    support = np.bincount(cell, minlength=size).reshape(n_boot, -1)  # (B, C)
    present = support > 0
    out = []
    for pred in preds:
        hits = np.bincount(cell, weights=(pred == y_true)[idx].ravel(), minlength=size).reshape(n_boot, -1)
        out.append((hits / np.maximum(support, 1)).sum(axis=1) / present.sum(axis=1))
    return out


BOOTSTRAP_INDICES = 20_000_000  # utterance indices drawn per pass of bootstrap_ci (int64: about 160 MB)


def bootstrap_ci(y_true: np.ndarray, y_pred: np.ndarray, n_boot: int = 1000, seed: int = 0,
                 alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap interval of UA over utterances (resamples drawn one at a time, in order, from
    ``seed``)."""
    rng = np.random.default_rng(seed)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    n = len(y_true)
    per_pass = max(1, BOOTSTRAP_INDICES // max(n, 1))  # resamples at a time, however large N is
    stats = []
    for start in range(0, n_boot, per_pass):  # the same draws, in the same order, as all at once
        idx = np.stack([rng.integers(0, n, n) for _ in range(min(per_pass, n_boot - start))])  # (b, N)
        stats.append(resampled_ua(y_true, [y_pred], idx)[0])
    stats = np.concatenate(stats)
    return float(np.quantile(stats, alpha / 2)), float(np.quantile(stats, 1 - alpha / 2))


def paired_bootstrap_p(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, n_boot: int = 1000,
                       seed: int = 0) -> float:
    """One-sided paired bootstrap p-value for "``pred_b`` has a higher UA than ``pred_a``": the fraction of
    utterance resamples (the same resample for both) in which ``UA(b) - UA(a) <= 0``."""
    rng = np.random.default_rng(seed)
    y_true, pred_a, pred_b = np.asarray(y_true), np.asarray(pred_a), np.asarray(pred_b)
    idx = rng.integers(0, len(y_true), (n_boot, len(y_true)))  # (B, N) resampled utterances
    ua_a, ua_b = resampled_ua(y_true, [pred_a, pred_b], idx)
    return float(np.mean(ua_b - ua_a <= 0))
