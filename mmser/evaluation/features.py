"""Cached features of a manifest, loaded once per run and shared by every fold and ablation cell."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mmser.config import ConfigError
from mmser.encoders.extract import extract
from mmser.labels import EMOTIONS
from mmser.speaker_norm import normalize_per_speaker


@dataclass
class FeatureBank:
    """Per-row arrays of each audio encoder and each text source, plus their sizes."""

    audio: dict[str, list[np.ndarray]] = field(default_factory=dict)  # spec -> [(L, T, D)] per row
    # spec -> [(L, T, D)] per row, standardised under the test speakers' enrolment rule where it differs
    # (features.speaker_norm_test_enrol_labels); used for test rows only
    test_audio: dict[str, list[np.ndarray]] = field(default_factory=dict)
    text: dict[str, list[np.ndarray]] = field(default_factory=dict)  # text source -> [(L, N, D)] per row
    encode_seconds: float = 0.0  # time spent encoding (0 when everything was cached)
    fingerprints: dict[str, str] = field(default_factory=dict)  # encoder spec -> weights fingerprint

    @staticmethod
    def shape(arrays: list[np.ndarray]) -> tuple[int, int]:
        """(layers, dim) of a list of ``(L, T, D)`` arrays."""
        return int(arrays[0].shape[0]), int(arrays[0].shape[2])


def pool_frames(hidden: np.ndarray, stride: int) -> np.ndarray:
    """Average non-overlapping groups of ``stride`` frames: ``(L, T, D) -> (L, ceil(T / stride), D)``."""
    if stride <= 1:
        return hidden
    num_layers, frames, dim = hidden.shape
    pad = (-frames) % stride
    x = hidden.astype(np.float32)
    if pad:  # repeat the last frame so the final group averages real frames only
        x = np.concatenate([x, np.repeat(x[:, -1:], pad, axis=1)], axis=1)
    return x.reshape(num_layers, -1, stride, dim).mean(axis=2).astype(np.float16)


def enrolment_rows(df: pd.DataFrame, labels: list[str] | None, key: str) -> list[bool] | None:
    """Which rows may serve as enrolment clips when only ``labels`` may (None: all rows)."""
    if labels is None:
        return None
    unknown = sorted(set(labels) - set(EMOTIONS))
    if unknown:
        raise ConfigError(f"features.{key}: unknown label(s) {unknown}; labels are {list(EMOTIONS)}")
    return df["label"].isin(list(labels)).tolist()


def load_bank(df: pd.DataFrame, features_cfg, audio_specs: list[str], text_sources: list[str],
              progress: bool = True) -> FeatureBank:
    """Extract what is missing, then load every row's features from the cache."""
    bank = FeatureBank()
    for spec in audio_specs:
        start = time.perf_counter()
        result = extract(df, spec, features_cfg, progress=progress)
        if result.computed:
            bank.encode_seconds += time.perf_counter() - start
        bank.fingerprints[spec] = result.encoder.fingerprint
        items = result.cache.get_many(result.keys)
        stride = int(getattr(features_cfg, "frame_stride", 1))
        pooled = {k: pool_frames(v, stride) for k, v in items.items()}
        bank.audio[spec] = [pooled[k] for k in result.keys]
        if getattr(features_cfg, "speaker_norm", False):
            speakers, k = df["speaker"].astype(str).tolist(), getattr(features_cfg, "speaker_norm_enrol_clips", None)
            labels = getattr(features_cfg, "speaker_norm_enrol_labels", None)
            test_labels = getattr(features_cfg, "speaker_norm_test_enrol_labels", None)
            frames = bank.audio[spec]
            bank.audio[spec] = normalize_per_speaker(
                frames, speakers, k, may_enrol=enrolment_rows(df, labels, "speaker_norm_enrol_labels"))
            if test_labels is not None and test_labels != labels:
                bank.test_audio[spec] = normalize_per_speaker(
                    frames, speakers, k, may_enrol=enrolment_rows(df, test_labels, "speaker_norm_test_enrol_labels"))
    encoder = None
    for source in text_sources:
        start = time.perf_counter()
        result = extract(df, features_cfg.text_encoder, features_cfg, text_source=source, progress=progress,
                         encoder=encoder)
        encoder = result.encoder
        bank.fingerprints[features_cfg.text_encoder] = encoder.fingerprint
        if result.computed:
            bank.encode_seconds += time.perf_counter() - start
        items = result.cache.get_many(result.keys)
        bank.text[source] = [items[k] for k in result.keys]
    return bank
