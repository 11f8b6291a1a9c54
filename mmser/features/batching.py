"""Datasets over model inputs (cached features) and the collate function that pads them into batches (with masks)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from mmser.labels import LABEL_TO_INDEX


class FeatureDataset(Dataset):
    """Utterances as cached encoder outputs: audio ``(L_a, T, D_a)`` and/or text ``(L_t, N, D_t)`` float16 arrays
    (audio as ``(S,)`` float32 waveforms for models that train the whole encoder); ``durations``: (N,) each
    clip's duration in seconds, for batches of similar lengths (None: unknown)."""

    def __init__(self, utt_ids: Sequence[str], labels: Sequence[str], audio: Sequence[np.ndarray] | None = None,
                 text: Sequence[np.ndarray] | None = None, durations: np.ndarray | None = None):
        self.utt_ids = list(utt_ids)
        self.targets = [LABEL_TO_INDEX[label] for label in labels]
        self.audio, self.text, self.durations = audio, text, durations

    def __len__(self) -> int:
        return len(self.utt_ids)

    def __getitem__(self, i: int) -> dict:
        return {
            "index": i, "target": self.targets[i],
            "audio": None if self.audio is None else self.audio[i],
            "text": None if self.text is None else self.text[i],
        }


def _pad(arrays: list[np.ndarray], time_axis: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Arrays of different lengths along ``time_axis`` -> zero-padded ``(B, ..., T_max, ...)`` of ``dtype`` and
    mask ``(B, T_max)`` bool: ``(L, T_i, D)`` frames (axis 1) or ``(S_i,)`` waveforms (axis 0).

    Frame batches stay in the cache's float16 (half the host memory and host-to-device traffic of float32); the
    model casts them on its device (``EmotionModel.forward_batch``)."""
    lengths = [a.shape[time_axis] for a in arrays]
    shape = list(arrays[0].shape)
    shape[time_axis] = max(lengths)
    out = torch.zeros(len(arrays), *shape, dtype=dtype)
    mask = torch.zeros(len(arrays), max(lengths), dtype=torch.bool)
    for b, (a, n) in enumerate(zip(arrays, lengths)):
        out[b].narrow(time_axis, 0, n).copy_(torch.from_numpy(np.asarray(a)))
        mask[b, :n] = True
    return out, mask


def collate(items: list[dict]) -> dict:
    """Items of a :class:`FeatureDataset` -> one batch: ``index``, ``target`` (B,), padded ``audio`` (B, L, T, D)
    or, for rows that are waveforms, (B, S), ``audio_mask``, and padded ``text`` with ``text_mask``."""
    batch = {"index": torch.tensor([it["index"] for it in items]), "target": torch.tensor([it["target"] for it in items])}
    if items[0]["audio"] is not None:
        audio = [it["audio"] for it in items]
        waveforms = audio[0].ndim == 1
        batch["audio"], batch["audio_mask"] = _pad(audio, 0 if waveforms else 1,
                                                   torch.float32 if waveforms else torch.float16)
    if items[0]["text"] is not None:
        batch["text"], batch["text_mask"] = _pad([it["text"] for it in items], 1, torch.float16)
    return batch
