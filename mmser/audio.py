"""Audio I/O: read with soundfile, mix to mono, resample to 16 kHz with torchaudio, validate.

Every failure raises :class:`AudioError`, which names the file and the reason.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

SAMPLE_RATE = 16_000  # Hz, what every encoder in mmser consumes
DEFAULT_MIN_DURATION_S = 0.1  # s, shorter clips carry no usable emotion cue
HASH_CHUNK_BYTES = 1 << 20  # bytes read at a time when hashing a file


class AudioError(ValueError):
    """An audio file that cannot be used, with the reason."""

    def __init__(self, path: str | Path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def audio_info(path: str | Path) -> sf._SoundFileInfo:
    """Header of ``path`` (sample rate, channels, frames) without decoding; raises AudioError."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "file not found")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        return sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(path, f"unreadable audio ({err})") from None


def resample(wav: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a mono float32 waveform ``(n_samples,)`` from ``orig_sr`` to ``target_sr`` Hz."""
    if orig_sr == target_sr:
        return wav
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(wav)), orig_sr, target_sr)
    return out.numpy()


def validate_waveform(
    wav: np.ndarray, source: str | Path, sample_rate: int = SAMPLE_RATE, min_duration_s: float = 0.0
) -> None:
    """Raise AudioError if ``wav`` (mono, float) is empty, non-finite or shorter than ``min_duration_s``."""
    if wav.size == 0:
        raise AudioError(source, "no audio samples")
    if not np.isfinite(wav).all():
        raise AudioError(source, "NaN or infinite samples")
    duration = wav.shape[-1] / sample_rate
    if duration < min_duration_s:
        raise AudioError(source, f"too short: {duration:.3f} s < minimum {min_duration_s} s")


def load_audio(
    path: str | Path,
    sample_rate: int = SAMPLE_RATE,
    min_duration_s: float = DEFAULT_MIN_DURATION_S,
    max_duration_s: float | None = None,
) -> np.ndarray:
    """Read ``path`` as mono float32 in [-1, 1] at ``sample_rate`` Hz.

    Returns:
        waveform of shape ``(n_samples,)``, dtype float32.

    Raises:
        AudioError: missing, empty or unreadable file, NaN/inf samples, a clip shorter than
            ``min_duration_s`` or longer than ``max_duration_s`` seconds.
    """
    info = audio_info(path)
    if max_duration_s is not None and info.duration > max_duration_s:
        raise AudioError(path, f"too long: {info.duration:.1f} s > maximum {max_duration_s} s")
    try:
        data, orig_sr = sf.read(str(path), dtype="float32", always_2d=True)  # (n_samples, channels)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(path, f"unreadable audio ({err})") from None
    wav = data.mean(axis=1)  # (n_samples,)
    validate_waveform(wav, path, orig_sr, min_duration_s)
    wav = resample(wav, orig_sr, sample_rate)
    return np.clip(wav, -1.0, 1.0).astype(np.float32, copy=False)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of the file's bytes (the audio's content key in caches and duplicate checks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()
