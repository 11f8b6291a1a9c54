"""Manifest rows as waveforms, read on demand: the audio input of models that train the whole encoder
(``model.finetune.top_layers: all``), which nothing is cached for.

:class:`WaveformRows` reads each clip with the one loader of :mod:`mmser.audio` (16 kHz mono float32), cut
to the encoder's longest input; :class:`RecipeRows` makes augmented variants as they are read
(``features.augment.variants``: the recipes cached models would encode, applied at read time instead, so
an epoch costs no extra encoding). Both are picklable for DataLoader workers.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mmser.audio import load_audio, require_files
from mmser.features.augment import Recipe, apply_recipe


class WaveformRows(Sequence):
    """Row ``i``: the clip at ``paths[i]`` as ``(n_samples,)`` float32, its first ``max_samples`` samples when
    it is longer (None: whole)."""

    def __init__(self, paths: Sequence[str], max_samples: int | None = None):
        self.paths, self.max_samples = [str(p) for p in paths], max_samples
        require_files(self.paths, f"reading {len(self.paths)} clips as waveforms")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        return load_audio(self.paths[i])[: self.max_samples]


class RecipeRows(Sequence):
    """Row ``i``: the clip at ``items[i][0]`` augmented by the recipe ``items[i][1]``; ``babble``: content hash
    -> path of the training clips babble may mix."""

    def __init__(self, items: Sequence[tuple[str, Recipe]], babble: dict[str, str], max_samples: int | None = None):
        self.items, self.babble, self.max_samples = list(items), dict(babble), max_samples
        require_files([path for path, _ in self.items] + list(self.babble.values()),
                      f"reading {len(self.items)} augmented clips as waveforms")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> np.ndarray:
        path, recipe = self.items[i]
        return apply_recipe(load_audio(path), recipe, lambda content: load_audio(self.babble[content]))[: self.max_samples]
