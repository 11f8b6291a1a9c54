"""The feature pipeline's settings, frozen: one :class:`FeatureSpec` from config to checkpoint to prediction.

Built and validated once from ``cfg.features`` (:meth:`FeatureSpec.from_config`), stored in every
checkpoint beside each member's ``ModelDims`` (:meth:`to_dict` / :meth:`from_dict`), and used alike by
extraction, cross-validation and :class:`~mmser.inference.Predictor`:

- :meth:`FeatureSpec.open_audio_encoder` / :meth:`open_text_encoder` are the one place encoders are opened;
- :meth:`FeatureSpec.pooled`, then :meth:`FeatureSpec.standardised`, are the one place encoder frames become
  model inputs (frame pooling, then per-speaker standardisation; the moments are taken of pooled frames).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mmser.config import ENROLMENT_MODES, PER_SPEAKER_MODES, ConfigError, speaker_norm_problems
from mmser.features.frames import pool_frames
from mmser.features.speaker_norm import FrameMoments, standardise


@dataclass(frozen=True)
class SpeakerNorm:
    """``features.speaker_norm``: how a clip's frames are standardised with its speaker's statistics."""

    # off | instance (the clip's own statistics) | running (the speaker's clips so far) | transductive
    # (cross-validation only) | enrol
    mode: str = "off"
    clips: int | None = None  # enrol: K enrolment clips (other clips of the speaker)
    labels: tuple[str, ...] | None = None  # enrol: labels the enrolment clips are drawn among (None: any)
    test_labels: tuple[str, ...] | None = None  # cross-validation only: the test speakers' pool, when it differs
    prior_clips: float | None = None  # running: the training population's statistics start each speaker's, as this many clips
    test_clips: int | None = None  # cross-validation only: the test speakers' enrolment clips, when it differs

    @property
    def needs_enrolment(self) -> bool:
        """A model trained this way predicts only with other clips of the speaker (enrolment clips; for a
        transductive cross-validation model, the speaker's clips)."""
        return self.mode in ENROLMENT_MODES

    @property
    def leaves_clip_out(self) -> bool:
        """A clip never counts in its own speaker statistics (``enrol``: other clips of the speaker); a
        transductive model counts it, as it was trained."""
        return self.mode == "enrol"

    @property
    def test_enrolment_labels(self) -> tuple[str, ...] | None:
        """The labels a test speaker's enrolment clips are drawn among: ``test_labels`` when given, else
        ``labels`` (None: any)."""
        return self.test_labels if self.test_labels is not None else self.labels

    @property
    def test_enrolment_clips(self) -> int | None:
        """How many enrolment clips a test speaker's clip is standardised with: ``test_clips`` when given, else
        ``clips``."""
        return self.test_clips if self.test_clips is not None else self.clips

    @property
    def test_differs(self) -> bool:
        """Cross-validation standardises test clips with another draw than training's (``test_labels``,
        ``test_clips``)."""
        return self.test_enrolment_labels != self.labels or self.test_enrolment_clips != self.clips

    @property
    def per_speaker(self) -> bool:
        """Frames are standardised with statistics of other clips of the speaker (not the clip's alone)."""
        return self.mode in PER_SPEAKER_MODES


@dataclass(frozen=True)
class FeatureSpec:
    """What turns a waveform and a transcript into a model's inputs (every field a plain value)."""

    audio_encoders: tuple[str, ...] = ("faster-whisper:tiny.en",)  # encoder specs, e.g. "whisper-ct2:base"
    audio_layers: str = "all"  # hidden-state selection: "all", "last" or comma-separated indices
    whisper_window: str = "30s"  # "30s" (pad to Whisper's input) | "clip"
    frame_stride: int = 1  # encoder frames averaged per model frame
    text_encoder: str = "bert:minilm"
    text_layers: str = "last"
    max_text_tokens: int = 64  # tokens kept per transcript
    speaker_norm: SpeakerNorm = field(default_factory=SpeakerNorm)
    # model.finetune.top_layers: the model recomputes the encoder's top K hidden states and pools frames
    # itself (ModelDims.frame_stride), so frames reach it at the encoder's rate, unpooled; WHOLE_ENCODER
    # (mmser.config): the model reads waveforms and runs the whole encoder
    finetune_top_layers: int = 0
    # features.test_time_speeds: a clip is also predicted at these playback speeds, each copy standardised with
    # the clip's own statistics, and the probabilities averaged (mmser.features.augment.test_view_recipes)
    test_time_speeds: tuple[float, ...] = ()

    @classmethod
    def from_config(cls, features_cfg: Any, finetune_top_layers: int = 0) -> "FeatureSpec":
        """The spec of a (validated) ``cfg.features`` for models fine-tuning ``finetune_top_layers`` encoder
        blocks (``cfg.model.finetune.top_layers``); raises ConfigError naming a bad speaker_norm key."""
        sn = features_cfg.speaker_norm
        problems = speaker_norm_problems(sn)
        if problems:
            raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
        return cls(
            audio_encoders=tuple(features_cfg.audio_encoders), audio_layers=str(features_cfg.audio_layers),
            whisper_window=str(features_cfg.whisper_window), frame_stride=int(features_cfg.frame_stride),
            text_encoder=str(features_cfg.text_encoder), text_layers=str(features_cfg.text_layers),
            max_text_tokens=int(features_cfg.max_text_tokens),
            speaker_norm=SpeakerNorm(str(sn.mode), None if sn.clips is None else int(sn.clips),
                                     None if sn.labels is None else tuple(sn.labels),
                                     None if sn.test_labels is None else tuple(sn.test_labels),
                                     None if sn.get("prior_clips") is None else float(sn.prior_clips),
                                     None if sn.get("test_clips") is None else int(sn.test_clips)),
            finetune_top_layers=int(finetune_top_layers),
            test_time_speeds=tuple(float(x) for x in features_cfg.get("test_time_speeds") or ()),
        )

    def to_dict(self) -> dict:
        out = asdict(self)
        out["audio_encoders"] = list(self.audio_encoders)
        out["test_time_speeds"] = list(self.test_time_speeds)
        for key in ("labels", "test_labels"):
            value = out["speaker_norm"][key]
            out["speaker_norm"][key] = None if value is None else list(value)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureSpec":
        data = dict(data)
        sn = dict(data.pop("speaker_norm"))
        sn = SpeakerNorm(sn["mode"], sn["clips"], None if sn["labels"] is None else tuple(sn["labels"]),
                         None if sn["test_labels"] is None else tuple(sn["test_labels"]), sn.get("prior_clips"),
                         sn.get("test_clips"))
        return cls(**{**data, "audio_encoders": tuple(data["audio_encoders"]), "speaker_norm": sn,
                      "test_time_speeds": tuple(data.get("test_time_speeds", ()))})

    # ------------------------------------------------------------------------------------------ encoders
    def open_audio_encoder(self, spec: str, device: str = "cpu", batch_size: int = 8):
        """The audio encoder ``spec`` (one of :attr:`audio_encoders`) with this spec's layers and window."""
        from mmser.features.encoders.registry import build_audio_encoder

        return build_audio_encoder(spec, self.audio_layers, device, batch_size, self.whisper_window)

    def open_text_encoder(self, device: str = "cpu", batch_size: int = 32):
        """The text encoder with this spec's layers and token limit."""
        from mmser.features.encoders.registry import build_text_encoder

        return build_text_encoder(self.text_encoder, self.text_layers, device, batch_size, self.max_text_tokens)

    # ------------------------------------------------------------------------------------------ frames
    @property
    def input_pool_stride(self) -> int:
        """The frame pooling done before the model: :attr:`frame_stride`, or 1 for fine-tuning models, which
        pool after their own blocks."""
        return 1 if self.finetune_top_layers != 0 else self.frame_stride

    def pooled(self, frames: np.ndarray) -> np.ndarray:
        """One clip's encoder frames ``(L, T, D)`` pooled by :attr:`input_pool_stride` -> ``(L, ceil(T / s), D)``."""
        return pool_frames(frames, self.input_pool_stride)

    def standardised(self, pooled: np.ndarray, speaker: FrameMoments | None) -> np.ndarray:
        """Pooled frames ``(L, T, D)`` standardised with the speaker's moments (of pooled frames) when
        speaker standardisation is on (under ``running``: the moments of the speaker's clips so far, this
        one included), with their own moments under ``instance``; unchanged when it is off."""
        if self.speaker_norm.mode == "off":
            return pooled
        if self.speaker_norm.mode == "instance":
            return standardise(pooled, FrameMoments.of(pooled))
        if speaker is None:
            raise ValueError("speaker standardisation is on: the speaker's frame moments are needed")
        return standardise(pooled, speaker)
