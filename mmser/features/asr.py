"""Whisper transcription backends and WER against gold transcripts.

Specs: ``faster-whisper:<tiny.en|base|small|dir>`` (CTranslate2; offline default tiny.en) and
``openai-whisper:<name|checkpoint.pt>``. The transcript column is named after the model
(``asr_faster-whisper_tiny.en``).
"""

from __future__ import annotations

import re
import string

import numpy as np
import pandas as pd

from mmser.audio import SAMPLE_RATE
from mmser.features.encoders.base import ModelUnavailableError
from mmser.errors import MmserError

DEFAULT_ASR = "faster-whisper:tiny.en"
WINDOW_SAMPLES = 30 * SAMPLE_RATE  # Whisper decodes 30 s windows


def asr_column(spec: str) -> str:
    """Manifest column holding the transcripts of ``spec``."""
    return "asr_" + re.sub(r"[^A-Za-z0-9._-]+", "_", spec.replace(":", "_"))


class SequentialASR:
    """``transcribe_many`` for backends that decode one clip at a time."""

    batch_size = 1

    def transcribe_many(self, wavs: list[np.ndarray]) -> list[str]:
        return [self.transcribe(wav) for wav in wavs]


class FasterWhisperASR(SequentialASR):
    """faster-whisper (CTranslate2) at temperature 0, without timestamp tokens.

    With ``batch_size`` > 1, ``transcribe_many`` decodes up to that many 30 s windows at once
    (``BatchedInferencePipeline``): each clip is cut into windows of at most 30 s, so no window ever
    holds two clips and every transcript is that of its own clip.
    """

    def __init__(self, name: str, device: str = "cpu", language: str | None = "en", beam_size: int = 5,
                 compute_type: str = "int8", batch_size: int = 1):
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        from mmser.features.encoders.model_paths import whisper_ct2_dir

        kind, _, index = device.partition(":")
        self.model = WhisperModel(str(whisper_ct2_dir(name)), device=kind, device_index=int(index or 0),
                                  compute_type=compute_type)
        self.language = None if name.endswith(".en") else language
        self.beam_size = beam_size
        # one language per batch would be detected, so a multilingual model without a language decodes per clip
        multilingual_detect = self.language is None and self.model.model.is_multilingual
        self.batch_size = 1 if multilingual_detect else max(1, int(batch_size))
        self.pipeline = BatchedInferencePipeline(self.model) if self.batch_size > 1 else None

    def transcribe(self, wav: np.ndarray) -> str:
        # temperature 0 only (no sampling fallback: the same clip always gives the same transcript) and no
        # timestamp tokens (emotion models use the words only)
        segments, _ = self.model.transcribe(wav, language=self.language, beam_size=self.beam_size,
                                            condition_on_previous_text=False, temperature=0.0,
                                            without_timestamps=True)
        return " ".join(s.text.strip() for s in segments).strip()

    def words(self, wav: np.ndarray) -> list[tuple[float, float, str]]:
        """(start s, end s, word) of each word of a recording (Whisper's word timestamps), at temperature 0."""
        segments, _ = self.model.transcribe(wav, language=self.language, beam_size=self.beam_size,
                                            condition_on_previous_text=False, temperature=0.0, word_timestamps=True)
        return [(float(w.start), float(w.end), w.word) for s in segments for w in (s.words or [])]

    def transcribe_many(self, wavs: list[np.ndarray]) -> list[str]:
        """Transcripts of 16 kHz mono float32 clips, in order; clips of any length (empty gives "")."""
        if self.pipeline is None:
            return super().transcribe_many(wavs)
        # windows[k] = (clip index, first sample, end sample) in the concatenated audio
        windows, pieces, offset = [], [], 0
        for clip, wav in enumerate(wavs):
            for start in range(0, len(wav), WINDOW_SAMPLES):
                end = min(start + WINDOW_SAMPLES, len(wav))
                windows.append((clip, offset + start, offset + end))
            pieces.append(wav)
            offset += len(wav)
        if not windows:
            return ["" for _ in wavs]
        audio = np.concatenate(pieces, dtype=np.float32)  # (sum of clip samples,)
        # the pipeline turns seconds back into samples with int(): +0.5 sample lands on the exact sample
        clip_timestamps = [{"start": (a + 0.5) / SAMPLE_RATE, "end": (b + 0.5) / SAMPLE_RATE} for _, a, b in windows]
        starts = np.array([a for _, a, _ in windows]) / SAMPLE_RATE  # (windows,) seconds
        segments, _ = self.pipeline.transcribe(audio, language=self.language or "en", beam_size=self.beam_size,
                                               clip_timestamps=clip_timestamps, batch_size=self.batch_size,
                                               temperature=0.0, condition_on_previous_text=False,
                                               without_timestamps=True)
        texts: list[list[str]] = [[] for _ in wavs]
        for seg in segments:
            # a segment lies inside its window: its midpoint names the window, and so the clip
            window = int(np.searchsorted(starts, (seg.start + seg.end) / 2, side="right")) - 1
            texts[windows[max(window, 0)][0]].append(seg.text.strip())
        return [" ".join(t for t in parts if t).strip() for parts in texts]


class OpenAIWhisperASR(SequentialASR):
    def __init__(self, name: str, device: str = "cpu", language: str | None = "en", beam_size: int = 5):
        import whisper

        try:
            self.model = whisper.load_model(name, device=device)
        except (RuntimeError, OSError) as err:
            raise ModelUnavailableError(f"openai-whisper:{name}", str(err).splitlines()[0],
                                        "Pass the path of a local openai-whisper checkpoint (.pt)") from None
        self.language, self.beam_size = language, beam_size

    def transcribe(self, wav: np.ndarray) -> str:
        out = self.model.transcribe(wav, language=self.language, beam_size=self.beam_size, fp16=False,
                                    condition_on_previous_text=False, temperature=0.0, without_timestamps=True)
        return str(out["text"]).strip()

    def words(self, wav: np.ndarray) -> list[tuple[float, float, str]]:
        """(start s, end s, word) of each word of a recording (Whisper's word timestamps), at temperature 0."""
        out = self.model.transcribe(wav, language=self.language, beam_size=self.beam_size, fp16=False,
                                    condition_on_previous_text=False, temperature=0.0, word_timestamps=True)
        return [(float(w["start"]), float(w["end"]), w["word"]) for s in out["segments"] for w in s.get("words", [])]


def build_asr(spec: str, device: str = "cpu", language: str | None = "en", beam_size: int = 5,
              batch_size: int = 1):
    """An ASR backend for ``spec``; ``batch_size`` > 1 batches faster-whisper decoding (openai-whisper: per clip)."""
    from mmser.devices import resolve_device

    backend, _, name = spec.partition(":")
    device = resolve_device(device)
    if backend == "faster-whisper":
        return FasterWhisperASR(name or "tiny.en", device, language, beam_size, batch_size=batch_size)
    if backend == "openai-whisper":
        return OpenAIWhisperASR(name, device, language, beam_size)
    raise MmserError(f"unknown ASR backend in {spec!r}: use faster-whisper:MODEL or openai-whisper:MODEL")


_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")


def normalize_text(text: str) -> str:
    """Lower-case, drop punctuation, squeeze spaces (for WER)."""
    return " ".join(_PUNCT.sub(" ", str(text).lower()).split())


def wer_report(df: pd.DataFrame, hyp_col: str, ref_col: str = "transcript") -> dict:
    """WER (jiwer) overall, per corpus and per speaker, over rows with a gold transcript."""
    import jiwer

    rows = df[df[ref_col].astype(str).str.strip() != ""]
    if rows.empty:
        raise MmserError("no gold transcripts to compute WER against")

    def wer(part: pd.DataFrame) -> float:
        refs = [normalize_text(t) or "<empty>" for t in part[ref_col]]
        hyps = [normalize_text(t) for t in part[hyp_col].fillna("")]
        return float(jiwer.wer(refs, hyps))

    report = {"asr": hyp_col, "utterances": int(len(rows)), "wer": wer(rows)}
    for key in ("corpus", "speaker"):
        if key in rows.columns:
            report[f"per_{key}"] = {str(k): wer(g) for k, g in rows.groupby(key)}
    return report
