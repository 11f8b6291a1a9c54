"""``mmser baseline``: the classical eGeMAPS + MFCC logistic regression on the same folds and tables.

Per fold, the regularisation strength is chosen on the fold's validation speakers only, then the model is
refitted on the training speakers; predictions are stored in the same format as the neural models'.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mmser.config import to_yaml
from mmser.data.manifest import atomic_write_bytes, write_table
from mmser.data.protocol import load_protocol, make_folds
from mmser.evaluation.crossval import PROB_COLUMNS, run_config
from mmser.features.classical import feature_table
from mmser.labels import EMOTIONS, LABEL_TO_INDEX
from mmser.training.metrics import classification_metrics, unweighted_accuracy

C_GRID = (0.01, 0.1, 1.0)  # inverse regularisation strengths tried on the validation speakers


def logistic_regression(c: float):
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000, class_weight="balanced"))


def run_classical(cfg: DictConfig, out_dir: str | Path, progress: bool = True) -> dict:
    """Every fold of ``cfg``'s protocol with the classical baseline; returns UA over folds."""
    out_dir = Path(out_dir)
    protocol = load_protocol(cfg.data)
    df = protocol.rows
    X = feature_table(df, cfg.features.cache_dir, progress)
    y = df["label"].map(LABEL_TO_INDEX).to_numpy()
    pos = pd.Series(range(len(df)), index=df["utt_id"])
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out_dir / "config.yaml", to_yaml(run_config(cfg, protocol)).encode())
    results = []
    for fold in make_folds(protocol, cfg.split):
        start = time.perf_counter()
        tr, va, te = (pos[list(ids)].to_numpy() for ids in (fold.train, fold.val, fold.test))
        if len(va):
            scores = {c: unweighted_accuracy(y[va], logistic_regression(c).fit(X[tr], y[tr]).predict(X[va]))
                      for c in C_GRID}
            best_c = max(scores, key=scores.get)
        else:
            best_c, scores = 0.1, {}
        clf = logistic_regression(best_c).fit(X[tr], y[tr])
        probs = np.zeros((len(te), len(EMOTIONS)))
        probs[:, clf.classes_] = clf.predict_proba(X[te])
        table = pd.DataFrame({"utt_id": df["utt_id"].values[te], "speaker": df["speaker"].values[te],
                              "true": df["label"].values[te], "pred": [EMOTIONS[i] for i in probs.argmax(1)]})
        table[PROB_COLUMNS] = np.round(probs, 6)
        fold_dir = out_dir / fold.name
        fold_dir.mkdir(exist_ok=True)
        write_table(table, fold_dir / "predictions.csv")
        metrics = classification_metrics(table["true"].values, table["pred"].values, list(protocol.classes))
        metrics.update({"fold": fold.name, "test_speakers": list(fold.test_speakers), "C": best_c,
                        "val_ua_by_C": {str(k): v for k, v in scores.items()},
                        "train_seconds": round(time.perf_counter() - start, 2)})
        atomic_write_bytes(fold_dir / "metrics.json", json.dumps(metrics, indent=2).encode())
        results.append(metrics)
        print(f"  classical/{fold.name}: UA {metrics['UA']:.3f} (C={best_c})", flush=True)
    return {"UA_mean": float(np.mean([r["UA"] for r in results])), "folds": len(results)}
