"""Waveform augmentation (``features.augment``): noise at an SNR, speed perturbation, pitch shift, gain.

Each training clip gets ``variants`` augmented copies, each a :class:`Recipe` drawn from the clip's content
hash, the variant's index and ``features.augment.seed`` (so a variant is the same in every fold and every
run, and its encoder frames are cached under ``(clip hash, recipe)``). Babble is a mix of other clips: they
are drawn among the fold's *training* clips of other speakers only, so no validation or test speech ever
reaches training. Validation and test clips are never augmented; under ``features.test_time_speeds`` they are
*predicted* at other speeds too (:func:`test_view_recipes`), which trains on nothing.

:func:`add_noise` is also what ``mmser robustness`` uses to corrupt test clips.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torchaudio.functional as AF

from mmser.audio import SAMPLE_RATE
from mmser.config import NOISE_KINDS
BABBLE_TALKERS = 3  # clips mixed into one babble noise


@dataclass(frozen=True)
class Recipe:
    """One augmented variant of a clip (every field a plain value; :meth:`key` names it in the cache)."""

    noise: str | None = None  # white | pink | babble | None
    snr_db: float = 0.0  # dB, signal-to-noise ratio of the added noise
    speed: float = 1.0  # playback speed (changes tempo and pitch together, as Kaldi's speed perturbation)
    semitones: float = 0.0  # pitch shift at constant tempo
    gain_db: float = 0.0  # dB
    seed: int = 0  # the noise's random draw
    babble: tuple[str, ...] = ()  # content hashes of the clips mixed into babble

    def key(self) -> str:
        """A short stable name of this recipe (part of the variant's cache key)."""
        text = (f"{self.noise}|{self.snr_db:.2f}|{self.speed:.3f}|{self.semitones:.2f}|{self.gain_db:.2f}|{self.seed}|"
                + ",".join(self.babble))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def draw_recipe(content_sha256: str, variant: int, augment_cfg, babble_pool: Sequence[str]) -> Recipe:
    """Variant ``variant`` of the clip with this content hash: a recipe drawn from ``augment_cfg`` (the same
    for the same clip, variant and ``augment_cfg.seed``); babble clips come from ``babble_pool`` (content hashes
    of training clips of other speakers)."""
    seed = int(hashlib.sha256(f"{content_sha256}|{variant}|{int(augment_cfg.seed)}".encode()).hexdigest()[:15], 16)
    rng = np.random.default_rng(seed)
    kinds = [k for k in augment_cfg.noise if k != "babble" or len(babble_pool) >= BABBLE_TALKERS]
    noise = str(rng.choice(kinds)) if kinds else None
    low, high = (float(x) for x in augment_cfg.snr_db)
    babble = tuple(sorted(rng.choice(sorted(babble_pool), BABBLE_TALKERS, replace=False))) if noise == "babble" else ()
    return Recipe(noise=noise, snr_db=float(rng.uniform(low, high)), speed=float(rng.choice(list(augment_cfg.speed))),
                  semitones=float(rng.uniform(-1, 1) * augment_cfg.pitch_semitones),
                  gain_db=float(rng.uniform(-1, 1) * augment_cfg.gain_db), seed=seed % (2 ** 31), babble=babble)


def test_view_recipes(speeds) -> list[Recipe]:
    """The copies of a predicted clip under ``features.test_time_speeds``: the clip played at each speed, with no
    noise and no gain (the same recipe for every clip, so a copy's frames are cached under the clip's hash)."""
    return [Recipe(speed=float(s)) for s in speeds]


def apply_recipe(wav: np.ndarray, recipe: Recipe, load: Callable[[str], np.ndarray] | None = None) -> np.ndarray:
    """``wav`` (n_samples,) float32 at 16 kHz -> its augmented variant, clipped to [-1, 1] like every loaded clip.

    ``load``: content hash -> waveform, for babble."""
    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
    if recipe.speed != 1.0:
        x = change_speed(x, recipe.speed)
    if recipe.semitones:
        x = shift_pitch(x, recipe.semitones)
    x = x * 10 ** (recipe.gain_db / 20)
    out = x.numpy()
    if recipe.noise is not None:
        rng = np.random.default_rng(recipe.seed)
        talkers = [load(h) for h in recipe.babble] if recipe.noise == "babble" else None
        if recipe.noise == "babble" and load is None:
            raise ValueError("babble needs a loader for the clips it mixes")
        out = add_noise(out, recipe.noise, recipe.snr_db, rng, talkers)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def change_speed(x: torch.Tensor, speed: float) -> torch.Tensor:
    """Play ``x`` (n,) ``speed`` times faster: ``(n,) -> (~n / speed,)`` (resampling, tempo and pitch together)."""
    orig = int(round(SAMPLE_RATE * speed / 100)) * 100  # a round rate keeps the resampling kernel small
    return AF.resample(x, orig, SAMPLE_RATE)


def shift_pitch(x: torch.Tensor, semitones: float, n_fft: int = 512, hop: int = 128) -> torch.Tensor:
    """Pitch shifted by ``semitones`` at the same duration: speed change, then a phase-vocoder time stretch back."""
    n = x.shape[-1]
    faster = change_speed(x, 2 ** (semitones / 12))  # (m,), pitch moved, shorter or longer
    window = torch.hann_window(n_fft)
    spec = torch.stft(faster, n_fft, hop, window=window, return_complex=True)  # (F, frames)
    advance = torch.linspace(0, np.pi * hop, spec.shape[0])[..., None]
    stretched = AF.phase_vocoder(spec, faster.shape[-1] / n, advance)
    out = torch.istft(stretched, n_fft, hop, window=window, length=n)
    return out


TELEPHONE_RATE = 8_000  # Hz, the rate of a narrow-band telephone line: nothing above 4 kHz reaches the far end


def narrow_band(x: np.ndarray, rate: int = TELEPHONE_RATE) -> np.ndarray:
    """``x`` (n,) at 16 kHz -> (n,) at 16 kHz with nothing above ``rate`` / 2: resampled to ``rate`` and back, as a
    clip recorded at ``rate`` arrives after :func:`mmser.audio.load_audio` upsamples it."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    back = AF.resample(AF.resample(t, SAMPLE_RATE, rate), rate, SAMPLE_RATE).numpy()  # (~n,)
    return np.pad(back, (0, max(0, len(x) - len(back))))[:len(x)]


LINE_BAND_HZ = (300.0, 3400.0)  # the voice band of a telephone channel (ITU-T G.712)
MU_LAW_LEVELS = 256  # G.711 mu-law: 8 bits per sample


def g711_line(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``x`` (n,) at 16 kHz as a digital telephone line delivers it: at 8 kHz, band-passed to :data:`LINE_BAND_HZ`
    (second-order filters: the voice's fundamental below 300 Hz is mostly gone), ``noise`` (n,) band-passed
    alike and added at ``snr_db`` dB in that band, then coded with 8-bit mu-law (G.711) and upsampled back to
    16 kHz, as :func:`mmser.audio.load_audio` reads an 8 kHz call recording. Returns (n,) float32 in [-1, 1]."""
    def line(signal: np.ndarray) -> torch.Tensor:  # (n,) at 16 kHz -> (~n/2,) at 8 kHz, in the voice band
        t = AF.resample(torch.from_numpy(np.ascontiguousarray(signal, dtype=np.float32)), SAMPLE_RATE, TELEPHONE_RATE)
        return AF.lowpass_biquad(AF.highpass_biquad(t, TELEPHONE_RATE, LINE_BAND_HZ[0]), TELEPHONE_RATE, LINE_BAND_HZ[1])

    voice, hiss = line(x).numpy(), line(noise).numpy()
    mixed = torch.from_numpy(np.clip(_mix(voice, hiss, snr_db), -1.0, 1.0))  # (~n/2,) at 8 kHz
    coded = AF.mu_law_decoding(AF.mu_law_encoding(mixed, MU_LAW_LEVELS), MU_LAW_LEVELS)
    back = AF.resample(coded.float(), TELEPHONE_RATE, SAMPLE_RATE).numpy()  # (~n,)
    return np.clip(np.pad(back, (0, max(0, len(x) - len(back))))[:len(x)], -1.0, 1.0).astype(np.float32)


def _mix(wav: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``wav`` + ``noise`` scaled to ``snr_db`` dB below it (power over the whole clip), float32."""
    signal_power = float(np.mean(np.asarray(wav, dtype=np.float64) ** 2))
    noise_power = float(np.mean(noise ** 2)) + 1e-20  # in the noise's own dtype, as every published run
    scale = np.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))
    return (wav + scale * noise).astype(np.float32)


def add_noise(wav: np.ndarray, kind: str, snr_db: float, rng: np.random.Generator,
              talkers: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """``wav`` (n,) plus ``kind`` noise at ``snr_db`` dB (power ratio over the whole clip); float32, not clipped.

    ``white``: Gaussian; ``pink``: 1/f power (white shaped in the frequency domain); ``babble``: ``talkers``
    (other clips) each scaled to unit power, looped or cut to ``n`` samples and summed; ``telephone``: the clip
    itself band-limited as an 8 kHz line carries it (:func:`narrow_band`), plus white noise band-limited alike
    (the SNR measured in that band); ``telephone_g711``: a digital telephone line (:func:`g711_line`: the voice
    band 300-3400 Hz, white noise in it, 8-bit mu-law)."""
    n = len(wav)
    if kind == "telephone_g711":
        return g711_line(wav, rng.standard_normal(n), snr_db)
    if kind == "telephone":
        wav, noise = narrow_band(wav), narrow_band(rng.standard_normal(n))
    elif kind == "white":
        noise = rng.standard_normal(n)
    elif kind == "pink":
        spectrum = np.fft.rfft(rng.standard_normal(n))
        freqs = np.fft.rfftfreq(n)
        spectrum[1:] /= np.sqrt(freqs[1:] / freqs[1])
        noise = np.fft.irfft(spectrum, n)
    elif kind == "babble":
        if not talkers:
            raise ValueError("babble noise needs other clips to mix")
        noise = np.zeros(n)
        for t in talkers:
            t = np.resize(np.asarray(t, dtype=np.float64), n)  # looped or cut
            noise += t / np.sqrt(np.mean(t ** 2) + 1e-12)
    else:
        raise ValueError(f"unknown noise {kind!r}: use one of {list(NOISE_KINDS)}")
    return _mix(wav, noise, snr_db)
