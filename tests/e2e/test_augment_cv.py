"""Augmented cross-validation: variants are made from each fold's training clips only, cached once, reused."""

import os
import time

import pandas as pd
import pytest

import mmser.evaluation.crossval as crossval
import mmser.features.variants as variants
from mmser.cli import main
from mmser.data.manifest import read_manifest
from mmser.features.cache_usage import DAY, prune_plan, scan
from tests.conftest import save_tiny_whisper
from tests.e2e.test_cv_smoke import _csv_experiment, _prepared_csv


@pytest.fixture
def corpus(tmp_path):
    _prepared_csv(tmp_path, "a", ["angry", "sad", "happy"], n_speakers=4)
    whisper = save_tiny_whisper(tmp_path / "tiny.pt", state=32, layers=1)
    _csv_experiment(tmp_path / "exp.yaml", f"features.audio_encoders=[whisper:{whisper}]",
                    "features.augment.variants=2", "features.augment.noise=[white,pink,babble]",
                    "features.augment.pitch_semitones=1.0", "features.augment.time_mask=0.2",
                    "features.augment.channel_mask=0.1", "features.augment.mixup=0.4")
    return tmp_path


def test_variants_come_from_training_clips_only(corpus, monkeypatch, capsys):
    manifest = read_manifest(corpus / "a.csv")
    speaker_of_path = dict(zip(manifest["path"].astype(str), manifest["speaker"].astype(str)))
    current: dict[str, set] = {}
    loaded: list[tuple[str, frozenset]] = []
    real_training_dataset, real_load = crossval.training_dataset, variants.load_audio

    def training_dataset(store, ids, encoder, text_source, features_cfg, progress=True):
        current["train"] = set(store.rows.set_index("utt_id").loc[list(ids), "speaker"].astype(str))
        return real_training_dataset(store, ids, encoder, text_source, features_cfg, progress)

    def load_audio(path):
        loaded.append((speaker_of_path[str(path)], frozenset(current["train"])))
        return real_load(path)

    monkeypatch.setattr(crossval, "training_dataset", training_dataset)
    monkeypatch.setattr(variants, "load_audio", load_audio)
    args = ["cv", str(corpus / "exp.yaml"), f"data.manifest={corpus / 'a.csv'}", f"features.cache_dir={corpus / 'cache'}"]
    assert main([*args, "--out", str(corpus / "cv")]) == 0
    assert loaded, "no variant was made"
    assert all(speaker in train for speaker, train in loaded), "a validation or test clip was augmented"
    out = capsys.readouterr()
    assert "augment" in out.err

    # every variant is cached: a second run (another output folder) encodes none, and marks every shard it
    # read, clean frames and variants, as used (what `mmser cache prune` goes by)
    loaded.clear()
    month_ago = time.time() - 30 * DAY
    for shard in (corpus / "cache").rglob("shard-*"):
        os.utime(shard, (month_ago, month_ago))
    assert main([*args, "--out", str(corpus / "cv2")]) == 0
    assert loaded == []
    assert prune_plan(scan(corpus / "cache"), unused_days=7) == []
    first = pd.concat(pd.read_csv(p) for p in sorted((corpus / "cv").glob("*/predictions.csv")))
    second = pd.concat(pd.read_csv(p) for p in sorted((corpus / "cv2").glob("*/predictions.csv")))
    pd.testing.assert_frame_equal(first.reset_index(drop=True), second.reset_index(drop=True))  # seeded draws
