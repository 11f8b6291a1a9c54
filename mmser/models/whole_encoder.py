"""The whole audio encoder, trainable from the waveform (``model.finetune.top_layers: all``).

With top-K fine-tuning (:mod:`mmser.models.finetune`) the frozen bottom's states come from the feature
cache; here nothing is cached: batches carry waveforms, and the model runs the encoder's front end and
every block on each step, returning every hidden state for the layer weights. Meant for GPUs (an epoch
costs a full encoder forward and backward per clip); tested on tiny models on CPU.

Before any training step the states equal those the frozen encoder writes to the cache
(:meth:`~mmser.features.encoders.whisper_frames.WhisperTorchEncoder.encode` with the clip window,
:class:`~mmser.features.encoders.hf_audio.HFAudioEncoder`), whatever else is in the batch (tested): the model
starts as the frozen one.

Each module is ``body(front(wave, mask))``: ``front`` makes the encoder's own input from the padded waveforms
(Whisper's per-clip log-mel; the wav2vec2 family's standardised samples), ``body`` is what trains and what
``mmser export onnx`` puts in the graph.

Two families, described by an ``arch`` dict stored in the checkpoint (``ModelDims.encoder_blocks``):

- ``{"family": "whisper_encoder", "n_mels", "n_ctx", "n_state", "n_head", "n_layer"}``: an openai-whisper
  ``AudioEncoder`` (parameter names as its own, so its state dict loads as it is), log-mel computed per clip
  (Whisper scales each spectrogram by its own maximum), blocks with a key-padding mask;
- ``{"family": "hf_encoder", "config": {...}, "normalize": bool, "use_mask": bool}``: a wav2vec2-family model
  from transformers, rebuilt from its config; clips standardised one by one when its feature extractor does
  so; models without an attention mask (group-norm feature encoders) run one clip at a time.
"""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F
from torch import nn

from mmser.audio import SAMPLE_RATE
from mmser.errors import MmserError
from mmser.features.encoders.whisper_frames import SAMPLES_PER_FRAME
from mmser.models.finetune import HF_FAMILIES, WhisperBlock

WHOLE_HF_FAMILIES = HF_FAMILIES + ("wavlm",)  # whole, WavLM's shared relative position bias is no obstacle


class WhisperWholeEncoder(nn.Module):
    """openai-whisper's ``AudioEncoder`` over padded waveform batches: ``(B, S)`` -> ``(B, L, T, D)``."""

    def __init__(self, arch: dict):
        super().__init__()
        from whisper.model import sinusoids

        self.n_mels, self.n_ctx = int(arch["n_mels"]), int(arch["n_ctx"])
        n_state, n_head, n_layer = int(arch["n_state"]), int(arch["n_head"]), int(arch["n_layer"])
        self.conv1 = nn.Conv1d(self.n_mels, n_state, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(n_state, n_state, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positional_embedding", sinusoids(self.n_ctx, n_state))
        self.blocks = nn.ModuleList([WhisperBlock(n_state, n_head) for _ in range(n_layer)])
        self.ln_post = nn.LayerNorm(n_state)

    def log_mel(self, wave: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Each clip's own log-mel, as the frozen encoder computes it (the clip padded to whole frames, scaled
        by its own maximum), zero-padded: ``(B, S)`` -> ``(B, n_mels, 2 T_max)``."""
        import whisper

        mels = []
        # the input, not a trained part; in float32 under mixed precision too (the log of a bf16 mel is coarse)
        with torch.no_grad(), torch.autocast(wave.device.type, enabled=False):
            for b, n in enumerate(lengths.tolist()):
                clip = wave[b, :n]
                clip = F.pad(clip, (0, (-n) % SAMPLES_PER_FRAME)).float()
                mels.append(whisper.log_mel_spectrogram(clip, n_mels=self.n_mels))  # (n_mels, 2 T_b)
        width = max(m.shape[1] for m in mels)
        return torch.stack([F.pad(m, (0, width - m.shape[1])) for m in mels])  # (B, n_mels, 2 T_max)

    def front(self, wave: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the trainable encoder takes, computed from the waveform (outside an exported graph):
        ``wave`` (B, S) 16 kHz samples, ``mask`` (B, S) True at real samples -> each clip's log-mel
        ``(B, n_mels, 2 T)`` and the frame mask ``(B, T)``, ``T_b = ceil(S_b / 320)``."""
        lengths = mask.sum(dim=1)  # (B,) samples
        frames = torch.clamp((lengths + SAMPLES_PER_FRAME - 1) // SAMPLES_PER_FRAME, min=1)  # (B,)
        if int(frames.max()) > self.n_ctx:
            raise MmserError(f"a clip of {int(lengths.max()) / SAMPLE_RATE:.1f} s is longer than the encoder's "
                             f"{self.n_ctx * SAMPLES_PER_FRAME / SAMPLE_RATE:.0f} s input: cut it into windows")
        mel = self.log_mel(wave, lengths)  # (B, n_mels, 2T)
        frame_mask = torch.arange(mel.shape[2] // 2, device=mel.device)[None] < frames[:, None]  # (B, T)
        return mel, frame_mask

    def body(self, mel: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``mel`` (B, n_mels, 2T), ``frame_mask`` (B, T) -> every hidden state ``(B, n_layer + 1, T, D)`` (the
        last after ``ln_post``) and the frame mask."""
        # conv2 (stride 2) reads mel frames 2t-1 .. 2t+1 only, so a clip's frames never see another's padding;
        # the zero padding equals the convolutions' own padding at the clip's end
        x = F.gelu(self.conv1(mel))  # (B, D, 2T)
        x = F.gelu(self.conv2(x)).permute(0, 2, 1)  # (B, T, D)
        x = x + self.positional_embedding[:x.shape[1]]
        states = [x]
        for block in self.blocks:
            x = block(x, frame_mask)
            states.append(x)
        states[-1] = self.ln_post(x)
        return torch.stack(states, dim=1), frame_mask  # (B, L, T, D), (B, T)

    def forward(self, wave: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``wave`` (B, S), ``mask`` (B, S) -> every hidden state ``(B, L, T, D)`` and the frame mask ``(B, T)``."""
        return self.body(*self.front(wave, mask))


class HFWholeEncoder(nn.Module):
    """A wav2vec2-family model over padded waveform batches: ``(B, S)`` -> ``(B, L, T, D)``."""

    def __init__(self, arch: dict):
        super().__init__()
        from transformers import AutoConfig, AutoModel

        config = dict(arch["config"])
        model_type = config.get("model_type", "")
        if model_type not in WHOLE_HF_FAMILIES:
            raise MmserError(f"fine-tuning a {model_type!r} encoder is not supported (supported: {list(WHOLE_HF_FAMILIES)})")
        settings = {k: v for k, v in config.items() if k not in ("model_type", "transformers_version", "architectures")}
        built = AutoConfig.for_model(model_type, **settings)
        built.layerdrop = 0.0  # a skipped layer would leave its hidden state a copy of the one below
        self.model = AutoModel.from_config(built)
        self.normalize, self.use_mask = bool(arch["normalize"]), bool(arch["use_mask"])

    def front(self, wave: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the trainable encoder takes: ``wave`` (B, S) 16 kHz samples, ``mask`` (B, S) True at real
        samples -> the clips zero at padding, each standardised over its own samples when the model's feature
        extractor does so, ``(B, S)``, and the sample mask."""
        x = wave.float() * mask
        if self.normalize:  # each clip to zero mean, unit variance over its own samples, as the extractor does
            n = mask.sum(dim=1).clamp_min(1)[:, None].float()  # (B, 1) samples
            mean = x.sum(dim=1, keepdim=True) / n
            var = ((x - mean) ** 2 * mask).sum(dim=1, keepdim=True) / n
            x = (x - mean) / torch.sqrt(var + 1e-7) * mask
        return x, mask

    def body(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (B, S) from :meth:`front`, ``mask`` (B, S) -> every hidden state ``(B, L, T, D)`` and the frame
        mask ``(B, T)``."""
        lengths = mask.sum(dim=1)  # (B,) samples
        frames = self.model._get_feat_extract_output_lengths(lengths)  # (B,)
        if self.use_mask:
            out = self.model(x, attention_mask=mask.long(), output_hidden_states=True)
            hidden = torch.stack(out.hidden_states, dim=1)  # (B, L, T, D)
        else:  # group-norm feature encoders normalise over the whole input: padding would change a clip's frames
            parts = [torch.stack(self.model(x[b:b + 1, :n], output_hidden_states=True).hidden_states, dim=1)
                     for b, n in enumerate(lengths.tolist())]  # (1, L, T_b, D) each
            t = max(p.shape[2] for p in parts)
            hidden = torch.cat([F.pad(p, (0, 0, 0, t - p.shape[2])) for p in parts])  # (B, L, T, D)
        t = hidden.shape[2]
        frame_mask = torch.arange(t, device=hidden.device)[None] < frames[:, None].to(hidden.device)  # (B, T)
        return hidden, frame_mask

    def forward(self, wave: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``wave`` (B, S), ``mask`` (B, S) -> every hidden state ``(B, L, T, D)`` and the frame mask ``(B, T)``."""
        return self.body(*self.front(wave, mask))


def build_whole_encoder(arch: dict) -> nn.Module:
    """The module ``arch`` describes (see the module docstring)."""
    family = arch.get("family")
    if family == "whisper_encoder":
        return WhisperWholeEncoder(arch)
    if family == "hf_encoder":
        return HFWholeEncoder(arch)
    raise MmserError(f"unknown whole-encoder family {family!r}")


def whole_encoder_weights(encoder) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(arch, state)`` of an opened audio encoder, whole (pretrained weights, keys of the module
    :func:`build_whole_encoder` makes). ``encoder``: a ``WhisperTorchEncoder`` (clip window) or
    ``HFAudioEncoder`` returning every hidden state."""
    module = getattr(encoder, "encoder", None)  # openai-whisper AudioEncoder
    model = getattr(encoder, "model", None)  # transformers model
    available = (len(module.blocks) if module is not None and hasattr(module, "blocks") else
                 getattr(getattr(model, "config", None), "num_hidden_layers", -1)) + 1
    if getattr(encoder, "num_layers", None) != available:
        raise MmserError(f"model.finetune.top_layers=all needs every hidden state of {encoder.encoder_id} "
                         f"(features.audio_layers=all)")
    if module is not None and hasattr(module, "blocks"):
        if getattr(encoder, "window", "clip") != "clip":
            raise MmserError("model.finetune.top_layers=all: Whisper encoders need features.whisper_window=clip")
        arch = {"family": "whisper_encoder", "n_mels": int(module.conv1.in_channels),
                "n_ctx": int(module.positional_embedding.shape[0]), "n_state": int(module.ln_post.normalized_shape[0]),
                "n_head": int(module.blocks[0].attn.n_head), "n_layer": len(module.blocks)}
        return arch, {k: v.detach() for k, v in module.state_dict().items()}  # loaded by copy into the model
    if model is not None and hasattr(getattr(model, "encoder", None), "layers"):
        arch = {"family": "hf_encoder", "config": json.loads(model.config.to_json_string()),
                "normalize": bool(encoder.normalize), "use_mask": bool(encoder.use_mask)}
        return arch, {f"model.{k}": v.detach() for k, v in model.state_dict().items()}
    raise MmserError(f"model.finetune.top_layers=all: encoder {encoder.encoder_id} does not expose its weights to "
                     "PyTorch (use whisper-ct2:, whisper: or hf: encoders)")


def max_samples(arch: dict) -> int | None:
    """The longest input the encoder takes, in samples (None: no limit)."""
    if arch.get("family") == "whisper_encoder":
        return int(arch["n_ctx"]) * SAMPLES_PER_FRAME
    return None
