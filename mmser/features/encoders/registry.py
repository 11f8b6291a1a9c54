"""Encoder specs (``kind:name``) -> encoder objects. One small explicit registry.

Audio: ``hf:<id|dir>`` (wav2vec2 family), ``whisper:<name|ckpt.pt>`` (openai-whisper),
``whisper-ct2:<tiny.en|base|small|dir>`` (CTranslate2 weights in PyTorch, every layer),
``faster-whisper:<tiny.en|base|small|dir>`` (CTranslate2 runtime, last layer), ``mfcc:<n>`` (MFCC frames).
Text: ``bert:<minilm|id|dir>``.
"""

from __future__ import annotations

from mmser.errors import MmserError

AUDIO_KINDS = ("hf", "whisper", "whisper-ct2", "faster-whisper", "mfcc")
TEXT_KINDS = ("bert",)


def build_audio_encoder(spec: str, layers: str = "all", device: str = "cpu", batch_size: int = 8,
                        whisper_window: str = "30s"):
    kind = spec.partition(":")[0]
    if kind == "hf":
        from mmser.features.encoders.hf_audio import HFAudioEncoder

        return HFAudioEncoder(spec, layers, device, batch_size)
    if kind in ("whisper", "whisper-ct2"):
        from mmser.features.encoders.whisper_frames import WhisperTorchEncoder

        return WhisperTorchEncoder(spec, layers, device, batch_size, whisper_window)
    if kind == "mfcc":
        from mmser.features.encoders.mfcc import MFCCEncoder

        return MFCCEncoder(spec)
    if kind == "faster-whisper":
        from mmser.features.encoders.whisper_frames import FasterWhisperEncoder

        return FasterWhisperEncoder(spec, device, batch_size)
    raise MmserError(f"unknown audio encoder {spec!r}: use one of {[k + ':NAME' for k in AUDIO_KINDS]}")


def build_text_encoder(spec: str, layers: str = "last", device: str = "cpu", batch_size: int = 32,
                       max_tokens: int = 64):
    kind = spec.partition(":")[0]
    if kind == "bert":
        from mmser.features.encoders.text import BertTextEncoder

        return BertTextEncoder(spec, layers, device, batch_size, max_tokens)
    raise MmserError(f"unknown text encoder {spec!r}: use bert:<minilm|model id|folder>")


def is_text_spec(spec: str) -> bool:
    return spec.partition(":")[0] in TEXT_KINDS
