"""The top K transformer blocks of an audio encoder, trainable (``model.finetune.top_layers``).

An encoder with ``N`` blocks gives ``N + 1`` hidden states (the input embedding, then each block's output,
the last one after the encoder's final norm). Fine-tuning the top ``K`` blocks leaves the bottom frozen:
its output, hidden state ``N - K``, is read from the feature cache like every other state, and
:class:`TopBlocks` recomputes states ``N - K + 1 .. N`` from it on every step. Before any training step the
recomputed states equal the cached ones (tested), so a fine-tuned model starts as the frozen one.

Two families, described by a small ``arch`` dict stored in the checkpoint (``ModelDims.encoder_blocks``):

- ``{"family": "whisper", "n_state": D, "n_head": H}``: openai-whisper ``ResidualAttentionBlock`` weights
  (also those read from CTranslate2), re-implemented here with a key-padding mask (Whisper's own blocks take
  none), final norm ``ln_post``;
- ``{"family": "hf", "config": {...}}``: wav2vec2 / HuBERT / data2vec-audio encoder layers from transformers,
  rebuilt from the model's config. Their hidden states are the layers' own outputs (transformers records
  them before a stable-layer-norm model's final norm), so no final norm is recomputed.
"""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F
from torch import nn

from mmser.errors import MmserError

HF_FAMILIES = ("wav2vec2", "hubert", "data2vec-audio")  # encoder layers that take (hidden, attention_mask)


class WhisperBlock(nn.Module):
    """One Whisper encoder block (pre-norm self-attention + MLP), parameter names as openai-whisper's."""

    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.attn_ln = nn.LayerNorm(n_state)
        self.attn = nn.ModuleDict({"query": nn.Linear(n_state, n_state), "key": nn.Linear(n_state, n_state, bias=False),
                                   "value": nn.Linear(n_state, n_state), "out": nn.Linear(n_state, n_state)})
        self.mlp_ln = nn.LayerNorm(n_state)
        self.mlp = nn.Sequential(nn.Linear(n_state, 4 * n_state), nn.GELU(), nn.Linear(4 * n_state, n_state))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` (B, T, D); ``mask`` (B, T) bool, True at valid frames -> (B, T, D)."""
        b, t, d = x.shape
        h = self.attn_ln(x)
        q, k, v = (self.attn[name](h).view(b, t, self.n_head, d // self.n_head).transpose(1, 2)
                   for name in ("query", "key", "value"))  # (B, H, T, D/H) each
        keys = mask[:, None, None, :]  # (B, 1, 1, T): padded frames are never attended to
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=keys)  # (B, H, T, D/H)
        x = x + self.attn["out"](a.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.mlp_ln(x))


class TopBlocks(nn.Module):
    """``K`` trainable blocks and the encoder's final norm: hidden state ``N - K`` -> states ``N - K + 1 .. N``."""

    def __init__(self, arch: dict, num_blocks: int):
        super().__init__()
        self.family, self.num_blocks = arch["family"], num_blocks
        self.final_norm: nn.Module | None
        if self.family == "whisper":
            self.blocks = nn.ModuleList([WhisperBlock(arch["n_state"], arch["n_head"]) for _ in range(num_blocks)])
            self.final_norm = nn.LayerNorm(arch["n_state"])
        elif self.family == "hf":
            self.hf_config, layers, final_norm = _hf_layers(arch["config"], num_blocks)
            self.blocks, self.final_norm = layers, final_norm
        else:
            raise MmserError(f"unknown encoder block family {self.family!r}")

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Hidden state ``N - K`` ``(B, T, D)`` and its mask ``(B, T)`` -> the next ``K`` states ``(B, K, T, D)``."""
        states = []
        if self.family == "hf":
            from transformers.masking_utils import create_bidirectional_mask

            attention = create_bidirectional_mask(config=self.hf_config, inputs_embeds=x, attention_mask=mask.long())
            for block in self.blocks:
                out = block(x, attention_mask=attention)
                x = out[0] if isinstance(out, tuple) else out
                states.append(x)
        else:
            for block in self.blocks:
                x = block(x, mask)
                states.append(x)
        if self.final_norm is not None:
            states[-1] = self.final_norm(states[-1])
        return torch.stack(states, dim=1)  # (B, K, T, D)


def _hf_layers(config: dict, num_blocks: int) -> tuple[object, nn.ModuleList, nn.Module | None]:
    """``num_blocks`` freshly built encoder layers of the transformers model ``config`` describes (no final norm:
    see the module docstring)."""
    from transformers import AutoConfig, AutoModel

    settings = {k: v for k, v in config.items() if k not in ("model_type", "transformers_version", "architectures")}
    model_type = config.get("model_type", "")
    if model_type not in HF_FAMILIES:
        raise MmserError(f"fine-tuning the top blocks of a {model_type!r} encoder is not supported "
                         f"(supported: {list(HF_FAMILIES)}; WavLM's layers share a relative position bias)")
    small = AutoConfig.for_model(model_type, **{**settings, "num_hidden_layers": num_blocks})
    small.layerdrop = 0.0  # a skipped layer would leave a hidden state missing
    model = AutoModel.from_config(small)
    return small, model.encoder.layers, None


def encoder_top_blocks(encoder, num_blocks: int) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(arch, state)`` of the top ``num_blocks`` blocks of an opened audio encoder (pretrained weights).

    ``encoder``: a :class:`~mmser.features.encoders.whisper_frames.WhisperTorchEncoder` or
    :class:`~mmser.features.encoders.hf_audio.HFAudioEncoder` that returns every hidden state."""
    module = getattr(encoder, "encoder", None)  # openai-whisper AudioEncoder
    model = getattr(encoder, "model", None)  # transformers model
    if module is not None and hasattr(module, "blocks"):
        total = len(module.blocks)
        _check_blocks(encoder, num_blocks, total)
        arch = {"family": "whisper", "n_state": int(module.ln_post.normalized_shape[0]),
                "n_head": int(module.blocks[0].attn.n_head)}
        state = {}
        for j, block in enumerate(module.blocks[total - num_blocks:]):
            state.update({f"blocks.{j}.{k}": v.detach().clone() for k, v in block.state_dict().items()})
        state.update({f"final_norm.{k}": v.detach().clone() for k, v in module.ln_post.state_dict().items()})
        return arch, state
    if model is not None and hasattr(getattr(model, "encoder", None), "layers"):
        layers = model.encoder.layers
        _check_blocks(encoder, num_blocks, len(layers))
        config = json.loads(model.config.to_json_string())
        arch = {"family": "hf", "config": config}
        state = {}
        for j, layer in enumerate(layers[len(layers) - num_blocks:]):
            state.update({f"blocks.{j}.{k}": v.detach().clone() for k, v in layer.state_dict().items()})
        return arch, state
    raise MmserError(f"model.finetune.top_layers: encoder {encoder.encoder_id} does not expose its blocks to PyTorch "
                     "(use whisper-ct2:, whisper: or hf: encoders; faster-whisper: runs in CTranslate2)")


def _check_blocks(encoder, num_blocks: int, total: int) -> None:
    if getattr(encoder, "num_layers", None) != total + 1:
        raise MmserError(f"model.finetune.top_layers needs every hidden state of {encoder.encoder_id} "
                         f"(features.audio_layers=all); it has {encoder.num_layers} of {total + 1}")
    if not 1 <= num_blocks <= total:
        raise MmserError(f"model.finetune.top_layers={num_blocks}: {encoder.encoder_id} has {total} blocks")


def pool_masked(hidden: torch.Tensor, mask: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Average non-overlapping groups of ``stride`` frames: ``(B, L, T, D)``, ``(B, T)`` ->
    ``(B, L, ceil(T / stride), D)`` and the pooled mask ``(B, ceil(T / stride))``.

    The torch counterpart of :func:`mmser.features.frames.pool_frames`, for models that pool after their own
    trainable blocks: a clip's last group is filled with its last real frame (never with padding)."""
    if stride <= 1:
        return hidden, mask
    b, layers, t, d = hidden.shape
    padded = t + (-t) % stride
    lengths = mask.sum(dim=1)  # (B,)
    steps = torch.arange(padded, device=hidden.device)
    source = torch.minimum(steps[None], (lengths - 1).clamp_min(0)[:, None])  # (B, T_pad): frame each slot copies
    filled = hidden.gather(2, source[:, None, :, None].expand(b, layers, padded, d))  # (B, L, T_pad, D)
    pooled = filled.view(b, layers, padded // stride, stride, d).mean(dim=3)  # (B, L, T', D)
    starts = torch.arange(0, padded, stride, device=hidden.device)  # (T',)
    return pooled, starts[None] < lengths[:, None]
