"""A RAVDESS-layout folder of synthetic voiced clips, for timing on a machine without the corpus: ``--actors`` actors
x 60 clips (8 emotions as RAVDESS spreads them), 16 kHz mono FLAC named ``Actor_XX/03-01-EE-II-SS-RR-AA.flac``.

    python bench/synthetic_ravdess.py /tmp/ravdess-synthetic --actors 18

Clip lengths follow the real corpus's speech clips (1,080 clips of actors 01-18 measured: 2.9 to 5.0 s, median
3.6 s): uniform in 3.0-4.3 s. The sound is harmonics + noise, different per clip; nothing in it carries an emotion,
so use it for time and memory only (``mmser prepare ravdess`` reads it as the real layout).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16_000
# RAVDESS speech, per actor: neutral 2 statements x 2 repetitions, the 7 others x 2 intensities x 2 x 2
CLIPS = [(emotion, intensity, statement, repetition) for emotion in range(1, 9)
         for intensity in ((1,) if emotion == 1 else (1, 2)) for statement in (1, 2) for repetition in (1, 2)]


def voiced(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """``seconds`` of a gliding harmonic tone with noise, float32 in [-1, 1]."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = rng.uniform(90, 260) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))  # Hz, a slow glide
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    wav = sum(0.2 / k * np.sin(k * phase) for k in range(1, 6)) + 0.01 * rng.standard_normal(t.size)
    return (wav * np.hanning(t.size) ** 0.1).astype(np.float32)


def write_corpus(root: Path, actors: int, seed: int = 0) -> int:
    """Write the clips under ``root``; returns how many."""
    rng = np.random.default_rng(seed)
    count = 0
    for actor in range(1, actors + 1):
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for emotion, intensity, statement, repetition in CLIPS:
            name = f"03-01-{emotion:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}.flac"
            sf.write(folder / name, voiced(rng.uniform(3.0, 4.3), rng), SAMPLE_RATE)
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--actors", type=int, default=18)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not 2 <= args.actors <= 24:
        raise SystemExit(f"--actors must be 2..24 (RAVDESS has 24), got {args.actors}")
    print(f"{write_corpus(args.out, args.actors, args.seed)} clips in {args.out}")


if __name__ == "__main__":
    main()
