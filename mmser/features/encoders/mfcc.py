"""MFCC frames as an "encoder" (``mfcc:<n>``): ``(1, T, n)`` per clip at 100 frames per second (25 ms windows,
10 ms hop, 64 mel bands; torchaudio), so classical front ends (seed 000's 1D-CNN on 40 MFCCs) train through the
same cache, folds, Lightning loop and tables as the neural encoders."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from mmser.audio import SAMPLE_RATE
from mmser.errors import MmserError

HOP = 160  # samples (10 ms)


class MFCCEncoder:
    num_layers = 1
    frame_rate = SAMPLE_RATE / HOP

    def __init__(self, spec: str):
        import torchaudio

        name = spec.partition(":")[2]
        if not name.isdigit() or not 1 <= int(name) <= 64:
            raise MmserError(f"{spec!r}: use mfcc:N with N coefficients, 1..64 (e.g. mfcc:40)")
        self.encoder_id, self.dim = spec, int(name)
        self.transform = torchaudio.transforms.MFCC(SAMPLE_RATE, n_mfcc=self.dim,
                                                    melkwargs={"n_fft": 400, "hop_length": HOP, "n_mels": 64})
        self.fingerprint = f"mfcc{self.dim}-fft400-hop{HOP}-mel64"

    @torch.inference_mode()
    def encode(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """16 kHz waveforms -> ``(1, T, n)`` float32 each, T = n_samples // 160 + 1."""
        return [self.transform(torch.from_numpy(np.asarray(w, dtype=np.float32))).T[None].numpy() for w in wavs]
