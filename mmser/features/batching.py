"""Datasets over model inputs (cached features) and the collate function that pads them into batches (with masks)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from mmser.labels import LABEL_TO_INDEX


class FeatureDataset(Dataset):
    """Utterances as cached encoder outputs: audio ``(L_a, T, D_a)`` and/or text ``(L_t, N, D_t)`` float16 arrays
    (audio as ``(S,)`` float32 waveforms for models that train the whole encoder)."""

    def __init__(self, utt_ids: Sequence[str], labels: Sequence[str], audio: Sequence[np.ndarray] | None = None,
                 text: Sequence[np.ndarray] | None = None):
        self.utt_ids = list(utt_ids)
        self.targets = [LABEL_TO_INDEX[label] for label in labels]
        self.audio, self.text = audio, text

    def __len__(self) -> int:
        return len(self.utt_ids)

    def __getitem__(self, i: int) -> dict:
        return {
            "index": i, "target": self.targets[i],
            "audio": None if self.audio is None else self.audio[i],
            "text": None if self.text is None else self.text[i],
        }


def _pad(arrays: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """List of ``(L, T_i, D)`` -> padded ``(B, L, T_max, D)`` float16 and mask ``(B, T_max)`` bool.

    Batches stay in the cache's float16 (half the host memory and host-to-device traffic of float32); the
    model casts them on its device (``EmotionModel.forward_batch``)."""
    lengths = [a.shape[1] for a in arrays]
    num_layers, dim = arrays[0].shape[0], arrays[0].shape[2]
    out = torch.zeros(len(arrays), num_layers, max(lengths), dim, dtype=torch.float16)
    mask = torch.zeros(len(arrays), max(lengths), dtype=torch.bool)
    for b, (a, n) in enumerate(zip(arrays, lengths)):
        out[b, :, :n] = torch.from_numpy(np.asarray(a, dtype=np.float16))
        mask[b, :n] = True
    return out, mask


def _pad_waveforms(waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """List of ``(S_i,)`` 16 kHz waveforms -> zero-padded ``(B, S_max)`` float32 and sample mask ``(B, S_max)``."""
    lengths = [len(w) for w in waves]
    out = torch.zeros(len(waves), max(lengths), dtype=torch.float32)
    mask = torch.zeros(len(waves), max(lengths), dtype=torch.bool)
    for b, (w, n) in enumerate(zip(waves, lengths)):
        out[b, :n] = torch.from_numpy(np.asarray(w, dtype=np.float32))
        mask[b, :n] = True
    return out, mask


def collate(items: list[dict]) -> dict:
    """Items of a :class:`FeatureDataset` -> one batch: ``index``, ``target`` (B,), padded ``audio`` (B, L, T, D)
    or, for rows that are waveforms, (B, S), ``audio_mask``, and padded ``text`` with ``text_mask``."""
    batch = {"index": torch.tensor([it["index"] for it in items]), "target": torch.tensor([it["target"] for it in items])}
    if items[0]["audio"] is not None:
        audio = [it["audio"] for it in items]
        batch["audio"], batch["audio_mask"] = _pad_waveforms(audio) if audio[0].ndim == 1 else _pad(audio)
    if items[0]["text"] is not None:
        batch["text"], batch["text_mask"] = _pad([it["text"] for it in items])
    return batch
