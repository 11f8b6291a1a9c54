"""Prediction on new clips: ``Predictor.from_checkpoint(path).predict(audio_or_path, transcript=None)``.

The checkpoint alone says which encoders, layers, Whisper window and frame stride the models were
trained on; the predictor loads those encoders once (checking their weight fingerprints), encodes the
clip and its transcript, and averages the members' probabilities. Clips longer than ``window_s`` are
cut into windows: each window gets a prediction and the overall one is their duration-weighted mean.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mmser.audio import SAMPLE_RATE, load_audio, validate_waveform
from mmser.checkpoint import CheckpointError, load_checkpoint
from mmser.data.dataset import collate
from mmser.encoders.registry import build_audio_encoder, build_text_encoder
from mmser.errors import MmserError
from mmser.evaluation.features import pool_frames
from mmser.labels import EMOTIONS
from mmser.training.lit_module import forward_batch

DEFAULT_WINDOW_S = 30.0  # s, longer clips are predicted window by window


@dataclass
class Prediction:
    label: str
    probabilities: dict[str, float]
    duration_s: float
    windows: list[dict] = field(default_factory=list)  # per-window label/probabilities for long clips

    def to_dict(self) -> dict:
        out = {"label": self.label, "probabilities": self.probabilities, "duration_s": round(self.duration_s, 3)}
        if self.windows:
            out["windows"] = self.windows
        return out


class Predictor:
    def __init__(self, checkpoint, device: str = "cpu", window_s: float = DEFAULT_WINDOW_S, asr=None,
                 strict_fingerprints: bool = True):
        self.ckpt, self.device, self.window_s, self.asr = checkpoint, device, window_s, asr
        f = checkpoint.meta["features"]
        self.frame_stride = int(f.get("frame_stride", 1))
        self.audio_encoders = {}
        for member in checkpoint.members:
            spec = member.audio_encoder
            if spec and spec not in self.audio_encoders:
                enc = build_audio_encoder(spec, f["audio_layers"], device, 1, f.get("whisper_window", "30s"))
                if strict_fingerprints and member.audio_fingerprint and enc.fingerprint != member.audio_fingerprint:
                    raise CheckpointError(f"encoder {spec}: its weights (fingerprint {enc.fingerprint}) differ from those "
                                          f"the checkpoint was trained on ({member.audio_fingerprint})")
                self.audio_encoders[spec] = enc
        self.text_encoder = None
        if checkpoint.meta.get("text_encoder"):
            t = checkpoint.meta["text_encoder"]
            self.text_encoder = build_text_encoder(t["spec"], f["text_layers"], device, 1, f["max_text_tokens"])
            if strict_fingerprints and t.get("fingerprint") and self.text_encoder.fingerprint != t["fingerprint"]:
                raise CheckpointError(f"text encoder {t['spec']}: weights differ from those the checkpoint was trained on")
        for member in checkpoint.members:
            member.model.to(device).eval()
        self._lock = threading.Lock()  # encoders and models are shared: one request at a time through them

    @classmethod
    def from_checkpoint(cls, path: str | Path, **kwargs) -> "Predictor":
        return cls(load_checkpoint(path), **kwargs)

    @property
    def needs_text(self) -> bool:
        return self.text_encoder is not None

    @torch.inference_mode()
    def _probabilities(self, wav: np.ndarray, transcript: str | None) -> np.ndarray:
        """Member-averaged probabilities ``(8,)`` of one window."""
        frames = {spec: pool_frames(enc.encode([wav])[0], self.frame_stride) for spec, enc in self.audio_encoders.items()}
        tokens = self.text_encoder.encode([transcript or ""])[0] if self.text_encoder else None
        probs = []
        for member in self.ckpt.members:
            item = {"index": 0, "target": 0, "audio": frames.get(member.audio_encoder) if member.audio_encoder else None,
                    "text": tokens if member.text_source else None}
            batch = {k: (v.to(self.device) if torch.is_tensor(v) else v) for k, v in collate([item]).items()}
            probs.append(torch.softmax(forward_batch(member.model, batch).float(), -1)[0].cpu().numpy())
        return np.mean(probs, axis=0)

    def predict(self, audio: str | Path | np.ndarray, transcript: str | None = None, sample_rate: int = SAMPLE_RATE,
                transcribe: bool = False) -> Prediction:
        """Label and 8 probabilities for a clip (path, or mono float32 waveform at ``sample_rate``)."""
        if isinstance(audio, (str, Path)):
            wav = load_audio(audio, min_duration_s=0.0)
            source = str(audio)
        else:
            from mmser.audio import resample

            wav = resample(np.asarray(audio, dtype=np.float32).reshape(-1), sample_rate)
            source = "<waveform>"
        validate_waveform(wav, source, SAMPLE_RATE, min_duration_s=0.02)
        if self.needs_text and transcript is None:
            if not transcribe:
                raise MmserError(f"{source}: this is a fused/text model and needs a transcript "
                                 "(give --transcript TEXT, or --transcribe to use Whisper)")
            transcript = self._transcribe(wav)
        step = int(self.window_s * SAMPLE_RATE)
        pieces = [wav[i:i + step] for i in range(0, len(wav), step)]
        pieces = [p for p in pieces if len(p) >= 0.5 * SAMPLE_RATE] or pieces[:1]  # drop a tiny tail window
        with self._lock:
            window_probs = [self._probabilities(p, transcript) for p in pieces]
        weights = np.array([len(p) for p in pieces], dtype=float)
        overall = (np.array(window_probs) * weights[:, None]).sum(0) / weights.sum()
        windows = []
        if len(pieces) > 1:
            windows = [{"start_s": round(i * self.window_s, 2), "label": EMOTIONS[int(np.argmax(p))],
                        "probabilities": {e: round(float(x), 6) for e, x in zip(EMOTIONS, p)}}
                       for i, p in enumerate(window_probs)]
        return Prediction(EMOTIONS[int(np.argmax(overall))], {e: round(float(x), 6) for e, x in zip(EMOTIONS, overall)},
                          len(wav) / SAMPLE_RATE, windows)

    def _transcribe(self, wav: np.ndarray) -> str:
        if self.asr is None:
            from mmser.encoders.asr import DEFAULT_ASR, build_asr

            self.asr = build_asr(DEFAULT_ASR)
        return self.asr.transcribe(wav)
