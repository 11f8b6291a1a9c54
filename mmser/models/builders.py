"""Model dimensions (stored in every checkpoint), dims from config, and the one builder that turns them into a model."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from mmser.config import MODEL_KINDS, WHOLE_ENCODER, finetune_depth
from mmser.labels import NUM_CLASSES
from mmser.models.finetune import TopBlocks, pool_masked
from mmser.models.fusion import CrossModalFusion
from mmser.models.head import EmotionHead
from mmser.models.pooling import AttentiveStatsPooling, LayerWeights
from mmser.models.whole_encoder import build_whole_encoder

AUDIO_BRANCH = ("top_blocks.", "audio_encoder.", "audio_layers.", "audio_cnn.", "audio_proj.", "audio_pool.", "head.")  # what a fused model takes from audio-only


@dataclass(frozen=True)
class ModelDims:
    """Everything needed to rebuild a model (whisper's ``ModelDimensions`` habit)."""

    kind: str  # one of MODEL_KINDS
    audio_dim: int = 0  # D of the acoustic encoder (0 = no audio)
    num_audio_layers: int = 0  # hidden states per clip from the acoustic encoder (after layer selection)
    text_dim: int = 0  # D of the text encoder (0 = no text)
    num_text_layers: int = 0  # hidden states per token sequence from the text encoder
    hidden_dim: int = 256  # projection size of each modality; pooled vectors are 2 * hidden_dim
    num_heads: int = 4  # cross_attn heads
    num_fusion_layers: int = 1
    fusion_dropout: float = 0.1
    dropout: float = 0.2
    class_mask: tuple[bool, ...] = field(default_factory=lambda: (True,) * NUM_CLASSES)
    # model.finetune.top_layers: the audio encoder's top K blocks are part of the model (0 = frozen encoder).
    # Its input is then every hidden state unpooled; it recomputes the top K and pools by frame_stride itself.
    # WHOLE_ENCODER (top_layers=all): the whole encoder is part of the model, whose audio input is the waveform
    finetune_layers: int = 0
    frame_stride: int = 1  # frames averaged per model frame after the encoder's blocks (fine-tuning models only)
    # JSON arch of the encoder's top blocks (mmser.models.finetune) or of the whole encoder
    # (mmser.models.whole_encoder), "" when frozen
    encoder_blocks: str = ""
    audio_cnn_channels: int = 0  # channels of a 1D-CNN front end over the audio frames (0 = none)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["class_mask"] = list(self.class_mask)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "ModelDims":
        data = dict(data)
        data["class_mask"] = tuple(bool(x) for x in data.get("class_mask", [True] * NUM_CLASSES))
        return cls(**data)

    @property
    def uses_audio(self) -> bool:
        return self.kind != "text_only"

    @property
    def uses_text(self) -> bool:
        return self.kind != "audio_only"

    @property
    def reads_waveforms(self) -> bool:
        """The audio input is the waveform ``(B, S)`` (the whole encoder is part of the model)."""
        return self.uses_audio and self.finetune_layers == WHOLE_ENCODER


class FrameCNN(nn.Module):
    """Two 1D convolutions over time (kernel 5, same length), ReLU and dropout: ``(B, T, D) -> (B, T, C)``."""

    def __init__(self, dim: int, channels: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(dim, channels, 5, padding=2), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Conv1d(channels, channels, 5, padding=2), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.transpose(1, 2)).transpose(1, 2)  # (B, T, C)


class EmotionModel(nn.Module):
    """Audio-only, text-only, concat (late fusion) or cross-attention fusion, one shared head.

    Fused kinds add the fused representation to the pooled audio vector through ``fuse`` (a linear
    map): with ``fuse`` zero-initialised (``init_from_audio_only``) the fused model starts as exactly the
    audio-only model it was initialised from, so fusion can only add to it.
    """

    def __init__(self, dims: ModelDims):
        super().__init__()
        if dims.kind not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {dims.kind!r}: {MODEL_KINDS}")
        self.dims, h = dims, dims.hidden_dim
        if dims.uses_audio and dims.finetune_layers > 0:
            self.top_blocks = TopBlocks(json.loads(dims.encoder_blocks), dims.finetune_layers)
        if dims.reads_waveforms:
            self.audio_encoder = build_whole_encoder(json.loads(dims.encoder_blocks))
        if dims.uses_audio:
            self.audio_layers = LayerWeights(dims.num_audio_layers)
            frame_dim = dims.audio_dim
            if dims.audio_cnn_channels > 0:
                self.audio_cnn = FrameCNN(dims.audio_dim, dims.audio_cnn_channels, dims.dropout)
                frame_dim = dims.audio_cnn_channels
            self.audio_proj = nn.Sequential(nn.LayerNorm(frame_dim), nn.Linear(frame_dim, h))
            self.audio_pool = AttentiveStatsPooling(h)
        if dims.uses_text:
            self.text_layers = LayerWeights(dims.num_text_layers)
            self.text_proj = nn.Sequential(nn.LayerNorm(dims.text_dim), nn.Linear(dims.text_dim, h))
            self.text_pool = AttentiveStatsPooling(h)
        if dims.kind == "cross_attn":
            self.fusion = CrossModalFusion(h, dims.num_heads, dims.num_fusion_layers, dims.fusion_dropout)
            self.aligned_audio_pool = AttentiveStatsPooling(h)
            self.fuse = nn.Linear(4 * h, 2 * h)  # [aligned audio, aligned text] pooled -> added to pooled audio
        elif dims.kind == "concat":
            self.fuse = nn.Linear(2 * h, 2 * h)  # pooled text -> added to pooled audio
        self.head = EmotionHead(2 * h, h, dims.dropout, list(dims.class_mask))

    def forward(self, audio: torch.Tensor | None = None, audio_mask: torch.Tensor | None = None,
                text: torch.Tensor | None = None, text_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, 8)``.

        Args:
            audio: (B, L_a, T, D_a) encoder hidden states; audio_mask: (B, T) bool, True = valid frame. A model
                that trains the whole encoder (``dims.reads_waveforms``) takes 16 kHz waveforms (B, S) and
                their sample mask (B, S) instead.
            text: (B, L_t, N, D_t) token hidden states; text_mask: (B, N) bool, True = valid token.
            Inputs may be float16 (batches keep the cache's precision up to the device): they are cast to
            float32 here, on the model's device.
        """
        if self.dims.uses_audio and self.dims.reads_waveforms:
            audio, audio_mask = self.audio_encoder.front(audio.float(), audio_mask)  # the encoder's own input
        return self.from_encoder_input(audio, audio_mask, text, text_mask)

    def from_encoder_input(self, audio: torch.Tensor | None, audio_mask: torch.Tensor | None,
                           text: torch.Tensor | None, text_mask: torch.Tensor | None) -> torch.Tensor:
        """Logits ``(B, 8)`` from what the trained modules read (the graph ``mmser export onnx`` writes): as
        :meth:`forward`, except that a model training the whole encoder takes its encoder's input, made from
        the waveforms by ``audio_encoder.front`` (Whisper: log-mel ``(B, n_mels, 2T)`` + frame mask ``(B, T)``;
        wav2vec2 family: standardised waveforms ``(B, S)`` + sample mask ``(B, S)``)."""
        kind = self.dims.kind
        if self.dims.uses_audio:
            audio = audio.float()  # (B, L_a, T, D), or the whole encoder's input
            if self.dims.reads_waveforms:
                audio, audio_mask = self.audio_encoder.body(audio, audio_mask)  # (B, L_a, T, D), (B, T)
                audio, audio_mask = pool_masked(audio, audio_mask, self.dims.frame_stride)
            elif self.dims.finetune_layers > 0:
                audio, audio_mask = self.recompute_top(audio, audio_mask)
            a = self.audio_layers(audio)  # (B, T, D_a)
            if self.dims.audio_cnn_channels > 0:
                a = self.audio_cnn(a)  # (B, T, C)
            a = self.audio_proj(a)  # (B, T, H)
            pooled = self.audio_pool(a, audio_mask)  # (B, 2H)
        if self.dims.uses_text:
            t = self.text_proj(self.text_layers(text.float()))  # (B, N, H)
        if kind == "text_only":
            pooled = self.text_pool(t, text_mask)  # (B, 2H)
        elif kind == "concat":
            pooled = pooled + self.fuse(self.text_pool(t, text_mask))  # (B, 2H)
        elif kind == "cross_attn":
            a_aligned, t_aligned = self.fusion(a, audio_mask, t, text_mask)  # (B, T, H), (B, N, H)
            both = torch.cat([self.aligned_audio_pool(a_aligned, audio_mask), self.text_pool(t_aligned, text_mask)], -1)
            pooled = pooled + self.fuse(both)  # (B, 2H)
        return self.head(pooled)

    def recompute_top(self, audio: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every hidden state ``(B, L_a, T, D)`` at the encoder's frame rate -> the frozen ones kept, the top K
        recomputed by the trainable blocks, all pooled by ``frame_stride``: ``(B, L_a, T', D)`` and mask ``(B, T')``."""
        keep = audio.shape[1] - self.dims.finetune_layers  # states 0 .. N - K come from the frozen encoder
        top = self.top_blocks(audio[:, keep - 1], mask)  # (B, K, T, D)
        return pool_masked(torch.cat([audio[:, :keep], top], dim=1), mask, self.dims.frame_stride)

    def forward_batch(self, batch: dict) -> torch.Tensor:
        """Logits ``(B, 8)`` of a collated batch (whichever modalities it carries)."""
        return self(batch.get("audio"), batch.get("audio_mask"), batch.get("text"), batch.get("text_mask"))

    def init_from_audio_only(self, state: dict[str, torch.Tensor]) -> list[str]:
        """Copy the audio branch and head of a trained audio-only model; zero ``fuse``. Returns copied keys."""
        if self.dims.kind not in ("concat", "cross_attn"):
            raise ValueError("only fused models start from an audio-only model")
        own = self.state_dict()
        copied = [k for k in state if k.startswith(AUDIO_BRANCH) and k in own and own[k].shape == state[k].shape]
        self.load_state_dict({k: state[k] for k in copied}, strict=False)
        nn.init.zeros_(self.fuse.weight)
        nn.init.zeros_(self.fuse.bias)
        return copied

    def freeze_audio_branch(self) -> int:
        """Stop gradients into the audio branch and the head; returns how many tensors were frozen."""
        frozen = [p for name, p in self.named_parameters() if name.startswith(AUDIO_BRANCH)]
        for p in frozen:
            p.requires_grad_(False)
        return len(frozen)


def build_model(dims: ModelDims) -> EmotionModel:
    return EmotionModel(dims)


def dims_from_config(model_cfg, audio_shape: tuple[int, int] | None, text_shape: tuple[int, int] | None,
                     class_mask: tuple[bool, ...], encoder_blocks: dict | None = None, frame_stride: int = 1) -> ModelDims:
    """``ModelDims`` of ``cfg.model`` fed by audio frames and/or text tokens of the given ``(layers, dim)``
    shapes (None: that modality is not used), predicting the classes of ``class_mask``; with
    ``model.finetune.top_layers`` set, ``encoder_blocks`` is the arch of the audio encoder's top blocks
    (:func:`mmser.models.finetune.encoder_top_blocks`) or of the whole encoder
    (:func:`mmser.models.whole_encoder.whole_encoder_weights`) and ``frame_stride`` the stride the model
    pools by."""
    top = finetune_depth(model_cfg.finetune) if audio_shape else 0
    if top and encoder_blocks is None:
        raise ValueError("model.finetune.top_layers needs the audio encoder's arch")
    a_layers, a_dim = audio_shape or (0, 0)
    t_layers, t_dim = text_shape or (0, 0)
    return ModelDims(kind=str(model_cfg.kind), audio_dim=a_dim, num_audio_layers=a_layers, text_dim=t_dim,
                     num_text_layers=t_layers, hidden_dim=int(model_cfg.hidden_dim),
                     num_heads=int(model_cfg.fusion.num_heads), num_fusion_layers=int(model_cfg.fusion.num_layers),
                     fusion_dropout=float(model_cfg.fusion.dropout), dropout=float(model_cfg.dropout),
                     class_mask=tuple(class_mask), finetune_layers=top, frame_stride=frame_stride if top else 1,
                     encoder_blocks=json.dumps(encoder_blocks, sort_keys=True) if top else "",
                     audio_cnn_channels=int(model_cfg.audio_cnn_channels) if audio_shape else 0)
