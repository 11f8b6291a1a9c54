"""Classical features, one vector per clip (``classical.features``):

- ``egemaps_mfcc``: 88 eGeMAPS functionals (openSMILE) + mean and std of 40 MFCCs (168 values);
- ``librosa``: the set of seed 001's pipelines through librosa: mean and std of 40 MFCCs, mean chroma (12),
  spectral contrast (7) and tonnetz (6) (118 values).

Computed once per clip and cached in one Parquet file per set, keyed by the audio's content hash (written
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

from mmser.audio import SAMPLE_RATE, load_audio, require_files
from mmser.config import CLASSICAL_FEATURES
from mmser.data.manifest import atomic_write_bytes

N_MFCC = 40
SAVE_EVERY = 500  # clips computed between two writes of a feature table's cache file


def clip_features(path: str, smile, mfcc: torchaudio.transforms.MFCC) -> np.ndarray:
    """88 eGeMAPS functionals + mean and std of 40 MFCCs = 168 values."""
    wav = load_audio(path)
    egemaps = smile.process_signal(wav, SAMPLE_RATE).to_numpy().reshape(-1)  # (88,)
    coeffs = mfcc(torch.from_numpy(wav)).numpy()  # (40, frames)
    return np.concatenate([egemaps, coeffs.mean(1), coeffs.std(1)]).astype(np.float32)


def librosa_features(path: str) -> np.ndarray:
    """MFCC (40) mean and std, chroma (12), spectral contrast (7) and tonnetz (6) means = 118 values."""
    import librosa

    wav = load_audio(path)
    mfcc = librosa.feature.mfcc(y=wav, sr=SAMPLE_RATE, n_mfcc=N_MFCC)  # (40, frames)
    stft = np.abs(librosa.stft(wav, n_fft=512, hop_length=160))
    chroma = librosa.feature.chroma_stft(S=stft, sr=SAMPLE_RATE)  # (12, frames)
    contrast = librosa.feature.spectral_contrast(S=stft, sr=SAMPLE_RATE, n_fft=512)  # (7, frames)
    tonnetz = librosa.feature.tonnetz(y=librosa.effects.harmonic(wav), sr=SAMPLE_RATE, chroma=chroma)  # (6, frames)
    return np.concatenate([mfcc.mean(1), mfcc.std(1), chroma.mean(1), contrast.mean(1), tonnetz.mean(1)]).astype(np.float32)




def feature_table(df: pd.DataFrame, cache_dir: str | Path, progress: bool = True,
                  feature_set: str = "egemaps_mfcc") -> np.ndarray:
    """Features ``(N, F)`` of each manifest row in ``feature_set``, computing only clips not in its cache file."""
    if feature_set == "librosa":
        return _cached_table(df, Path(cache_dir) / "classical-librosa-118.parquet", librosa_features, "librosa set",
                             progress)
    if feature_set != "egemaps_mfcc":
        raise ValueError(f"unknown classical feature set {feature_set!r}: {CLASSICAL_FEATURES}")
    import opensmile

    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals)
    mfcc = torchaudio.transforms.MFCC(SAMPLE_RATE, n_mfcc=N_MFCC, melkwargs={"n_fft": 400, "hop_length": 160, "n_mels": 64})
    return _cached_table(df, Path(cache_dir) / "classical-egemaps-mfcc40.parquet",
                         lambda path: clip_features(path, smile, mfcc), "eGeMAPS + MFCC", progress)


def _cached_table(df: pd.DataFrame, path: Path, compute, desc: str, progress: bool) -> np.ndarray:
    """``compute(audio path)`` of each row, read from / added to the Parquet cache ``path`` (by content hash)."""
    cached = pd.read_parquet(path) if path.is_file() else pd.DataFrame()
    known = set(cached.index)
    keys = df["audio_sha256"].tolist()
    first_row: dict[str, int] = {}  # byte-identical clips share one key: computed once, stored once
    for i, key in enumerate(keys):
        if key not in known:
            first_row.setdefault(key, i)
    todo = list(first_row.values())
    if todo:
        require_files(df["path"].iloc[todo], f"computing {desc} features of {len(todo)} clips")
        rows: dict[str, np.ndarray] = {}
        for n, i in enumerate(tqdm(todo, desc=desc, unit="clip", disable=not progress), start=1):
            rows[keys[i]] = compute(df["path"].iloc[i])
            if n % SAVE_EVERY == 0 or n == len(todo):  # a stopped run keeps what it computed
                cached, rows = _saved(cached, rows, path), {}
    return cached.loc[keys].to_numpy(dtype=np.float64)


def _saved(cached: pd.DataFrame, rows: dict[str, np.ndarray], path: Path) -> pd.DataFrame:
    """``cached`` with ``rows`` (content hash -> features) added, written atomically to ``path``."""
    new = pd.DataFrame.from_dict(rows, orient="index")
    new.columns = [str(c) for c in new.columns]
    cached = pd.concat([cached, new])
    buf = io.BytesIO()
    cached.to_parquet(buf)
    atomic_write_bytes(path, buf.getvalue())
    return cached
