"""``mmser robustness``: noisy test clips per fold, predictions stored, UA falls as the SNR falls."""

import numpy as np
import pandas as pd
import pytest

from mmser.cli import main
from tests.conftest import save_tiny_whisper
from tests.e2e.test_cv_smoke import _csv_experiment, _prepared_csv


def test_robustness_table_from_stored_noisy_predictions(tmp_path, capsys):
    _prepared_csv(tmp_path, "a", ["angry", "sad"], per=6)
    whisper = save_tiny_whisper(tmp_path / "tiny.pt", state=32, layers=1)
    _csv_experiment(tmp_path / "clean.yaml", f"features.audio_encoders=[whisper:{whisper}]", "train.max_epochs=4")
    _csv_experiment(tmp_path / "augmented.yaml", f"features.audio_encoders=[whisper:{whisper}]", "train.max_epochs=4",
                    "features.augment.variants=1", "features.augment.noise=[white]")
    args = ["robustness", str(tmp_path / "clean.yaml"), str(tmp_path / "augmented.yaml"), f"data.manifest={tmp_path / 'a.csv'}",
            f"features.cache_dir={tmp_path / 'cache'}", "--out", str(tmp_path / "rob"), "--snr", "20,0"]
    assert main(args) == 0
    table = pd.read_csv(tmp_path / "rob" / "robustness.csv")
    assert list(table["run"]) == ["clean", "augmented"] and list(table.columns) == ["run", "clean", "20 dB", "0 dB"]
    assert (tmp_path / "rob" / "robustness.png").is_file()
    for run in ("clean", "augmented"):
        folds = sorted(p.parent.name for p in (tmp_path / "rob" / run).glob("*/predictions.csv"))
        assert len(folds) == 3
        for fold in folds:
            clean = pd.read_csv(tmp_path / "rob" / run / fold / "predictions.csv")
            noisy = pd.read_csv(tmp_path / "rob" / run / "noise_white_0dB" / fold / "predictions.csv")
            assert list(noisy["utt_id"]) == list(clean["utt_id"])  # the fold's own test clips, each once
            assert (noisy.filter(like="prob_").to_numpy() != clean.filter(like="prob_").to_numpy()).any()
    # resumable and rebuilt from stored predictions: a second call recomputes nothing and prints the same table
    first = (tmp_path / "rob" / "robustness.md").read_text()
    capsys.readouterr()
    assert main(args) == 0
    assert "skipped" in capsys.readouterr().out
    assert (tmp_path / "rob" / "robustness.md").read_text() == first


def test_robustness_refuses_models_standardised_with_enrolment_clips_before_work(tmp_path, capsys):
    _prepared_csv(tmp_path, "a", ["angry", "sad"])
    _csv_experiment(tmp_path / "e.yaml", "features.speaker_norm.mode=enrol", "features.speaker_norm.clips=1")
    code = main(["robustness", str(tmp_path / "e.yaml"), f"data.manifest={tmp_path / 'a.csv'}",
                 f"features.cache_dir={tmp_path / 'cache'}", "--out", str(tmp_path / "rob")])
    assert code == 2 and "other clips of the test speaker" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("prior", [[], ["features.speaker_norm.prior_clips=2"]])
def test_running_models_hear_each_speakers_noisy_clips_in_the_cv_arrival_order(tmp_path, prior):
    # at an SNR where the noise is inaudible, the running statistics of the noisy clips so far are the clean
    # ones only if every speaker's clips arrive in cross-validation's order, each speaker with its own state
    _prepared_csv(tmp_path, "a", ["angry", "sad"], per=6)
    whisper = save_tiny_whisper(tmp_path / "tiny.pt", state=32, layers=1)
    _csv_experiment(tmp_path / "running.yaml", f"features.audio_encoders=[whisper:{whisper}]", "train.max_epochs=3",
                    "features.speaker_norm.mode=running", *prior)
    assert main(["robustness", str(tmp_path / "running.yaml"), f"data.manifest={tmp_path / 'a.csv'}",
                 f"features.cache_dir={tmp_path / 'cache'}", "--out", str(tmp_path / "rob"), "--snr", "150,0"]) == 0
    run = tmp_path / "rob" / "running"
    folds = sorted(p.parent.name for p in run.glob("*/predictions.csv"))
    assert len(folds) == 3
    for fold in folds:
        clean = pd.read_csv(run / fold / "predictions.csv").filter(like="prob_").to_numpy()
        inaudible = pd.read_csv(run / "noise_white_150dB" / fold / "predictions.csv").filter(like="prob_").to_numpy()
        loud = pd.read_csv(run / "noise_white_0dB" / fold / "predictions.csv").filter(like="prob_").to_numpy()
        np.testing.assert_allclose(inaudible, clean, atol=5e-4)  # 5e-5 here; 5e-3 in stored order
        assert np.abs(loud - clean).max() > 1e-3


def test_robustness_plot_draws_each_line_from_the_lowest_snr_to_clean(tmp_path, monkeypatch):
    import matplotlib.axes

    from mmser.evaluation.plots import plot_robustness

    drawn = []
    real_plot = matplotlib.axes.Axes.plot
    monkeypatch.setattr(matplotlib.axes.Axes, "plot", lambda ax, x, y, **kw: drawn.append((x, y)) or real_plot(ax, x, y, **kw))
    table = pd.DataFrame([{"run": "a", "clean": 70.0, "20 dB": 60.0, "10 dB": 55.0, "5 dB": 50.0, "0 dB": 40.0}])
    assert plot_robustness(table, tmp_path / "r.png", "white").is_file()
    (xs, ys), = drawn
    assert xs == [0.0, 5.0, 10.0, 20.0, 30.0] and ys == [40.0, 50.0, 55.0, 60.0, 70.0]  # clean drawn at the right
