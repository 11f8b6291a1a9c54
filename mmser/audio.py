"""The one waveform loader: read with soundfile, mix to mono, validate, resample to 16 kHz, clip to [-1, 1].

One set of rules serves every path audio enters by — ``prepare``, extraction, transcription, the CLI,
the Python API and HTTP uploads — so a clip gets the same waveform, and the same prediction, whichever
way it arrives:

- a file (:func:`load_audio`), uploaded bytes (:func:`decode_audio`) or an array with its rate
  (:func:`to_waveform`) must hold finite samples, not all zero (digital silence carries no voice: a model
  asked about it answers with its bias), last at least :data:`MIN_DURATION_S`, and stay within
  :data:`MAX_PEAK` times full scale (a float file or array holding integer PCM values, e.g. up to 32767,
  would otherwise be clipped into a square wave and predicted as such);
- an integer array is scaled to [-1, 1] as soundfile scales integer files (int16 by 1/32768);
- channels are averaged, the rate is converted to :data:`SAMPLE_RATE` (torchaudio), and samples are
  clipped to [-1, 1] (float files may exceed full scale a little).

Every failure raises :class:`AudioError`, which names the file (or upload) and the reason.
"""

from __future__ import annotations

import hashlib
import io
import math
from pathlib import Path
from typing import Iterable

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
import torchaudio.transforms as AT

from mmser.errors import MmserError

SAMPLE_RATE = 16_000  # Hz, what every encoder in mmser consumes
MIN_DURATION_S = 0.1  # s, shorter clips carry no usable emotion cue (one rule for every input path)
MAX_PEAK = 2.0  # x full scale (+6 dBFS): a float waveform beyond it is in other units, not hot audio
HASH_CHUNK_BYTES = 1 << 20  # bytes read at a time when hashing a file
# file names a folder of clips is searched for: what libsndfile (>= 1.1, soundfile's own) reads
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".caf",
                  ".w64", ".rf64")
# audio libsndfile cannot read (AAC, WMA, AMR, video containers): phones and browsers record these
CONVERT_FIRST_SUFFIXES = (".m4a", ".aac", ".mp4", ".wma", ".webm", ".amr", ".3gp", ".mka", ".ac3", ".mov")


class AudioError(MmserError):
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
        raise _unreadable(path, err) from None


def narrow_band_warning(names: list[str], rates: Iterable[int], mixed: bool = False) -> str:
    """The one wording for clips recorded below :data:`SAMPLE_RATE` (telephone audio, 8 kHz): ``names`` (ids or
    paths) of those clips, their native ``rates`` in Hz; ``mixed``: they sit among full-band clips of a corpus
    a model will be trained on, where the band can stand for something else."""
    cue = ("; the corpus mixes them with full-band clips, so the band itself can become a cue for whatever it goes "
           "with (a speaker, a session, a label)" if mixed else "")
    return (f"{len(names)} clip(s) recorded below {SAMPLE_RATE} Hz (rates {sorted(set(int(r) for r in rates))} Hz, "
            f"e.g. {list(names[:5])}): upsampled, with nothing above half their rate, so an encoder and a model that "
            f"heard full-band speech are less accurate on them{cue}")


def narrow_band_files(paths: Iterable[str | Path]) -> dict[str, int]:
    """Each of ``paths`` whose header says it was recorded below :data:`SAMPLE_RATE` -> its rate (Hz). Reads
    headers only; a file that cannot be read is left to the loader, which names it."""
    rates = {}
    for path in paths:
        try:
            rate = audio_info(path).samplerate
        except AudioError:
            continue
        if rate < SAMPLE_RATE:
            rates[str(path)] = rate
    return rates


def require_files(paths: Iterable[str | Path], task: str) -> None:
    """Raise AudioError naming the first of ``paths`` that is not a file, and how many more, before ``task``
    (e.g. "encoding 1,200 clips") starts: a moved corpus is found before hours of work, not in the middle."""
    absent = [p for p in dict.fromkeys(str(p) for p in paths) if not Path(p).is_file()]
    if absent:
        more = f"; {len(absent) - 1} more missing, e.g. {absent[1:4]}" if len(absent) > 1 else ""
        raise AudioError(absent[0], f"file not found, before {task}{more} (was the corpus moved after `mmser prepare`?)")


def without_os_metadata(paths: list[Path]) -> tuple[list[Path], int]:
    """``paths`` without what an operating system leaves beside audio (macOS ``._<name>`` AppleDouble files and
    ``__MACOSX`` folders of zips made on a Mac: never clips, though named like them), and how many were left
    out (for the caller's note)."""
    kept = [path for path in paths if not (path.name.startswith("._") or "__MACOSX" in path.parts)]
    return kept, len(paths) - len(kept)


def _reason(err: Exception) -> str:
    """libsndfile's own reason ("Format not recognised."), without soundfile's "Error opening <object>" prefix."""
    return getattr(err, "error_string", None) or str(err)


def _unreadable(source: str | Path, err: Exception) -> AudioError:
    """The error for audio soundfile cannot read, with the way out for a format it never reads (by the name's
    suffix: :data:`CONVERT_FIRST_SUFFIXES`)."""
    suffix = Path(str(source)).suffix.lower()
    hint = (f": libsndfile does not read {suffix} audio; convert it first, e.g. "
            f"ffmpeg -i in{suffix} -ac 1 -ar 16000 out.wav" if suffix in CONVERT_FIRST_SUFFIXES else "")
    return AudioError(source, f"unreadable audio ({_reason(err)}){hint}")


def resample(wav: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a mono float32 waveform ``(n_samples,)`` from ``orig_sr`` to ``target_sr`` Hz."""
    if orig_sr == target_sr:
        return wav
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(wav)), orig_sr, target_sr)
    return out.numpy()


class ChunkResampler:
    """Resamples audio that arrives in chunks of any size (a live stream) from ``rate`` Hz to :data:`SAMPLE_RATE`,
    giving what :func:`resample` gives the whole signal at once (the same torchaudio kernel), chunk borders
    leaving no trace.

    With both rates divided by their gcd, each block of ``orig`` input samples becomes a block of ``new`` output
    samples, computed from the input ``width`` samples either side of it (the kernel's half-width). :meth:`push`
    returns every block whose input has all arrived; the rest waits for the next chunk or :meth:`flush` (one block
    and the margin: about 1 ms at 8, 32 or 48 kHz, 10 ms at 44.1 kHz, 41 ms at 11.025 kHz). Memory stays bounded:
    only the blocks still needed as context are kept (at most twice that).
    """

    def __init__(self, rate: int):
        self.rate = int(rate)
        self.sinc = AT.Resample(self.rate, SAMPLE_RATE) if self.rate != SAMPLE_RATE else None  # its kernel, cached
        gcd = math.gcd(self.rate, SAMPLE_RATE)
        self.orig, self.new = self.rate // gcd, SAMPLE_RATE // gcd  # input, output samples per block
        self.margin = -(-self.sinc.width // self.orig) if self.sinc is not None else 0  # blocks of context
        self.kept = np.zeros(0, np.float32)  # input from block `first` on
        self.first = 0  # the block kept[0] starts
        self.done = 0  # blocks returned so far
        self.received = 0  # input samples so far

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """``chunk`` (n,) float32 at ``rate`` -> (m,) float32 at 16 kHz: the output its arrival completes."""
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        self.received += len(chunk)
        if self.sinc is None:
            return chunk
        self.kept = np.concatenate([self.kept, chunk])
        complete = max((self.received - self.sinc.width) // self.orig, self.done)  # blocks with all their input
        return self._emit(complete, last=False)

    def flush(self) -> np.ndarray:
        """The rest of the output at the end of the stream (the stream's end padded with zeros, as
        :func:`resample` pads the end of a whole signal); the total then has :func:`resample`'s length."""
        if self.sinc is None or not len(self.kept):
            return np.zeros(0, np.float32)
        return self._emit(-(-self.received // self.orig), last=True)

    def _emit(self, upto: int, last: bool) -> np.ndarray:
        """Output blocks ``done`` .. ``upto`` - 1 (at ``last``, up to the end of :func:`resample`'s output)."""
        if upto <= self.done and not last:
            return np.zeros(0, np.float32)
        # Blocks from `first` on: those before `done` only lend their input as left context (block `first`'s
        # own left context is wrong unless first == 0, where it is the zero padding resample() adds too).
        out = self.sinc(torch.from_numpy(self.kept)).numpy()  # (ceil(len(kept) * new / orig),)
        start = (self.done - self.first) * self.new
        piece = out[start:] if last else out[start:(upto - self.first) * self.new]
        self.done = upto
        first = max(self.done - self.margin, 0)
        self.kept, self.first = self.kept[(first - self.first) * self.orig:], first
        return piece


def validate_waveform(wav: np.ndarray, source: str | Path, sample_rate: int = SAMPLE_RATE) -> None:
    """Raise AudioError if ``wav`` (mono, float) is empty, non-finite, all zero, shorter than
    :data:`MIN_DURATION_S` or peaks above :data:`MAX_PEAK` times full scale."""
    if wav.size == 0:
        raise AudioError(source, "no audio samples")
    if not np.isfinite(wav).all():
        raise AudioError(source, "NaN or infinite samples")
    if not wav.any():
        raise AudioError(source, "digital silence (all samples are zero)")
    duration = wav.shape[-1] / sample_rate
    if duration < MIN_DURATION_S:
        raise AudioError(source, f"too short: {duration:.3f} s < minimum {MIN_DURATION_S} s")
    peak = float(np.abs(wav).max())
    if peak > MAX_PEAK:
        raise AudioError(source, f"samples reach {peak:.4g} times full scale: float audio must lie in [-1, 1] "
                                 "(integer PCM stored as float? divide it by 32768 for 16-bit)")


def _as_float(wav: np.ndarray) -> np.ndarray:
    """``wav`` as float32; integer PCM scaled to [-1, 1) as soundfile reads integer files (int16 / 32768,
    unsigned 8-bit centred on 128)."""
    wav = np.asarray(wav)
    if wav.dtype == np.uint8:
        return (wav.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(wav.dtype, np.integer):
        return (wav / float(-np.iinfo(wav.dtype).min)).astype(np.float32)
    return wav.astype(np.float32, copy=False)


def to_waveform(wav: np.ndarray, sample_rate: int, source: str | Path = "<waveform>") -> np.ndarray:
    """A waveform ``(n_samples,)`` or ``(n_samples, channels)`` at ``sample_rate`` Hz (float in [-1, 1], or
    integer PCM such as int16) -> validated 16 kHz mono float32 ``(n,)`` in [-1, 1]."""
    wav = _as_float(wav)
    mono = wav.mean(axis=1) if wav.ndim == 2 else wav.reshape(-1)  # (n_samples,)
    validate_waveform(mono, source, sample_rate)
    return np.clip(resample(mono, sample_rate, SAMPLE_RATE), -1.0, 1.0).astype(np.float32, copy=False)


def _decode(handle, source: str | Path, max_duration_s: float | None) -> np.ndarray:
    """Read an opened file or buffer with soundfile, then :func:`to_waveform`."""
    try:
        info = sf.info(handle)
        if max_duration_s is not None and info.duration > max_duration_s:
            raise AudioError(source, f"too long: {info.duration:.1f} s > maximum {max_duration_s} s")
        if hasattr(handle, "seek"):
            handle.seek(0)
        data, orig_sr = sf.read(handle, dtype="float32", always_2d=True)  # (n_samples, channels)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise _unreadable(source, err) from None
    return to_waveform(data, orig_sr, source)


def load_audio(path: str | Path, max_duration_s: float | None = None) -> np.ndarray:
    """Read ``path`` as 16 kHz mono float32 in [-1, 1].

    Returns:
        waveform of shape ``(n_samples,)``, dtype float32, at :data:`SAMPLE_RATE` Hz.

    Raises:
        AudioError: missing, empty or unreadable file, NaN/inf samples, all-zero samples, samples beyond
            :data:`MAX_PEAK` times full scale, a clip shorter than :data:`MIN_DURATION_S` or longer than
            ``max_duration_s`` seconds.
    """
    audio_info(path)  # missing / empty / unreadable, named
    return _decode(str(path), path, max_duration_s)


def decode_audio(data: bytes, name: str, max_duration_s: float | None = None) -> np.ndarray:
    """Encoded audio bytes (an upload) -> the waveform :func:`load_audio` gives for the same file."""
    if not data:
        raise AudioError(name, "empty upload")
    return _decode(io.BytesIO(data), name, max_duration_s)


def upload_rate(data: bytes) -> int:
    """The sample rate (Hz) in the header of encoded audio bytes that :func:`decode_audio` has read."""
    return int(sf.info(io.BytesIO(data)).samplerate)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of the file's bytes (the audio's content key in caches and duplicate checks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()
