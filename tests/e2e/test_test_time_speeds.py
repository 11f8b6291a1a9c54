"""features.test_time_speeds: cross-validation and `mmser predict` average a clip's probabilities with those of
its copies at other speeds, each copy standardised with the clip's own speaker statistics; training is untouched."""

import json

import numpy as np
import pandas as pd
from safetensors.torch import load_file

import mmser.features.variants as variants
from mmser.cli import main
from mmser.data.manifest import read_manifest
from mmser.evaluation.crossval import PROB_COLUMNS
from tests.conftest import save_tiny_whisper
from tests.e2e.test_cv_smoke import _csv_experiment, _prepared_csv


def test_predictions_average_the_clip_and_its_speed_copies_in_cv_and_predict(tmp_path, capsys, monkeypatch):
    _prepared_csv(tmp_path, "a", ["angry", "sad"])  # 3 speakers x 4 clips
    whisper = save_tiny_whisper(tmp_path / "tiny.pt", state=32, layers=1)
    # each clip standardised with all 3 other clips of its speaker: the enrolment `mmser predict` is given below
    _csv_experiment(tmp_path / "exp.yaml", f"features.audio_encoders=[whisper:{whisper}]",
                    "features.speaker_norm.mode=enrol", "features.speaker_norm.clips=3")
    common = [str(tmp_path / "exp.yaml"), f"features.cache_dir={tmp_path / 'cache'}", f"data.manifest={tmp_path / 'a.csv'}"]
    tta = [*common, "features.test_time_speeds=[0.9,1.1]"]
    assert main(["cv", *common, "--out", str(tmp_path / "plain")]) == 0
    assert main(["cv", *tta, "--out", str(tmp_path / "tta")]) == 0
    assert "speed 0.9" in capsys.readouterr().err  # the copies were encoded, with a progress bar

    # the same training (identical weights), other predictions, on test and validation speakers alike
    for fold in ("fold0", "fold1", "fold2"):
        a, b = (load_file(str(tmp_path / run / fold / "model.safetensors")) for run in ("plain", "tta"))
        assert all(np.array_equal(a[k], b[k]) for k in a)
        for table in ("predictions.csv", "val_predictions.csv"):
            plain, tta_probs = (pd.read_csv(tmp_path / run / fold / table)[PROB_COLUMNS].values for run in ("plain", "tta"))
            assert not np.allclose(plain, tta_probs, atol=1e-3), (fold, table)

    # `mmser predict` with the fold's checkpoint does what its cross-validation did
    manifest = read_manifest(tmp_path / "a.csv").set_index("utt_id")
    checkpoint = str(tmp_path / "tta" / "fold0" / "model.safetensors")
    for _, row in pd.read_csv(tmp_path / "tta" / "fold0" / "predictions.csv").iterrows():
        speaker = manifest.loc[row["utt_id"], "speaker"]
        others = [p for u, p in manifest.loc[manifest["speaker"] == speaker, "path"].items() if u != row["utt_id"]]
        capsys.readouterr()
        assert main(["predict", manifest.loc[row["utt_id"], "path"], "--checkpoint", checkpoint, "--enrol", *others,
                     "--json"]) == 0
        got = json.loads(capsys.readouterr().out)["probabilities"]
        np.testing.assert_allclose([got[c.removeprefix("prob_")] for c in PROB_COLUMNS], row[PROB_COLUMNS].to_numpy(float),
                                   atol=5e-3)  # the cache holds float16 frames; predict float32

    # the copies are cached: another run encodes none of them and predicts the same
    def encode_variants(*args, **kwargs):
        raise AssertionError("a test-time copy was encoded again")

    monkeypatch.setattr(variants, "encode_variants", encode_variants)
    assert main(["cv", *tta, "--out", str(tmp_path / "again")]) == 0
    first, again = (pd.read_csv(tmp_path / run / "fold1" / "predictions.csv") for run in ("tta", "again"))
    pd.testing.assert_frame_equal(first, again)
