"""``mmser baseline``: classical models on one feature vector per clip, on the same folds and tables.

``classical.model``: logistic regression, an RBF SVM or a random forest; ``classical.features``: eGeMAPS +
MFCC statistics or the librosa set (:mod:`mmser.features.classical`). Per fold, the model's setting (its
regularisation, or the forest's leaf size) is chosen on the fold's validation speakers only, then the model
is refitted on the training speakers; predictions are stored in the same format as the neural models'.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from mmser.config import to_yaml
from mmser.data.manifest import atomic_write_bytes, write_table
from mmser.data.protocol import load_protocol, make_folds
from mmser.distributed import say
from mmser.evaluation.crossval import prediction_table, run_config
from mmser.features.classical import feature_table
from mmser.labels import EMOTIONS, LABEL_TO_INDEX
from mmser.training.metrics import classification_metrics, unweighted_accuracy

# each model's settings tried on the validation speakers (ties: the first), and the one used without them
SETTINGS = {
    "logreg": (0.01, 0.1, 1.0),  # C, inverse regularisation strength
    "svm_rbf": (0.1, 1.0, 10.0),  # C
    "random_forest": (1, 3, 10),  # min_samples_leaf
}
DEFAULT_SETTING = {"logreg": 0.1, "svm_rbf": 1.0, "random_forest": 1}
NAMES = {"logreg": "logistic regression", "svm_rbf": "RBF SVM", "random_forest": "random forest",
         "egemaps_mfcc": "eGeMAPS + MFCC", "librosa": "librosa MFCC/chroma/contrast/tonnetz"}


def classifier(model: str, setting, seed: int):
    """The ``model`` pipeline at one ``setting`` (features standardised first)."""
    if model == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(C=setting, max_iter=3000, class_weight="balanced"))
    if model == "svm_rbf":
        # probabilities by Platt scaling over 5 internal folds (what SVC(probability=True) did, deprecated there)
        svm = SVC(C=setting, kernel="rbf", gamma="scale", class_weight="balanced", random_state=seed)
        return make_pipeline(StandardScaler(), CalibratedClassifierCV(svm, method="sigmoid", cv=5))
    if model == "random_forest":
        return make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=300, min_samples_leaf=setting,
                                                                      class_weight="balanced", random_state=seed,
                                                                      n_jobs=-1))
    raise ValueError(f"unknown classical model {model!r}")


def describe(cfg: DictConfig) -> str:
    return f"classical {NAMES[cfg.classical.features]}, {NAMES[cfg.classical.model]}"


def run_classical(cfg: DictConfig, out_dir: str | Path, progress: bool = True) -> dict:
    """Every fold of ``cfg``'s protocol with ``cfg.classical``; returns UA over folds."""
    out_dir = Path(out_dir)
    model, seed = cfg.classical.model, int(cfg.train.seed)
    protocol = load_protocol(cfg.data)
    df = protocol.rows
    X = feature_table(df, cfg.features.cache_dir, progress, cfg.classical.features)
    y = df["label"].map(LABEL_TO_INDEX).to_numpy()
    pos = pd.Series(range(len(df)), index=df["utt_id"])
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out_dir / "config.yaml", to_yaml(run_config(cfg, protocol)).encode())
    results = []
    for fold in make_folds(protocol, cfg.split):
        start = time.perf_counter()
        tr, va, te = (pos[list(ids)].to_numpy() for ids in (fold.train, fold.val, fold.test))
        scores = {}
        if len(va):
            scores = {s: unweighted_accuracy(y[va], classifier(model, s, seed).fit(X[tr], y[tr]).predict(X[va]))
                      for s in SETTINGS[model]}
        best = max(scores, key=scores.get) if scores else DEFAULT_SETTING[model]
        clf = classifier(model, best, seed).fit(X[tr], y[tr])
        probs = np.zeros((len(te), len(EMOTIONS)))
        probs[:, clf.classes_] = clf.predict_proba(X[te])
        table = prediction_table(df, fold.test, probs)
        fold_dir = out_dir / fold.name
        fold_dir.mkdir(exist_ok=True)
        write_table(table, fold_dir / "predictions.csv")
        metrics = classification_metrics(table["true"].values, table["pred"].values, list(protocol.classes))
        metrics.update({"fold": fold.name, "test_speakers": list(fold.test_speakers), "model": model,
                        "features": cfg.classical.features, "setting": best,
                        "val_ua_by_setting": {str(k): v for k, v in scores.items()},
                        "protocol": str(cfg.split.protocol), "speaker_independent": not fold.speaker_dependent,
                        "train_seconds": round(time.perf_counter() - start, 2)})
        atomic_write_bytes(fold_dir / "metrics.json", json.dumps(metrics, indent=2).encode())
        results.append(metrics)
        say(f"  {model}/{fold.name}: UA {metrics['UA']:.3f} (setting {best})", flush=True)
    return {"UA_mean": float(np.mean([r["UA"] for r in results])), "folds": len(results)}
