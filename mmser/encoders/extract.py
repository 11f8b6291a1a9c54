"""Manifest -> cached features for one encoder (``mmser extract``; also called by ``mmser cv``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from mmser.audio import AudioError, file_sha256, load_audio
from mmser.encoders.cache import FeatureCache, ShardWriter, audio_key, text_key
from mmser.encoders.registry import build_audio_encoder, build_text_encoder, is_text_spec
from mmser.errors import MmserError


@dataclass
class ExtractResult:
    cache: FeatureCache
    keys: list[str]  # per manifest row, in order
    computed: int  # items encoded by this call
    encoder: object | None  # the loaded encoder (None when everything was cached)


def text_column(df: pd.DataFrame, text_source: str) -> pd.Series:
    """Transcripts of ``text_source`` ("gold" = the ``transcript`` column, else an ASR column)."""
    col = "transcript" if text_source == "gold" else text_source
    if col not in df.columns:
        asr = [c for c in df.columns if c.startswith("asr_")]
        raise MmserError(f"text source {text_source!r}: no column {col!r} in the manifest "
                         f"(ASR columns present: {asr or 'none'}; run `mmser transcribe` first)")
    return df[col].fillna("").astype(str)


def item_keys(df: pd.DataFrame, spec: str, text_source: str = "gold") -> list[str]:
    """Cache key of each manifest row for encoder ``spec``."""
    if is_text_spec(spec):
        return [text_key(t) for t in text_column(df, text_source)]
    if "audio_sha256" in df.columns and (df["audio_sha256"].astype(str).str.len() == 64).all():
        return [audio_key(s) for s in df["audio_sha256"]]
    missing = [p for p in df["path"] if not Path(p).is_file()]
    if missing:
        raise AudioError(missing[0], f"file not found ({len(missing)} of {len(df)} audio files are missing)")
    return [audio_key(file_sha256(p)) for p in df["path"]]


def open_encoder(spec: str, features_cfg) -> object:
    if features_cfg.num_threads:
        torch.set_num_threads(int(features_cfg.num_threads))
    if is_text_spec(spec):
        return build_text_encoder(spec, features_cfg.text_layers, features_cfg.device, max(features_cfg.batch_size, 16),
                                  features_cfg.max_text_tokens)
    return build_audio_encoder(spec, features_cfg.audio_layers, features_cfg.device, features_cfg.batch_size,
                               features_cfg.whisper_window)


def cache_for(encoder, features_cfg, spec: str) -> FeatureCache:
    layers = features_cfg.text_layers if is_text_spec(spec) else features_cfg.audio_layers
    return FeatureCache(features_cfg.cache_dir, encoder.encoder_id, encoder.fingerprint, layers)


def extract(df: pd.DataFrame, spec: str, features_cfg, text_source: str = "gold", progress: bool = True,
            encoder=None) -> ExtractResult:
    """Encode every manifest row not yet cached; returns the cache and each row's key."""
    keys = item_keys(df, spec, text_source)
    encoder = encoder or open_encoder(spec, features_cfg)
    cache = cache_for(encoder, features_cfg, spec)
    todo = cache.missing(keys)
    if not todo:
        return ExtractResult(cache, keys, 0, encoder)
    first_row = {k: i for i, k in reversed(list(enumerate(keys)))}
    rows = [first_row[k] for k in todo]
    texts = text_column(df, text_source) if is_text_spec(spec) else None
    if texts is None and "duration_s" in df.columns:
        rows.sort(key=lambda r: float(df["duration_s"].iloc[r] or 0))  # length buckets: little padding
    batch = max(int(features_cfg.batch_size), 1)
    with ShardWriter(cache, int(features_cfg.shard_size)) as writer, \
            tqdm(total=len(rows), desc=f"extract {spec}", unit="clip", disable=not progress) as bar:
        for start in range(0, len(rows), batch):
            chunk = rows[start:start + batch]
            if texts is not None:
                outputs = encoder.encode([texts.iloc[r] for r in chunk])
            else:
                outputs = encoder.encode([load_audio(df["path"].iloc[r], min_duration_s=0.0) for r in chunk])
            for r, out in zip(chunk, outputs):
                writer.add(keys[r], out)
            bar.update(len(chunk))
    return ExtractResult(cache, keys, len(rows), encoder)
