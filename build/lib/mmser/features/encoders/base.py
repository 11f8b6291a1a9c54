"""What every encoder provides, layer selection, and weight fingerprints."""

from __future__ import annotations

import hashlib
from typing import Protocol, Sequence

import numpy as np
import torch

from mmser.errors import MmserError


class ModelUnavailableError(MmserError):
    """A model that cannot be loaded here (no local copy and no hub access), with how to supply one."""

    def __init__(self, spec: str, detail: str, hint: str):
        super().__init__(f"cannot load model {spec!r}: {detail}. {hint}")


class AcousticEncoder(Protocol):
    """Waveforms -> per-layer frame sequences."""

    encoder_id: str  # spec the encoder was built from, e.g. "whisper-ct2:tiny.en"
    fingerprint: str  # hash of the weights: a changed model is never served from cache
    num_layers: int  # hidden states returned per clip (after layer selection)
    dim: int  # feature size D
    frame_rate: float  # frames per second of audio

    def encode(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """16 kHz mono float32 waveforms ``(n_samples,)`` -> one array ``(L, T, D)`` per clip."""
        ...


class TextEncoder(Protocol):
    """Transcripts -> per-layer token sequences."""

    encoder_id: str
    fingerprint: str
    num_layers: int
    dim: int

    def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Transcripts -> one array ``(L, N_tokens, D)`` per text (special tokens included, padding removed)."""
        ...


def parse_layers(selection: str, available: int) -> list[int]:
    """Hidden-state indices for ``selection``: "all", "last", or comma-separated (negative allowed)."""
    selection = selection.strip().lower()
    if selection == "all":
        return list(range(available))
    if selection == "last":
        return [available - 1]
    try:
        picked = [int(x) for x in selection.split(",") if x.strip()]
    except ValueError:
        raise MmserError(f"layer selection {selection!r}: use 'all', 'last' or comma-separated integers") from None
    out = []
    for i in picked:
        j = i + available if i < 0 else i
        if not 0 <= j < available:
            raise MmserError(f"layer {i} out of range: the model has {available} hidden states (0..{available - 1})")
        out.append(j)
    return out


def state_dict_fingerprint(module: torch.nn.Module) -> str:
    """SHA-256 (16 hex) over parameter names, shapes and values."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def text_fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def length_buckets(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (sorted), so padding stays small."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]
