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

from mmser.encoders.base import ModelUnavailableError
from mmser.errors import MmserError

DEFAULT_ASR = "faster-whisper:tiny.en"


def asr_column(spec: str) -> str:
    """Manifest column holding the transcripts of ``spec``."""
    return "asr_" + re.sub(r"[^A-Za-z0-9._-]+", "_", spec.replace(":", "_"))


class FasterWhisperASR:
    def __init__(self, name: str, device: str = "cpu", language: str | None = "en", beam_size: int = 5,
                 compute_type: str = "int8"):
        from faster_whisper import WhisperModel

        from mmser.encoders.model_paths import whisper_ct2_dir

        self.model = WhisperModel(str(whisper_ct2_dir(name)), device=device.split(":")[0], compute_type=compute_type)
        self.language = None if name.endswith(".en") else language
        self.beam_size = beam_size

    def transcribe(self, wav: np.ndarray) -> str:
        # temperature 0 only (no sampling fallback: the same clip always gives the same transcript) and no
        # timestamp tokens (emotion models use the words only)
        segments, _ = self.model.transcribe(wav, language=self.language, beam_size=self.beam_size,
                                            condition_on_previous_text=False, temperature=0.0,
                                            without_timestamps=True)
        return " ".join(s.text.strip() for s in segments).strip()


class OpenAIWhisperASR:
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


def build_asr(spec: str, device: str = "cpu", language: str | None = "en", beam_size: int = 5):
    backend, _, name = spec.partition(":")
    if backend == "faster-whisper":
        return FasterWhisperASR(name or "tiny.en", device, language, beam_size)
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
