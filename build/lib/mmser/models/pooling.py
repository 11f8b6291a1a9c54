"""Layer weighting and sequence pooling (masked)."""

from __future__ import annotations

import torch
from torch import nn


class LayerWeights(nn.Module):
    """SUPERB-style learned softmax weighting of encoder layers: ``(B, L, T, D) -> (B, T, D)``."""

    def __init__(self, num_layers: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(num_layers))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.logits, dim=0)  # (L,)
        return torch.einsum("l,bltd->btd", weights, hidden)  # (B, T, D)


class AttentiveStatsPooling(nn.Module):
    """Attention-weighted mean and standard deviation over valid frames: ``(B, T, D) -> (B, 2D)``."""

    def __init__(self, dim: int, hidden: int = 128):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` (B, T, D); ``mask`` (B, T) bool, True at valid frames (at least one per row)."""
        scores = self.score(x).squeeze(-1)  # (B, T)
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        alpha = torch.softmax(scores, dim=1).unsqueeze(-1)  # (B, T, 1)
        mean = (alpha * x).sum(dim=1)  # (B, D)
        var = (alpha * (x - mean.unsqueeze(1)) ** 2).sum(dim=1)  # (B, D)
        return torch.cat([mean, torch.sqrt(var.clamp_min(1e-6))], dim=-1)  # (B, 2D)
