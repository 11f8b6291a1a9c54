"""The feature store: a manifest's cached features as model inputs, loaded once per run and shared by every
fold and ablation cell.

Frames become model inputs exactly as :class:`~mmser.inference.Predictor` makes them, through the run's
:class:`~mmser.features.spec.FeatureSpec` (pooling, then per-speaker standardisation).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mmser.features.batching import FeatureDataset
from mmser.features.extract import extract
from mmser.features.speaker_norm import speaker_moments
from mmser.features.spec import FeatureSpec


@dataclass
class FeatureStore:
    """Per-row model inputs of each audio encoder and each text source, for one manifest's rows."""

    spec: FeatureSpec
    utt_ids: list[str] = field(default_factory=list)  # row order of every list below
    labels: list[str] = field(default_factory=list)
    audio: dict[str, list[np.ndarray]] = field(default_factory=dict)  # encoder spec -> [(L, T, D)] per row
    # encoder spec -> [(L, T, D)] per row, standardised under the test speakers' enrolment pool where it
    # differs (features.speaker_norm.test_labels); used for test rows only
    test_audio: dict[str, list[np.ndarray]] = field(default_factory=dict)
    text: dict[str, list[np.ndarray]] = field(default_factory=dict)  # text source -> [(L, N, D)] per row
    encode_seconds: float = 0.0  # time spent encoding (0 when everything was cached)
    fingerprints: dict[str, str] = field(default_factory=dict)  # encoder spec -> weights fingerprint

    def audio_shape(self, encoder: str) -> tuple[int, int]:
        """(layers, dim) of ``encoder``'s frames."""
        first = self.audio[encoder][0]
        return int(first.shape[0]), int(first.shape[2])

    def text_shape(self, text_source: str) -> tuple[int, int]:
        """(layers, dim) of the text encoder's tokens."""
        first = self.text[text_source][0]
        return int(first.shape[0]), int(first.shape[2])

    def dataset(self, ids: tuple[str, ...] | list[str], encoder: str | None, text_source: str | None,
                test: bool = False) -> FeatureDataset:
        """The rows ``ids`` as a dataset of ``encoder`` frames and/or ``text_source`` tokens; ``test``: frames
        standardised under the test speakers' enrolment pool."""
        index = pd.Series(range(len(self.utt_ids)), index=self.utt_ids)
        pos = index[list(ids)].values
        frames = self.test_audio.get(encoder, self.audio.get(encoder)) if test else self.audio.get(encoder)
        audio = [frames[i] for i in pos] if encoder else None
        text = [self.text[text_source][i] for i in pos] if text_source else None
        return FeatureDataset(list(ids), [self.labels[i] for i in pos], audio, text)


def enrolment_rows(df: pd.DataFrame, labels: tuple[str, ...] | None) -> list[bool] | None:
    """Which rows may serve as enrolment clips when only ``labels`` may (None: all rows)."""
    return None if labels is None else df["label"].isin(list(labels)).tolist()


def load_store(df: pd.DataFrame, features_cfg, audio_specs: list[str], text_sources: list[str],
               progress: bool = True) -> FeatureStore:
    """Extract what is missing, then load every row's features from the cache as model inputs."""
    spec = FeatureSpec.from_config(features_cfg)
    sn = spec.speaker_norm
    store = FeatureStore(spec, df["utt_id"].tolist(), df["label"].tolist())
    for encoder_spec in audio_specs:
        start = time.perf_counter()
        result = extract(df, encoder_spec, features_cfg, progress=progress)
        if result.computed:
            store.encode_seconds += time.perf_counter() - start
        store.fingerprints[encoder_spec] = result.encoder.fingerprint
        items = result.cache.get_many(result.keys)
        pooled = {k: spec.pooled(v) for k, v in items.items()}
        frames = [pooled[k] for k in result.keys]
        if sn.mode == "off":
            store.audio[encoder_spec] = frames
            continue
        speakers = df["speaker"].astype(str).tolist()
        moments = speaker_moments(frames, speakers, sn.clips, may_enrol=enrolment_rows(df, sn.labels))
        store.audio[encoder_spec] = [spec.standardised(f, m) for f, m in zip(frames, moments)]
        if sn.test_labels is not None and sn.test_labels != sn.labels:
            moments = speaker_moments(frames, speakers, sn.clips, may_enrol=enrolment_rows(df, sn.test_labels))
            store.test_audio[encoder_spec] = [spec.standardised(f, m) for f, m in zip(frames, moments)]
    encoder = None
    for source in text_sources:
        start = time.perf_counter()
        result = extract(df, spec.text_encoder, features_cfg, text_source=source, progress=progress, encoder=encoder)
        encoder = result.encoder
        store.fingerprints[spec.text_encoder] = encoder.fingerprint
        if result.computed:
            store.encode_seconds += time.perf_counter() - start
        items = result.cache.get_many(result.keys)
        store.text[source] = [items[k] for k in result.keys]
    return store


def store_for(rows: pd.DataFrame, features_cfg, kinds: list[str], text_sources: list[str],
              progress: bool = True) -> FeatureStore:
    """The store that models of ``kinds`` read: the audio encoders unless all are text-only, the text
    sources unless all are audio-only."""
    audio_specs = list(features_cfg.audio_encoders) if any(k != "text_only" for k in kinds) else []
    texts = list(text_sources) if any(k != "audio_only" for k in kinds) else []
    return load_store(rows, features_cfg, audio_specs, texts, progress)
