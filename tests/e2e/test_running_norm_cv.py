"""Running speaker statistics (features.speaker_norm.mode=running) through the CLI: cv standardises each
clip with its speaker's clips so far in a seeded arrival order -> `mmser predict` fed a test speaker's clips
in that order gives the fold's stored probabilities; `mmser train` makes a checkpoint that needs no enrolment.
With features.speaker_norm.prior_clips the fold's checkpoint carries the population its statistics start from."""

import json

import numpy as np
import pandas as pd
import pytest

from mmser.checkpoint import load_checkpoint
from mmser.cli import main
from mmser.data.manifest import read_manifest
from mmser.features.speaker_norm import arrival_order
from tests.conftest import save_tiny_whisper
from tests.e2e.test_cv_smoke import _csv_experiment, _prepared_csv


@pytest.mark.parametrize("prior", [[], ["features.speaker_norm.prior_clips=2"]], ids=["own", "population_prior"])
def test_predict_in_arrival_order_reproduces_the_folds_and_train_needs_no_enrolment(tmp_path, capsys, prior):
    _prepared_csv(tmp_path, "a", ["angry", "sad", "happy"], per=4)
    whisper = save_tiny_whisper(tmp_path / "tiny.pt", state=32, layers=1)
    _csv_experiment(tmp_path / "exp.yaml", f"features.audio_encoders=[whisper:{whisper}]", "features.audio_layers=all",
                    "features.frame_stride=2", "features.speaker_norm.mode=running", *prior)
    common = [str(tmp_path / "exp.yaml"), f"data.manifest={tmp_path / 'a.csv'}", f"features.cache_dir={tmp_path / 'cache'}"]
    assert main(["cv", *common, "--out", str(tmp_path / "cv")]) == 0
    manifest = read_manifest(tmp_path / "a.csv")
    order = arrival_order(manifest["speaker"].astype(str).tolist())
    fold = tmp_path / "cv" / "fold0"
    stored = pd.read_csv(fold / "predictions.csv").set_index("utt_id")
    columns = [c for c in stored.columns if c.startswith("prob_")]
    speaker = str(manifest.set_index("utt_id").loc[stored.index[0], "speaker"])
    arrivals = manifest.iloc[order[speaker]]
    assert set(arrivals["utt_id"]) == set(stored.index)  # the fold's test speaker, every clip
    assert bool(load_checkpoint(fold / "model.safetensors").speaker_prior) == bool(prior)

    def predicted(rows: pd.DataFrame) -> pd.DataFrame:
        table = tmp_path / "clips.csv"
        rows.assign(speaker=speaker)[["path", "speaker"]].to_csv(table, index=False)
        capsys.readouterr()
        assert main(["predict", str(table), "--checkpoint", str(fold / "model.safetensors"), "--json",
                     "--batch-size", "3"]) == 0
        out = json.loads(capsys.readouterr().out)
        return pd.DataFrame([[r["probabilities"][c.removeprefix("prob_")] for c in columns] for r in out],
                            index=rows["utt_id"], columns=columns)

    want = stored.loc[arrivals["utt_id"], columns].to_numpy(float)
    got = predicted(arrivals).to_numpy()
    np.testing.assert_allclose(got, want, atol=5e-3)  # the cache holds float16 frames; predict float32
    # another order gives every clip but the last other statistics, and other probabilities
    shuffled = predicted(arrivals.iloc[::-1]).loc[arrivals["utt_id"]].to_numpy()
    assert np.abs(shuffled - want).max() > 5 * np.abs(got - want).max()

    assert main(["train", *common, "--out", str(tmp_path / "m.safetensors")]) == 0
    trained = load_checkpoint(tmp_path / "m.safetensors")
    assert trained.features.speaker_norm.mode == "running" and bool(trained.speaker_prior) == bool(prior)
    capsys.readouterr()
    assert main(["predict", arrivals["path"].iloc[0], "--checkpoint", str(tmp_path / "m.safetensors"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in ("angry", "sad", "happy")
