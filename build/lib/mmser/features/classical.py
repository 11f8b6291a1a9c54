"""Classical features: eGeMAPS functionals (openSMILE) + MFCC statistics, one vector per clip.

Computed once per clip and cached in one Parquet file keyed by the audio's content hash (written
atomically). The baseline that fits models on them is ``mmser.recipes.baseline``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torchaudio
from tqdm import tqdm

from mmser.audio import SAMPLE_RATE, load_audio
from mmser.data.manifest import atomic_write_bytes

N_MFCC = 40


def clip_features(path: str, smile, mfcc: torchaudio.transforms.MFCC) -> np.ndarray:
    """88 eGeMAPS functionals + mean and std of 40 MFCCs = 168 values."""
    wav = load_audio(path)
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
