"""Frame pooling: encoder frames averaged in non-overlapping groups before the model (``features.frame_stride``)."""

from __future__ import annotations

import numpy as np


def pool_frames(hidden: np.ndarray, stride: int) -> np.ndarray:
    """Average non-overlapping groups of ``stride`` frames: ``(L, T, D) -> (L, ceil(T / stride), D)`` float16.

    The last group repeats the last frame so that it averages real frames only; ``stride <= 1`` returns
    ``hidden`` unchanged.
    """
    if stride <= 1:
        return hidden
    num_layers, frames, dim = hidden.shape
    pad = (-frames) % stride
    x = hidden.astype(np.float32)
    if pad:  # repeat the last frame so the final group averages real frames only
        x = np.concatenate([x, np.repeat(x[:, -1:], pad, axis=1)], axis=1)
    return x.reshape(num_layers, -1, stride, dim).mean(axis=2).astype(np.float16)
