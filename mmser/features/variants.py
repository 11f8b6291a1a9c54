"""Augmented variants of a fold's training clips as model inputs (``features.augment.variants``).

For each training clip, ``K`` recipes are drawn (:func:`mmser.features.augment.draw_recipe`); each variant is
encoded once by the store's encoder and cached beside the clean frames under ``<clip key>+<recipe key>``, so
a later fold, run or resumed run reads it instead of encoding it again. A training row is then read as
itself or as one of its variants, drawn at random each time it is read (once per epoch). Models that train
the whole encoder read waveforms: their variants are made by the same recipes as they are read.

Predicted clips (validation and test rows) are never augmented for training; under
``features.test_time_speeds`` each is also read at those speeds (:func:`prediction_datasets`), encoded and cached
the same way, and a prediction averages over the clip and its copies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from mmser.audio import load_audio, require_files
from mmser.features.augment import Recipe, apply_recipe, draw_recipe, test_view_recipes
from mmser.features.cache import ShardWriter
from mmser.features.batching import FeatureDataset
from mmser.features.store import CachedRows, FeatureStore, RowSubset
from mmser.features.waveform_rows import RecipeRows


class AugmentedRows(Sequence):
    """Row ``i``: ``clean[i]`` or one of its ``k`` variants ``variants[i * k + j]``, drawn with torch's RNG
    (seeded per run and per DataLoader worker by Lightning), so each epoch reads each clip one way."""

    def __init__(self, clean: Sequence[np.ndarray], variants: Sequence[np.ndarray], k: int):
        self.clean, self.variants, self.k = clean, variants, k

    def __len__(self) -> int:
        return len(self.clean)

    def __getitem__(self, i: int) -> np.ndarray:
        j = int(torch.randint(0, self.k + 1, ()))
        return self.clean[i] if j == 0 else self.variants[i * self.k + j - 1]


def variant_recipes(rows: pd.DataFrame, train_ids: Sequence[str], keys: dict[str, str], augment_cfg) -> dict[str, list[Recipe]]:
    """``augment_cfg.variants`` recipes of each training clip; babble is drawn from the clips of the other
    training speakers (``keys``: utt_id -> clean cache key, whose hash names the clip's content)."""
    by_id = rows.set_index("utt_id")
    speakers = by_id.loc[list(train_ids), "speaker"].astype(str)
    content = {u: keys[u][1:] for u in train_ids}  # the key is "a" + content hash
    pools: dict[str, list[str]] = {}
    for speaker in speakers.unique():
        pools[speaker] = sorted({content[u] for u, s in speakers.items() if s != speaker})
    return {u: [draw_recipe(content[u], j, augment_cfg, pools[speakers[u]]) for j in range(int(augment_cfg.variants))]
            for u in train_ids}


def augmented_rows(store: FeatureStore, train_ids: Sequence[str], encoder_spec: str, features_cfg,
                   progress: bool = True) -> AugmentedRows:
    """The training rows ``train_ids`` of ``encoder_spec`` with their variants, encoding (and caching) the
    variants not cached yet."""
    result = store.extracted[encoder_spec]
    position = {u: i for i, u in enumerate(store.utt_ids)}
    keys = {u: result.keys[position[u]] for u in train_ids}
    recipes = variant_recipes(store.rows, train_ids, keys, features_cfg.augment)
    variants = cached_recipe_rows(store, train_ids, encoder_spec, recipes, features_cfg, progress, f"augment {encoder_spec}")
    clean = RowSubset(store.audio[encoder_spec], np.array([position[u] for u in train_ids]))
    return AugmentedRows(clean, variants, int(features_cfg.augment.variants))


def cached_recipe_rows(store: FeatureStore, ids: Sequence[str], encoder_spec: str, recipes: dict[str, list[Recipe]],
                       features_cfg, progress: bool, label: str) -> CachedRows:
    """Row ``i * k + j``: clip ``ids[i]`` made by ``recipes[ids[i]][j]`` (``k`` recipes per clip), encoded by
    ``encoder_spec`` and cached under ``<clip key>+<recipe key>`` (those not cached yet are encoded first,
    ``label`` on the progress bar), standardised with its clean clip's speaker moments. Babble recipes mix
    clips among ``ids``."""
    result = store.extracted[encoder_spec]
    rows = store.rows
    position = {u: i for i, u in enumerate(store.utt_ids)}
    keys = {u: result.keys[position[u]] for u in ids}
    variant_keys = [(u, f"{keys[u]}+{r.key()}", r) for u in ids for r in recipes[u]]
    cache = result.cache
    todo = [(u, key, r) for u, key, r in variant_keys if key not in cache]
    if todo:
        path_of_content = {keys[u][1:]: rows["path"].iloc[position[u]] for u in ids}
        encode_variants(todo, rows.set_index("utt_id")["path"], path_of_content, result.encoder, cache,
                        int(features_cfg.batch_size), int(features_cfg.shard_size), progress, label)
    moments = store.moments.get(encoder_spec)
    variant_moments = [moments[position[u]] for u, _, _ in variant_keys] if moments is not None else None
    return CachedRows(cache.locate([key for _, key, _ in variant_keys]), store.spec, variant_moments)


def prediction_datasets(store: FeatureStore, ids: Sequence[str], encoder: str | None, text_source: str | None,
                        features_cfg, test: bool = False, progress: bool = True) -> list[FeatureDataset]:
    """The rows ``ids`` as the datasets a prediction averages over: the clips themselves, then, under
    ``features.test_time_speeds``, the clips played at each speed (encoded and cached once; each copy
    standardised with its clip's speaker moments). ``test``: as :meth:`FeatureStore.dataset`."""
    clean = store.dataset(ids, encoder, text_source, test=test)
    if encoder is None or not store.spec.test_time_speeds:
        return [clean]
    datasets = [clean]
    for recipe in test_view_recipes(store.spec.test_time_speeds):
        if encoder in store.waveform_shapes:  # models that run the whole encoder: copies made as they are read
            paths = store.rows.set_index("utt_id").loc[list(ids), "path"].astype(str)
            audio = RecipeRows([(p, recipe) for p in paths], {}, store.audio[encoder].max_samples)
        else:
            audio = cached_recipe_rows(store, ids, encoder, {u: [recipe] for u in ids}, features_cfg, progress,
                                       f"speed {recipe.speed:g} {encoder}")
        datasets.append(store.dataset(ids, encoder, text_source, test=test, audio=audio))
    return datasets


def augmented_waveforms(store: FeatureStore, train_ids: Sequence[str], encoder_spec: str, augment_cfg) -> AugmentedRows:
    """The training rows ``train_ids`` as waveforms with their variants made as they are read (models that
    train the whole encoder: nothing is encoded ahead)."""
    from mmser.features.extract import item_keys

    rows = store.rows
    position = {u: i for i, u in enumerate(store.utt_ids)}
    train_rows = rows.iloc[[position[u] for u in train_ids]]
    keys = dict(zip(train_ids, item_keys(train_rows, encoder_spec)))
    recipes = variant_recipes(rows, train_ids, keys, augment_cfg)
    path = dict(zip(train_ids, train_rows["path"].astype(str)))
    clean = RowSubset(store.audio[encoder_spec], np.array([position[u] for u in train_ids]))
    variants = RecipeRows([(path[u], r) for u in train_ids for r in recipes[u]],
                          {keys[u][1:]: path[u] for u in train_ids}, clean.rows.max_samples)
    return AugmentedRows(clean, variants, int(augment_cfg.variants))


def training_dataset(store: FeatureStore, ids: Sequence[str], encoder: str | None, text_source: str | None,
                     features_cfg, progress: bool = True) -> FeatureDataset:
    """A fold's training rows as a dataset: with ``features.augment.variants``, each audio row is read as
    itself or one of its augmented variants."""
    if encoder is None or int(features_cfg.augment.variants) == 0:
        return store.dataset(ids, encoder, text_source)
    if encoder in store.waveform_shapes:
        audio = augmented_waveforms(store, ids, encoder, features_cfg.augment)
    else:
        audio = augmented_rows(store, ids, encoder, features_cfg, progress)
    return store.dataset(ids, encoder, text_source, audio=audio)


def encode_variants(todo: list[tuple[str, str, Recipe]], paths: pd.Series, path_of_content: dict[str, str], encoder,
                    cache, batch_size: int, shard_size: int, progress: bool, name: str) -> None:
    """Make, encode and cache each (utt_id, cache key, recipe) of ``todo`` (``name`` on the progress bar)."""
    require_files([paths[u] for u, _, _ in todo] + list(path_of_content.values()),
                  f"making {len(todo)} augmented clips ({name})")
    loaded: dict[str, np.ndarray] = {}

    def load(content: str) -> np.ndarray:  # babble sources, read once each
        if content not in loaded:
            loaded[content] = load_audio(Path(path_of_content[content]))
        return loaded[content]

    with ShardWriter(cache, shard_size, expected=len(todo)) as writer, \
            tqdm(total=len(todo), desc=name, unit="clip", disable=not progress) as bar:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            wavs = [apply_recipe(load_audio(paths[u]), r, load) for u, _, r in chunk]
            for (_, key, _), frames in zip(chunk, encoder.encode(wavs)):
                writer.add(key, frames)
            bar.update(len(chunk))
