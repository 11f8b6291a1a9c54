"""Manifest -> cached features for one encoder (``mmser extract``; also called by ``mmser cv``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace

import pandas as pd
import torch
from tqdm import tqdm

from mmser.audio import file_sha256, load_audio, require_files
from mmser.data.protocol import text_column
from mmser.devices import resolve_device
from mmser.features.cache import FeatureCache, ShardWriter, audio_key, text_key
from mmser.features.encoders.registry import is_text_spec
from mmser.features.sharding import in_shard
from mmser.features.spec import FeatureSpec


@dataclass
class ExtractResult:
    cache: FeatureCache
    keys: list[str]  # per manifest row, in order
    computed: int  # items encoded by this call
    encoder: object | None  # the loaded encoder (None when everything was cached)


def item_keys(df: pd.DataFrame, spec: str, text_source: str = "gold") -> list[str]:
    """Cache key of each manifest row for encoder ``spec``."""
    if is_text_spec(spec):
        return [text_key(t) for t in text_column(df, text_source)]
    if "audio_sha256" in df.columns and (df["audio_sha256"].astype(str).str.len() == 64).all():
        return [audio_key(s) for s in df["audio_sha256"]]
    require_files(df["path"], f"hashing {len(df)} clips")
    return [audio_key(file_sha256(p)) for p in df["path"]]


def open_encoder(spec: str, features_cfg) -> object:
    """Encoder ``spec`` opened through the config's :class:`FeatureSpec`, on ``features.device``."""
    if features_cfg.num_threads:
        torch.set_num_threads(int(features_cfg.num_threads))
    features, device = FeatureSpec.from_config(features_cfg), resolve_device(features_cfg.device)
    if is_text_spec(spec):
        if spec != features.text_encoder:
            features = replace(features, text_encoder=spec)
        return features.open_text_encoder(device, max(features_cfg.batch_size, 16))
    return features.open_audio_encoder(spec, device, features_cfg.batch_size)


def cache_for(encoder, features_cfg, spec: str) -> FeatureCache:
    """The cache folder of ``encoder`` (its id, weights fingerprint and layer selection)."""
    layers = features_cfg.text_layers if is_text_spec(spec) else features_cfg.audio_layers
    return FeatureCache(features_cfg.cache_dir, encoder.encoder_id, encoder.fingerprint, layers)


def extract(df: pd.DataFrame, spec: str, features_cfg, text_source: str = "gold", progress: bool = True,
            encoder=None, shard: tuple[int, int] | None = None) -> ExtractResult:
    """Encode every manifest row not yet cached (``shard`` (I, N): only the rows of that shard, see
    :mod:`mmser.features.sharding`); returns the cache and each row's key."""
    keys = item_keys(df, spec, text_source)
    encoder = encoder or open_encoder(spec, features_cfg)
    cache = cache_for(encoder, features_cfg, spec)
    cache.locate([k for k in dict.fromkeys(keys) if k in cache])  # marks the cached ones used (mmser cache prune)
    missing = cache.missing(keys)
    todo = [k for k in missing if in_shard(k, shard)]
    if not todo:
        return ExtractResult(cache, keys, 0, encoder)
    first_row = {k: i for i, k in reversed(list(enumerate(keys)))}
    rows = [first_row[k] for k in todo]
    texts = text_column(df, text_source) if is_text_spec(spec) else None
    if texts is None and "duration_s" in df.columns:
        rows.sort(key=lambda r: float(df["duration_s"].iloc[r] or 0))  # length buckets: little padding
    if texts is None:
        require_files(df["path"].iloc[rows], f"encoding {len(rows)} clips with {spec}")
    if progress:  # where the hours go: a cache folder elsewhere than meant (another working folder) shows here
        unique = len(set(keys))
        tqdm.write(f"{spec}: encoding {len(rows)} of {unique} clips ({unique - len(missing)} cached) into "
                   f"{cache.dir.resolve()}", file=sys.stderr)
    batch = max(int(features_cfg.batch_size), 1)
    with ShardWriter(cache, int(features_cfg.shard_size), expected=len(rows)) as writer, \
            tqdm(total=len(rows), desc=f"extract {spec}", unit="clip", disable=not progress) as bar:
        for start in range(0, len(rows), batch):
            chunk = rows[start:start + batch]
            if texts is not None:
                outputs = encoder.encode([texts.iloc[r] for r in chunk])
            else:
                outputs = encoder.encode([load_audio(df["path"].iloc[r]) for r in chunk])
            for r, out in zip(chunk, outputs):
                writer.add(keys[r], out)
            bar.update(len(chunk))
    return ExtractResult(cache, keys, len(rows), encoder)
