"""``mmser robustness``: noisy test clips per fold, predictions stored, UA falls as the SNR falls."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmser.audio import load_audio
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
    # telephone-band copies beside white noise: the same runs (not cross-validated again), a table of their own
    assert main([*args[:-2], "--snr", "20", "--noise", "telephone"]) == 0
    assert list(pd.read_csv(tmp_path / "rob" / "robustness_telephone.csv").columns) == ["run", "clean", "20 dB"]
    phone_md = (tmp_path / "rob" / "robustness_telephone.md").read_text()
    assert "--snr 20 --noise telephone" in phone_md and "as an 8 kHz telephone line carries them" in phone_md
    assert (tmp_path / "rob" / "robustness_telephone.png").is_file()
    assert (tmp_path / "rob" / "robustness.md").read_text() == first  # white noise's table stays
    for fold in folds:
        phone, white = (pd.read_csv(tmp_path / "rob" / "augmented" / f"noise_{kind}_20dB" / fold / "predictions.csv")
                        .filter(like="prob_").to_numpy() for kind in ("telephone", "white"))
        assert np.abs(phone - white).max() > 1e-4
    # a fold whose checkpoint is gone: its stored conditions still make the table, a new SNR is refused before
    # any run predicts (cross-validation keeps the fold as done and would never write the checkpoint again)
    lost = tmp_path / "rob" / "augmented" / folds[-1] / "model.safetensors"
    lost.unlink()
    assert main(args) == 0 and (tmp_path / "rob" / "robustness.md").read_text() == first
    capsys.readouterr()
    assert main([*args[:-1], "20,10,0"]) == 2
    assert f"{lost}: checkpoint not found" in capsys.readouterr().err
    assert not list((tmp_path / "rob").glob("*/noise_white_10dB"))  # not even the intact run predicted
    # an audio file moved since cross-validation: named before any run cross-validates or predicts
    from mmser.data.manifest import read_manifest

    moved = Path(read_manifest(tmp_path / "a.csv")["path"].iloc[-1])
    moved.rename(tmp_path / "moved.wav")
    assert main([*args[:-1], "20,5,0"]) == 2
    assert f"{moved}: file not found, before clean: predicting its clips again" in capsys.readouterr().err
    assert not list((tmp_path / "rob").glob("*/noise_white_5dB"))


def _inaudible_noise_gives_the_clean_predictions(tmp_path, name, *overrides, split="test"):
    """A 3-fold run of a tiny model with ``overrides`` under white noise at 150 dB (inaudible) and 0 dB on each
    fold's ``split`` clips: the first reproduces every fold's clean probabilities, the second moves them. Returns
    the run folder and folds."""
    _prepared_csv(tmp_path, "a", ["angry", "sad"], per=6)
    whisper = save_tiny_whisper(tmp_path / "tiny.pt", state=32, layers=1)
    _csv_experiment(tmp_path / f"{name}.yaml", f"features.audio_encoders=[whisper:{whisper}]", "train.max_epochs=3",
                    *overrides)
    assert main(["robustness", str(tmp_path / f"{name}.yaml"), f"data.manifest={tmp_path / 'a.csv'}",
                 f"features.cache_dir={tmp_path / 'cache'}", "--out", str(tmp_path / "rob"), "--snr", "150,0",
                 "--split", split]) == 0
    run = tmp_path / "rob" / name
    folds = sorted(p.parent.name for p in run.glob("*/predictions.csv"))
    assert len(folds) == 3
    stored, prefix = ("predictions.csv", "") if split == "test" else ("val_predictions.csv", "val_")
    for fold in folds:
        clean = pd.read_csv(run / fold / stored)
        inaudible = pd.read_csv(run / f"{prefix}noise_white_150dB" / fold / stored)
        loud = pd.read_csv(run / f"{prefix}noise_white_0dB" / fold / stored).filter(like="prob_").to_numpy()
        assert list(inaudible["utt_id"]) == list(clean["utt_id"])  # the fold's own clips of that split, each once
        clean, inaudible = clean.filter(like="prob_").to_numpy(), inaudible.filter(like="prob_").to_numpy()
        np.testing.assert_allclose(inaudible, clean, atol=5e-4)  # 5e-5 for running; 5e-3 in stored order
        assert np.abs(loud - clean).max() > 1e-3
    return run, folds


def _counting_encoder_windows(monkeypatch) -> list[int]:
    """Every Predictor opened from now on counts the windows of each encoder call into the returned list."""
    from mmser.inference import Predictor

    encoded: list[int] = []
    opened = Predictor.from_checkpoint.__func__

    def counting(cls, *args, **kwargs):
        predictor = opened(cls, *args, **kwargs)
        for encoder in predictor.audio_encoders.values():
            encode = encoder.encode
            encoder.encode = lambda batch, encode=encode: (encoded.append(len(batch)), encode(batch))[1]
        return predictor

    monkeypatch.setattr(Predictor, "from_checkpoint", classmethod(counting))
    return encoded


@pytest.mark.parametrize("clips", [2, 5])
def test_enrolment_models_get_the_cv_draw_of_enrolment_clips_with_the_same_noise(tmp_path, monkeypatch, clips):
    # 6 clips per speaker: 2 enrolment clips are a seeded draw among the 5 others, which an inaudible SNR
    # reproduces only if each test clip gets the draw cross-validation gave it; 5 are all the others, so a
    # clip's prediction at 0 dB is that of the deployed path given the speaker's other clips with the same noise
    from mmser.evaluation.robustness import _noisy
    from mmser.inference import Predictor

    run, folds = _inaudible_noise_gives_the_clean_predictions(
        tmp_path, "enrol", "features.speaker_norm.mode=enrol", f"features.speaker_norm.clips={clips}")
    if clips == 2:  # each noisy clip is encoded once per SNR, for its moments and its prediction alike, in batches
        encoded = _counting_encoder_windows(monkeypatch)
        assert main(["robustness", str(tmp_path / "enrol.yaml"), f"data.manifest={tmp_path / 'a.csv'}",
                     f"features.cache_dir={tmp_path / 'cache'}", "--out", str(tmp_path / "rob"), "--snr", "20,10"]) == 0
        tested = sum(len(pd.read_csv(run / fold / "predictions.csv")) for fold in folds)
        assert sum(encoded) == 2 * tested and max(encoded) > 1
    if clips == 5:
        manifest = pd.read_csv(tmp_path / "a.csv", dtype=str)
        loud = pd.read_csv(run / "noise_white_0dB" / folds[0] / "predictions.csv", dtype={"utt_id": str})
        utt, speaker = loud["utt_id"].iloc[0], loud["speaker"].iloc[0]
        own = manifest[manifest["speaker"] == speaker].set_index("utt_id")["path"]
        noisy = {u: _noisy(load_audio(tmp_path / path), u, "white", 0.0) for u, path in own.items()}  # paths: beside the manifest
        predictor = Predictor.from_checkpoint(run / folds[0] / "model.safetensors")
        expected = predictor.predict(noisy[utt], enrolment=[w for u, w in noisy.items() if u != utt])
        np.testing.assert_allclose(loud.filter(like="prob_").to_numpy()[0],
                                   [expected.probabilities[c.removeprefix("prob_")] for c in loud.filter(like="prob_")],
                                   atol=1e-5)


@pytest.mark.parametrize("prior", [[], ["features.speaker_norm.prior_clips=2"]])
def test_running_models_hear_each_speakers_noisy_clips_in_the_cv_arrival_order(tmp_path, prior):
    # at an SNR where the noise is inaudible, the running statistics of the noisy clips so far are the clean
    # ones only if every speaker's clips arrive in cross-validation's order, each speaker with its own state
    _inaudible_noise_gives_the_clean_predictions(tmp_path, "running", "features.speaker_norm.mode=running", *prior)


def test_test_speakers_enrolled_with_fewer_clips_get_that_draw_under_noise(tmp_path):
    # trained with 5 enrolment clips (all the others), test speakers enrolled with a seeded draw of 2: an inaudible
    # SNR reproduces the clean test predictions only if each test clip gets the 2-clip draw cross-validation gave it
    _inaudible_noise_gives_the_clean_predictions(tmp_path, "enrol", "features.speaker_norm.mode=enrol",
                                                 "features.speaker_norm.clips=5", "features.speaker_norm.test_clips=2")


@pytest.mark.parametrize("overrides", [
    ["features.speaker_norm.mode=enrol", "features.speaker_norm.clips=2", "features.speaker_norm.test_labels=[angry]"],
    ["features.speaker_norm.mode=running"]], ids=["enrol", "running"])
def test_validation_clips_under_noise_are_standardised_as_in_training(tmp_path, overrides):
    # validation speakers were standardised in training with the enrolment pool of `labels` (all clips), not the
    # test speakers' `test_labels`: only that pool's seeded draw reproduces the clean validation predictions
    run, _ = _inaudible_noise_gives_the_clean_predictions(tmp_path, "model", *overrides, split="val")
    table = pd.read_csv(tmp_path / "rob" / "robustness_val.csv")
    assert list(table.columns) == ["run", "clean", "150 dB", "0 dB"]
    from mmser.evaluation.tables import run_row

    assert table["clean"].iloc[0] == pytest.approx(100 * run_row(run, run.parent)["val_UA_mean"], abs=0.01)
    assert table["150 dB"].iloc[0] == pytest.approx(table["clean"].iloc[0], abs=0.01)
    assert "validation clips" in (tmp_path / "rob" / "robustness_val.md").read_text()
    assert not (tmp_path / "rob" / "robustness.csv").exists() and not (run / "noise_white_0dB").exists()
    # results tables list test predictions only: the noisy validation clips are not rows of them
    assert main(["table", str(tmp_path / "rob")]) == 0
    assert "val_noise" not in (tmp_path / "rob" / "results.md").read_text()


def test_other_numbers_of_enrolment_clips_are_the_draws_cross_validation_makes_for_them(tmp_path, capsys):
    # trained with 5 enrolment clips (all the others of 6 per speaker): K=5 reproduces the cross-validated
    # predictions, and K=2 those of the same training with test speakers enrolled with 2 (speaker_norm.test_clips:
    # the same weights, each test clip with the seeded 2-clip draw cross-validation gave it)
    _prepared_csv(tmp_path, "a", ["angry", "sad"], per=6)
    whisper = save_tiny_whisper(tmp_path / "tiny.pt", state=32, layers=1)
    enrol = [f"features.audio_encoders=[whisper:{whisper}]", "train.max_epochs=3", "features.speaker_norm.mode=enrol",
             "features.speaker_norm.clips=5"]
    _csv_experiment(tmp_path / "enrol.yaml", *enrol)
    _csv_experiment(tmp_path / "enrol2.yaml", *enrol, "features.speaker_norm.test_clips=2")
    common = [f"data.manifest={tmp_path / 'a.csv'}", f"features.cache_dir={tmp_path / 'cache'}"]
    assert main(["cv", str(tmp_path / "enrol2.yaml"), *common, "--out", str(tmp_path / "enrol2")]) == 0
    for split in ("test", "val"):
        assert main(["robustness", str(tmp_path / "enrol.yaml"), *common, "--out", str(tmp_path / "rob"),
                     "--enrol-clips", "2,5", "--split", split]) == 0
    run = tmp_path / "rob" / "enrol"
    folds = sorted(p.parent.name for p in run.glob("*/predictions.csv"))
    assert len(folds) == 3
    for fold in folds:
        for stored, prefix in (("predictions.csv", ""), ("val_predictions.csv", "val_")):
            clean = pd.read_csv(run / fold / stored)
            all_others = pd.read_csv(run / f"{prefix}enrol_5clips" / fold / stored)
            assert list(all_others["utt_id"]) == list(clean["utt_id"])
            np.testing.assert_allclose(all_others.filter(like="prob_").to_numpy(), clean.filter(like="prob_").to_numpy(),
                                       atol=5e-4)
        two = pd.read_csv(run / "enrol_2clips" / fold / "predictions.csv").filter(like="prob_").to_numpy()
        np.testing.assert_allclose(two, pd.read_csv(tmp_path / "enrol2" / fold / "predictions.csv")
                                   .filter(like="prob_").to_numpy(), atol=5e-4)
        assert np.abs(two - pd.read_csv(run / fold / "predictions.csv").filter(like="prob_").to_numpy()).max() > 1e-3
    table = pd.read_csv(tmp_path / "rob" / "enrolment_val.csv")
    assert list(table.columns) == ["run", "clean", "2 clips", "5 clips"]
    assert table["5 clips"].iloc[0] == pytest.approx(table["clean"].iloc[0], abs=0.01)
    assert (tmp_path / "rob" / "enrolment.png").is_file() and "enrolment clips" in (tmp_path / "rob" / "enrolment.md").read_text()
    assert not (tmp_path / "rob" / "robustness.csv").exists()
    # refused before any work: a model without enrolment clips, noise with enrolment sizes, a bad list
    _csv_experiment(tmp_path / "plain.yaml", f"features.audio_encoders=[whisper:{whisper}]")
    capsys.readouterr()
    for config, options, reason in (("plain.yaml", ["--enrol-clips", "2"], "not enrol"),
                                    ("enrol.yaml", ["--enrol-clips", "2", "--snr", "10"], "give one of them"),
                                    ("enrol.yaml", ["--enrol-clips", "0,2"], "numbers >= 1")):
        assert main(["robustness", str(tmp_path / config), *common, "--out", str(tmp_path / "rob2"), *options]) == 2
        assert reason in capsys.readouterr().err and not (tmp_path / "rob2").exists()


def test_validation_split_without_validation_speakers_is_refused_by_name(tmp_path, capsys):
    _prepared_csv(tmp_path, "a", ["angry", "sad"], per=4)
    whisper = save_tiny_whisper(tmp_path / "tiny.pt", state=32, layers=1)
    _csv_experiment(tmp_path / "noval.yaml", f"features.audio_encoders=[whisper:{whisper}]", "split.val_speakers=0")
    assert main(["robustness", str(tmp_path / "noval.yaml"), f"data.manifest={tmp_path / 'a.csv'}",
                 f"features.cache_dir={tmp_path / 'cache'}", "--out", str(tmp_path / "rob"), "--split", "val"]) == 2
    err = capsys.readouterr().err
    assert "val_predictions.csv" in err and "split.val_speakers" in err


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


def test_an_average_of_runs_is_tabled_beside_them_from_its_averaged_conditions(tmp_path, capsys):
    """mmser average averages the enrolment conditions its parts stored, clip by clip (the draw is the clip's, not
    the model's); robustness --with tables the average from those, predicting nothing for it."""
    _prepared_csv(tmp_path, "a", ["angry", "sad"], per=6)
    whisper = save_tiny_whisper(tmp_path / "tiny.pt", state=32, layers=1)
    enrol = [f"features.audio_encoders=[whisper:{whisper}]", "features.speaker_norm.mode=enrol",
             "features.speaker_norm.clips=5"]
    _csv_experiment(tmp_path / "short.yaml", *enrol, "train.max_epochs=2")
    _csv_experiment(tmp_path / "long.yaml", *enrol, "train.max_epochs=4")
    common = [f"data.manifest={tmp_path / 'a.csv'}", f"features.cache_dir={tmp_path / 'cache'}"]
    rob = tmp_path / "rob"
    args = ["robustness", str(tmp_path / "short.yaml"), str(tmp_path / "long.yaml"), *common, "--out", str(rob),
            "--split", "val", "--enrol-clips", "2"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["average", str(rob / "short"), str(rob / "long"), "--out", str(rob / "average")]) == 0
    assert "averaged too: val_enrol_2clips" in capsys.readouterr().out
    assert json.loads((rob / "average" / "average.json").read_text())["conditions"] == ["val_enrol_2clips"]
    folds = sorted(p.parent.name for p in (rob / "short").glob("*/predictions.csv"))
    for fold in folds:
        parts = [pd.read_csv(rob / run / "val_enrol_2clips" / fold / "val_predictions.csv") for run in ("short", "long")]
        got = pd.read_csv(rob / "average" / "val_enrol_2clips" / fold / "val_predictions.csv")
        assert list(got["utt_id"]) == list(parts[0]["utt_id"])
        np.testing.assert_allclose(got.filter(like="prob_").to_numpy(),
                                   np.mean([p.filter(like="prob_").to_numpy() for p in parts], axis=0), atol=1e-6)
    # a condition the average does not hold is refused before any run predicts it
    capsys.readouterr()
    assert main([*args[:-1], "2,3", "--with", str(rob / "average")]) == 2
    assert "val_enrol_3clips" in capsys.readouterr().err and not (rob / "short" / "val_enrol_3clips").exists()
    assert main([*args, "--with", str(rob / "average")]) == 0
    table = pd.read_csv(rob / "enrolment_val.csv").set_index("run")
    assert list(table.index) == ["short", "long", "average"]
    from mmser.evaluation.robustness import mean_fold_ua

    assert table.loc["average", "2 clips"] == pytest.approx(
        mean_fold_ua(rob / "average" / "val_enrol_2clips", rob / "average", "val"), abs=0.01)
    assert table.loc["average", "clean"] == pytest.approx(
        100 * json.loads((rob / "average" / "average.json").read_text())["val_UA_mean"], abs=0.01)
    assert "--with " in (rob / "enrolment_val.md").read_text()
    # a condition one run lacks for a fold is left out of a new average, and said so
    shutil.rmtree(rob / "long" / "val_enrol_2clips" / folds[0])
    capsys.readouterr()
    assert main(["average", str(rob / "short"), str(rob / "long"), "--out", str(rob / "average2")]) == 0
    assert "note: left out, since not every run stored them for every fold: val_enrol_2clips" in capsys.readouterr().out
    assert not (rob / "average2" / "val_enrol_2clips").exists()


def test_validation_groups_each_predict_their_own_noisy_validation_clips_and_the_table_is_their_mean(tmp_path,
                                                                                                      capsys):
    from mmser.evaluation.robustness import robustness_table

    _prepared_csv(tmp_path, "a", ["angry", "sad", "happy"], n_speakers=4, per=6, varied=True)
    whisper = save_tiny_whisper(tmp_path / "tiny.pt", state=32, layers=1)
    _csv_experiment(tmp_path / "model.yaml", f"features.audio_encoders=[whisper:{whisper}]", "train.max_epochs=20")
    base = ["robustness", str(tmp_path / "model.yaml"), f"data.manifest={tmp_path / 'a.csv'}",
            f"features.cache_dir={tmp_path / 'cache'}", "--out", str(tmp_path / "rob"), "--snr", "0", "--split", "val"]
    assert main([*base, "--val-groups", "2"]) == 0
    run = tmp_path / "rob" / "model"
    folds = sorted(p.parent.name for p in run.glob("*/predictions.csv"))
    assert len(folds) == 4
    for fold in folds:
        first = json.loads((run / fold / "metrics.json").read_text())
        second = json.loads((run / "val_group1" / fold / "metrics.json").read_text())
        assert second["test_speakers"] == first["test_speakers"]
        assert not set(second["val_speakers"]) & set(first["val_speakers"] + first["test_speakers"])
        for group, record in ((run, first), (run / "val_group1", second)):  # each group's own validation speakers
            noisy = pd.read_csv(group / "val_noise_white_0dB" / fold / "val_predictions.csv", dtype=str)
            clean = pd.read_csv(group / fold / "val_predictions.csv", dtype=str)
            assert set(noisy["speaker"]) == set(record["val_speakers"]) and list(noisy["utt_id"]) == list(clean["utt_id"])
    table = pd.read_csv(tmp_path / "rob" / "robustness_val.csv")
    per_group = [robustness_table([group], "white", [0.0], "val") for group in (run, run / "val_group1")]
    for column in ("clean", "0 dB"):
        mean = (per_group[0][column].iloc[0] + per_group[1][column].iloc[0]) / 2
        assert table[column].iloc[0] == pytest.approx(mean, abs=0.006)
    # two groups, two figures: the table is a real mean, not one group's
    assert any(per_group[0][c].iloc[0] != per_group[1][c].iloc[0] for c in ("clean", "0 dB")), per_group
    markdown = (tmp_path / "rob" / "robustness_val.md").read_text()
    assert "--val-groups 2" in markdown and "mean over 2 disjoint groups" in markdown
    # one group: the first group's figures alone, from the same runs (nothing trained again)
    assert main(base) == 0
    one = pd.read_csv(tmp_path / "rob" / "robustness_val.csv")
    assert one["0 dB"].iloc[0] == pytest.approx(per_group[0]["0 dB"].iloc[0], abs=0.006)
    capsys.readouterr()
    # refused before any work: groups of test clips; more groups than a fold's training side holds
    assert main([*base[:-2], "--val-groups", "2"]) == 2 and "--split val" in capsys.readouterr().err
    assert main([*base, "--val-groups", "4"]) == 2 and not (run / "val_group3").exists()
