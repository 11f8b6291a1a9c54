"""The shared 8-class emotion head; classes a corpus lacks are masked out of the logits."""

from __future__ import annotations

import torch
from torch import nn

from mmser.labels import NUM_CLASSES


class EmotionHead(nn.Module):
    """``(B, in_dim) -> (B, 8)`` logits over :data:`mmser.labels.EMOTIONS`."""

    def __init__(self, in_dim: int, hidden_dim: int, dropout: float = 0.2, class_mask: list[bool] | None = None):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(in_dim), nn.Dropout(dropout), nn.Linear(in_dim, hidden_dim), nn.GELU(),
                                 nn.Dropout(dropout), nn.Linear(hidden_dim, NUM_CLASSES))
        mask = torch.tensor(class_mask if class_mask is not None else [True] * NUM_CLASSES)
        self.register_buffer("class_mask", mask, persistent=False)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        logits = self.net(pooled)  # (B, 8)
        return logits.masked_fill(~self.class_mask, torch.finfo(logits.dtype).min)
