"""Waveform augmentation: SNR as asked, speed and pitch as asked, recipes reproducible, babble from training only."""

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from mmser.audio import SAMPLE_RATE
from mmser.config import AugmentConfig
from mmser.features.augment import Recipe, add_noise, apply_recipe, change_speed, draw_recipe, shift_pitch
from mmser.features.variants import variant_recipes


def tone(freq=220.0, seconds=1.0):
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)[spectrum.argmax()])


@pytest.mark.parametrize("kind", ["white", "pink", "babble"])
@pytest.mark.parametrize("snr", [20.0, 5.0, 0.0])
def test_noise_is_added_at_the_requested_snr(kind, snr):
    clean = tone()
    talkers = [tone(330.0, 0.4), tone(150.0, 1.3), tone(500.0, 0.7)] if kind == "babble" else None
    noisy = add_noise(clean, kind, snr, np.random.default_rng(0), talkers)
    noise = noisy.astype(np.float64) - clean
    measured = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise ** 2))
    assert abs(measured - snr) < 0.05, (kind, snr, measured)


def band_power(x: np.ndarray, low: float, high: float) -> float:
    power = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    return float(power[(freqs >= low) & (freqs < high)].sum())


@pytest.mark.parametrize("snr", [20.0, 5.0])
def test_telephone_keeps_the_band_below_4k_and_adds_noise_in_it_at_the_snr(snr):
    from mmser.features.augment import narrow_band

    clean = tone(1000.0) + tone(6000.0)  # speech band and above an 8 kHz line's
    phone = add_noise(clean, "telephone", snr, np.random.default_rng(0))
    assert phone.shape == clean.shape
    assert band_power(phone, 4500, 8000) < 1e-3 * band_power(clean, 4500, 8000)  # 6 kHz gone, noise too (above the
    # resampler's transition band)
    in_band = narrow_band(clean).astype(np.float64)
    assert band_power(in_band, 900, 1100) > 0.95 * band_power(clean, 900, 1100)  # 1 kHz kept
    noise = phone - in_band
    measured = 10 * np.log10(np.mean(in_band ** 2) / np.mean(noise ** 2))
    assert abs(measured - snr) < 0.05


def test_a_g711_line_keeps_the_voice_band_codes_with_mu_law_and_adds_noise_at_the_snr(monkeypatch):
    """telephone_g711: the fundamental of a low voice (120 Hz) mostly gone, 1 kHz kept, 6 kHz gone; noise at the
    SNR; 8-bit mu-law coding noise about 30-45 dB under the signal (against 16-bit coding of the same line)."""
    from mmser.features import augment

    clean = tone(120.0, 2.0) + tone(1000.0, 2.0) + tone(6000.0, 2.0)
    quiet = add_noise(clean, "telephone_g711", 80.0, np.random.default_rng(0))  # the line alone
    assert quiet.shape == clean.shape and quiet.dtype == np.float32
    kept = lambda low, high: band_power(quiet, low, high) / band_power(clean, low, high)  # noqa: E731
    assert kept(900, 1100) > 0.8 and kept(100, 140) < 0.1 and kept(5800, 6200) < 1e-3
    noisy = add_noise(clean, "telephone_g711", 10.0, np.random.default_rng(0))
    measured = 10 * np.log10(np.mean(quiet.astype(np.float64) ** 2) / np.mean((noisy - quiet).astype(np.float64) ** 2))
    assert abs(measured - 10.0) < 0.5
    monkeypatch.setattr(augment, "MU_LAW_LEVELS", 2 ** 16)
    fine = add_noise(clean, "telephone_g711", 80.0, np.random.default_rng(0))
    coding = 10 * np.log10(np.mean(fine.astype(np.float64) ** 2) / np.mean((quiet - fine).astype(np.float64) ** 2))
    assert 30 < coding < 45, coding


def test_pink_noise_has_falling_power():
    noise = add_noise(np.ones(SAMPLE_RATE, np.float32) * 0.1, "pink", 0.0, np.random.default_rng(1)) - 0.1
    power = np.abs(np.fft.rfft(noise)) ** 2
    freqs = np.fft.rfftfreq(len(noise), 1 / SAMPLE_RATE)
    low, high = power[(freqs > 50) & (freqs < 200)].mean(), power[(freqs > 3200) & (freqs < 6400)].mean()
    assert low > 10 * high  # 1/f: about 30x between these bands; white noise would give about 1x


@pytest.mark.parametrize("speed", [0.9, 1.1])
def test_speed_changes_length_and_pitch_together(speed):
    out = change_speed(torch.from_numpy(tone(220.0)), speed).numpy()
    assert abs(len(out) - SAMPLE_RATE / speed) <= 2
    assert abs(peak_hz(out) - 220.0 * speed) < 3.0


@pytest.mark.parametrize("semitones", [2.0, -3.0])
def test_pitch_shift_keeps_the_length(semitones):
    out = shift_pitch(torch.from_numpy(tone(220.0)), semitones).numpy()
    assert len(out) == SAMPLE_RATE
    assert abs(peak_hz(out) - 220.0 * 2 ** (semitones / 12)) < 4.0


def test_recipes_are_reproducible_and_babble_comes_from_other_training_speakers():
    cfg = OmegaConf.structured(AugmentConfig(variants=3, noise=["babble"], pitch_semitones=1.0))
    rows = pd.DataFrame({"utt_id": [f"u{i}" for i in range(8)], "speaker": ["s0", "s0", "s1", "s1", "s2", "s2", "s3", "s3"]})
    keys = {f"u{i}": "a" + f"{i:040x}" for i in range(8)}
    train = ["u0", "u1", "u2", "u3", "u4", "u5"]  # s3 is the fold's test speaker
    recipes = variant_recipes(rows, train, keys, cfg)
    assert recipes == variant_recipes(rows, train, keys, cfg)  # the same draw every time
    assert set(recipes) == set(train) and all(len(r) == 3 for r in recipes.values())
    speaker_of_content = {keys[u][1:]: s for u, s in zip(rows["utt_id"], rows["speaker"])}
    for u, rs in recipes.items():
        own = rows.set_index("utt_id").loc[u, "speaker"]
        for r in rs:
            assert r.noise == "babble" and len(r.babble) == 3
            sources = {speaker_of_content[h] for h in r.babble}
            assert own not in sources and "s3" not in sources
    assert len({r.key() for rs in recipes.values() for r in rs}) == 18


def test_apply_recipe_is_deterministic_and_clipped():
    recipe = Recipe(noise="white", snr_db=0.0, speed=1.1, semitones=0.0, gain_db=12.0, seed=3)
    a, b = apply_recipe(tone(), recipe), apply_recipe(tone(), recipe)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a).max() <= 1.0 and abs(len(a) - SAMPLE_RATE / 1.1) <= 2
    assert draw_recipe("ab" * 32, 0, OmegaConf.structured(AugmentConfig()), []).noise in ("white", "pink")  # no pool: no babble


def test_white_and_pink_copies_are_the_same_in_every_fold_babble_copies_follow_the_fold():
    """What the README's cache-size note says: only babble copies depend on the fold's training speakers."""
    rows = pd.DataFrame({"utt_id": [f"u{i}" for i in range(12)], "speaker": [f"s{i // 2}" for i in range(12)]})
    keys = {f"u{i}": "a" + f"{i:040x}" for i in range(12)}
    fold_a = [f"u{i}" for i in range(10)]  # s5 tested
    fold_b = [f"u{i}" for i in range(2, 12)]  # s0 tested
    shared = [u for u in fold_a if u in fold_b]
    plain = OmegaConf.structured(AugmentConfig(variants=4, noise=["white", "pink"]))
    a, b = variant_recipes(rows, fold_a, keys, plain), variant_recipes(rows, fold_b, keys, plain)
    assert all([r.key() for r in a[u]] == [r.key() for r in b[u]] for u in shared)
    babble = OmegaConf.structured(AugmentConfig(variants=4, noise=["babble"]))
    a, b = variant_recipes(rows, fold_a, keys, babble), variant_recipes(rows, fold_b, keys, babble)
    assert any([r.key() for r in a[u]] != [r.key() for r in b[u]] for u in shared)
