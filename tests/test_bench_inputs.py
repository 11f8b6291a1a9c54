"""The inputs bench/ makes for timing where the real ones cannot be had (scripts/device_finetune.sh on a GPU
machine with no network): a synthetic RAVDESS-layout corpus and random weights of a Whisper size's shape."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmser.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from random_whisper import save_random_whisper  # noqa: E402
from synthetic_ravdess import write_corpus  # noqa: E402


def test_the_synthetic_corpus_is_read_as_ravdess_with_its_clip_lengths(tmp_path):
    assert write_corpus(tmp_path / "corpus", actors=2) == 120
    assert main(["prepare", "ravdess", str(tmp_path / "corpus"), "--out", str(tmp_path / "m.csv")]) == 0
    rows = pd.read_csv(tmp_path / "m.csv")
    assert len(rows) == 120 and rows["speaker"].nunique() == 2
    assert rows.groupby("speaker")["label"].value_counts().unstack().loc[:, "neutral"].tolist() == [4, 4]
    assert rows["label"].nunique() == 8 and set(rows.groupby("speaker").size()) == {60}
    assert rows["duration_s"].between(3.0, 4.3).all() and rows["duration_s"].std() > 0.2  # the real clips' range


def test_random_whisper_weights_have_the_sizes_shape_and_load_as_a_whisper_encoder(tmp_path):
    from mmser.features.encoders.registry import build_audio_encoder

    path = save_random_whisper("tiny", tmp_path / "tiny.pt")
    encoder = build_audio_encoder(f"whisper:{path}", "all", whisper_window="clip")
    frames = encoder.encode([0.1 * np.ones(16_000, np.float32)])[0]  # (L, T, D)
    assert frames.shape == (5, 50, 384)  # Whisper tiny: 4 blocks (+ the input) of 384, 50 frames a second
    with pytest.raises(SystemExit, match="unknown Whisper size"):
        save_random_whisper("huge", tmp_path / "huge.pt")
