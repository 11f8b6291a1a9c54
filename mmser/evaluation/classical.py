"""Classical baseline on the same folds: eGeMAPS functionals (openSMILE) + MFCC statistics, logistic regression.

Features are computed once per clip and cached (keyed by the audio's content hash). Per fold, the
regularisation strength is chosen on the fold's validation speakers only, then the model is refitted
on the training speakers; predictions are stored in the same format as the neural models'.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torchaudio
from omegaconf import DictConfig
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from mmser.audio import SAMPLE_RATE, load_audio
from mmser.config import to_yaml
from mmser.data.manifest import atomic_write_bytes, write_table
from mmser.evaluation.crossval import PROB_COLUMNS, load_protocol_manifest, make_folds
from mmser.labels import EMOTIONS, LABEL_TO_INDEX
from mmser.training.metrics import classification_metrics, unweighted_accuracy

N_MFCC = 40
C_GRID = (0.01, 0.1, 1.0)


def clip_features(path: str, smile, mfcc: torchaudio.transforms.MFCC) -> np.ndarray:
    """88 eGeMAPS functionals + mean and std of 40 MFCCs = 168 values."""
    wav = load_audio(path, min_duration_s=0.0)
    egemaps = smile.process_signal(wav, SAMPLE_RATE).to_numpy().reshape(-1)  # (88,)
    coeffs = mfcc(torch.from_numpy(wav)).numpy()  # (40, frames)
    return np.concatenate([egemaps, coeffs.mean(1), coeffs.std(1)]).astype(np.float32)


def feature_table(df: pd.DataFrame, cache_dir: str | Path, progress: bool = True) -> np.ndarray:
    """Features ``(N, 168)`` of each manifest row, computing only clips not in the cache file."""
    import opensmile

    path = Path(cache_dir) / "classical-egemaps-mfcc40.parquet"
    cached = pd.read_parquet(path) if path.is_file() else pd.DataFrame()
    known = set(cached.index)
    keys = df["audio_sha256"].tolist()
    todo = [i for i, k in enumerate(keys) if k not in known]
    if todo:
        smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals)
        mfcc = torchaudio.transforms.MFCC(SAMPLE_RATE, n_mfcc=N_MFCC, melkwargs={"n_fft": 400, "hop_length": 160, "n_mels": 64})
        rows = {keys[i]: clip_features(df["path"].iloc[i], smile, mfcc)
                for i in tqdm(todo, desc="eGeMAPS + MFCC", unit="clip", disable=not progress)}
        new = pd.DataFrame.from_dict(rows, orient="index")
        new.columns = [str(c) for c in new.columns]
        cached = pd.concat([cached, new])
        buf = io.BytesIO()
        cached.to_parquet(buf)
        atomic_write_bytes(path, buf.getvalue())
    return cached.loc[keys].to_numpy(dtype=np.float64)


def run_classical(cfg: DictConfig, out_dir: str | Path, progress: bool = True) -> dict:
    out_dir = Path(out_dir)
    df = load_protocol_manifest(cfg)
    X = feature_table(df, cfg.features.cache_dir, progress)
    y = df["label"].map(LABEL_TO_INDEX).to_numpy()
    pos = pd.Series(range(len(df)), index=df["utt_id"])
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out_dir / "config.yaml", to_yaml(cfg).encode())
    results = []
    for fold in make_folds(df, cfg):
        start = time.perf_counter()
        tr, va, te = (pos[list(ids)].to_numpy() for ids in (fold.train, fold.val, fold.test))

        def model(c: float):
            return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000, class_weight="balanced"))

        if len(va):
            scores = {c: unweighted_accuracy(y[va], model(c).fit(X[tr], y[tr]).predict(X[va])) for c in C_GRID}
            best_c = max(scores, key=scores.get)
        else:
            best_c, scores = 0.1, {}
        clf = model(best_c).fit(X[tr], y[tr])
        probs = np.zeros((len(te), len(EMOTIONS)))
        probs[:, clf.classes_] = clf.predict_proba(X[te])
        table = pd.DataFrame({"utt_id": df["utt_id"].values[te], "speaker": df["speaker"].values[te],
                              "true": df["label"].values[te], "pred": [EMOTIONS[i] for i in probs.argmax(1)]})
        table[PROB_COLUMNS] = np.round(probs, 6)
        fold_dir = out_dir / fold.name
        fold_dir.mkdir(exist_ok=True)
        write_table(table, fold_dir / "predictions.csv")
        classes = list(cfg.data.classes) if cfg.data.classes else None
        metrics = classification_metrics(table["true"].values, table["pred"].values, classes)
        metrics.update({"fold": fold.name, "test_speakers": list(fold.test_speakers), "C": best_c,
                        "val_ua_by_C": {str(k): v for k, v in scores.items()},
                        "train_seconds": round(time.perf_counter() - start, 2)})
        atomic_write_bytes(fold_dir / "metrics.json", json.dumps(metrics, indent=2).encode())
        results.append(metrics)
        print(f"  classical/{fold.name}: UA {metrics['UA']:.3f} (C={best_c})", flush=True)
    return {"UA_mean": float(np.mean([r["UA"] for r in results])), "folds": len(results)}


