"""Feature-level augmentation of training batches (``features.augment.{time_mask, channel_mask, mixup}``).

Cheap, on the cached frames, training steps only (never validation or test):

- time masking: spans of up to :data:`MAX_SPAN` frames zeroed, ``time_mask`` of each clip's frames in all;
- channel masking: ``channel_mask`` of the feature channels zeroed (the same channels over the clip, every layer);
- mixup within a class: each clip mixed with another clip of its class in the batch, weight ``lam`` ~
  Beta(alpha, alpha) on itself (the label is the class either way), over the union of their frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MAX_SPAN = 10  # frames, the longest masked span


@dataclass(frozen=True)
class FrameAugment:
    time_mask: float = 0.0
    channel_mask: float = 0.0
    mixup: float = 0.0

    @classmethod
    def from_config(cls, augment_cfg) -> "FrameAugment | None":
        out = cls(float(augment_cfg.time_mask), float(augment_cfg.channel_mask), float(augment_cfg.mixup))
        return out if out.active else None

    @property
    def active(self) -> bool:
        return self.time_mask > 0 or self.channel_mask > 0 or self.mixup > 0

    def __call__(self, batch: dict) -> dict:
        """A training batch with its ``audio`` (B, L, T, D) augmented (a new dict; the input is left as it is)."""
        if batch.get("audio") is None:
            return batch
        audio, mask, target = batch["audio"].float(), batch["audio_mask"], batch["target"]
        if self.mixup > 0:
            audio, mask = mix_within_class(audio, mask, target, self.mixup)
        if self.time_mask > 0:
            audio = mask_time(audio, mask, self.time_mask)
        if self.channel_mask > 0:
            audio = mask_channels(audio, self.channel_mask)
        return {**batch, "audio": audio, "audio_mask": mask}


def mask_time(audio: torch.Tensor, mask: torch.Tensor, fraction: float) -> torch.Tensor:
    """Zero spans of up to ``MAX_SPAN`` frames covering about ``fraction`` of each clip's valid frames.
    ``audio`` (B, L, T, D), ``mask`` (B, T) -> (B, L, T, D)."""
    b, _, t, _ = audio.shape
    keep = torch.ones(b, t, dtype=audio.dtype, device=audio.device)
    lengths = mask.sum(dim=1).tolist()
    for row, n in enumerate(lengths):
        budget = int(fraction * n)
        while budget > 0:
            span = int(torch.randint(1, min(MAX_SPAN, budget) + 1, ()))
            start = int(torch.randint(0, max(n - span, 0) + 1, ()))
            keep[row, start:start + span] = 0
            budget -= span
    return audio * keep[:, None, :, None]


def mask_channels(audio: torch.Tensor, fraction: float) -> torch.Tensor:
    """Zero ``fraction`` of the D channels of each clip, the same ones at every frame and layer. (B, L, T, D)."""
    b, _, _, d = audio.shape
    n = int(fraction * d)
    if n == 0:
        return audio
    keep = torch.ones(b, d, dtype=audio.dtype, device=audio.device)
    for row in range(b):
        keep[row, torch.randperm(d, device=audio.device)[:n]] = 0
    return audio * keep[:, None, None, :]


def mix_within_class(audio: torch.Tensor, mask: torch.Tensor, target: torch.Tensor,
                     alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Each clip mixed with a random other clip of its class in the batch (left as it is when it is its class's
    only clip): ``lam * x + (1 - lam) * x'``, lam ~ Beta(alpha, alpha) per clip; the mask is the union.
    ``audio`` (B, L, T, D), ``mask`` (B, T), ``target`` (B,)."""
    b = audio.shape[0]
    partner = torch.arange(b, device=target.device)
    for cls in target.unique():
        members = (target == cls).nonzero().flatten()
        if len(members) > 1:  # a random cycle through the class: every clip gets another clip
            cycle = members[torch.randperm(len(members), device=target.device)]
            partner[cycle] = cycle.roll(1)
    lam = torch.distributions.Beta(alpha, alpha).sample((b,)).to(audio)  # (B,)
    lam = torch.where(partner == torch.arange(b, device=target.device), torch.ones_like(lam), lam)  # alone: as is
    mixed = lam[:, None, None, None] * audio + (1 - lam)[:, None, None, None] * audio[partner]
    return mixed, mask | mask[partner]
