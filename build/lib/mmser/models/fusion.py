"""Cross-modal attention aligner: text tokens attend to audio frames, audio frames attend to text tokens."""

from __future__ import annotations

import torch
from torch import nn


class CrossModalBlock(nn.Module):
    """One aligner block: two cross-attentions (multi-head, key padding masks), residual + layer norm, FFN."""

    def __init__(self, dim: int, num_heads: int = 4, dropout: float = 0.1):
        super().__init__()
        self.text_to_audio = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.audio_to_text = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.norm_text, self.norm_audio = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ffn_text = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))
        self.ffn_audio = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))
        self.norm_text_ffn, self.norm_audio_ffn = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, audio: torch.Tensor, audio_mask: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``audio`` (B, T, D), ``text`` (B, N, D); masks (B, T) / (B, N) bool, True = valid."""
        text_ctx, _ = self.text_to_audio(text, audio, audio, key_padding_mask=~audio_mask, need_weights=False)
        audio_ctx, _ = self.audio_to_text(audio, text, text, key_padding_mask=~text_mask, need_weights=False)
        text = self.norm_text(text + self.dropout(text_ctx))  # (B, N, D)
        audio = self.norm_audio(audio + self.dropout(audio_ctx))  # (B, T, D)
        text = self.norm_text_ffn(text + self.dropout(self.ffn_text(text)))
        audio = self.norm_audio_ffn(audio + self.dropout(self.ffn_audio(audio)))
        return audio, text


class CrossModalFusion(nn.Module):
    """A stack of :class:`CrossModalBlock`; returns the aligned audio and text sequences."""

    def __init__(self, dim: int, num_heads: int = 4, num_layers: int = 1, dropout: float = 0.1):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"hidden_dim {dim} is not divisible by num_heads {num_heads}")
        self.blocks = nn.ModuleList(CrossModalBlock(dim, num_heads, dropout) for _ in range(num_layers))

    def forward(self, audio, audio_mask, text, text_mask):
        for block in self.blocks:
            audio, text = block(audio, audio_mask, text, text_mask)
        return audio, text
