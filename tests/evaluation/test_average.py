"""Averaged runs: per-utterance mean of the parts' stored probabilities, refused when the parts differ."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mmser.errors import MmserError
from mmser.evaluation.average import AVERAGE_FILE, average_runs
from mmser.evaluation.crossval import PROB_COLUMNS
from mmser.evaluation.tables import build_table
from mmser.labels import EMOTIONS

FOLDS = {"fold0": (["s1"], ["s2"]), "fold1": (["s2"], ["s1"])}  # fold -> (test speakers, validation speakers)


def fake_run(run, seed, classes="[angry, sad]", val_groups=1, folds=FOLDS):
    """A cross-validated run as mmser cv stores it: config.yaml, and per fold metrics.json and the test and
    validation predictions (4 utterances each, random probabilities)."""
    rng = np.random.default_rng(seed)
    for group in range(val_groups):
        where = run if group == 0 else run / f"val_group{group}"
        where.mkdir(parents=True)
        (where / "config.yaml").write_text(f"data:\n  manifest: m{seed}.csv\n  classes: {classes}\nsplit:\n  seed: 0\n")
        for fold, (test, val) in folds.items():
            (where / fold).mkdir()
            for kind, speakers in (("predictions.csv", test), ("val_predictions.csv", val)):
                probs = rng.dirichlet(np.ones(8), size=4)  # (4, 8)
                table = pd.DataFrame({"utt_id": [f"{speakers[0]}_{fold}_{i}" for i in range(4)],
                                      "speaker": speakers[0], "true": ["angry", "sad", "angry", "sad"],
                                      "pred": [EMOTIONS[i] for i in probs.argmax(1)]})
                table[PROB_COLUMNS] = probs
                table.to_csv(where / fold / kind, index=False)
            (where / fold / "metrics.json").write_text(json.dumps({"UA": 0.5, "val_UA": 0.5, "test_speakers": test,
                                                                   "val_speakers": val}))
    return run


def test_the_average_is_the_mean_of_the_parts_probabilities(tmp_path):
    parts = [fake_run(tmp_path / "sel" / name, seed) for seed, name in enumerate(("a", "b", "c"))]
    summary = average_runs(parts, tmp_path / "sel" / "average")
    out = tmp_path / "sel" / "average"
    for fold in FOLDS:
        for kind in ("predictions.csv", "val_predictions.csv"):
            got = pd.read_csv(out / fold / kind).set_index("utt_id")
            # the parts in another row order: the average matches utterances by id
            tables = [pd.read_csv(p / fold / kind).sample(frac=1, random_state=1).set_index("utt_id").loc[got.index]
                      for p in parts]
            want = np.mean([t[PROB_COLUMNS].values for t in tables], axis=0)
            np.testing.assert_allclose(got[PROB_COLUMNS].values, want, atol=1e-6)
            assert list(got["pred"]) == [EMOTIONS[i] for i in want.argmax(1)]
    metrics = json.loads((out / "fold0" / "metrics.json").read_text())
    assert metrics["test_speakers"] == ["s1"] and metrics["averaged_parts"] == ["../a", "../b", "../c"]
    assert json.loads((out / AVERAGE_FILE).read_text())["parts"] == ["../a", "../b", "../c"]
    table = build_table(tmp_path / "sel").set_index("run")
    assert abs(table.loc["average", "UA_mean"] - summary["UA_mean"]) < 1e-9  # mmser table reads it as a run
    assert abs(table.loc["average", "val_UA_mean"] - summary["val_UA_mean"]) < 1e-9


def test_every_validation_group_is_averaged(tmp_path):
    parts = [fake_run(tmp_path / name, seed, val_groups=2) for seed, name in enumerate(("a", "b"))]
    summary = average_runs(parts, tmp_path / "avg", val_groups=2)
    group1 = [pd.read_csv(p / "val_group1" / "fold1" / "val_predictions.csv")[PROB_COLUMNS].values for p in parts]
    got = pd.read_csv(tmp_path / "avg" / "val_group1" / "fold1" / "val_predictions.csv")[PROB_COLUMNS].values
    np.testing.assert_allclose(got, np.mean(group1, axis=0), atol=1e-6)
    val_uas = [json.loads(p.read_text())["val_UA"] for p in sorted((tmp_path / "avg").rglob("metrics.json"))]
    assert len(val_uas) == 4 and abs(summary["val_UA_mean"] - np.mean(val_uas)) < 1e-9


def test_parts_that_differ_are_refused_before_anything_is_written(tmp_path):
    a = fake_run(tmp_path / "a", 0)
    other_classes = fake_run(tmp_path / "b", 1, classes="[angry, sad, happy]")
    with pytest.raises(MmserError, match=r"b: data.classes \[.angry., .sad., .happy.\] differs"):
        average_runs([a, other_classes], tmp_path / "avg")
    swapped = fake_run(tmp_path / "c", 2, folds={"fold0": (["s2"], ["s1"]), "fold1": (["s1"], ["s2"])})
    with pytest.raises(MmserError, match="other test or validation speakers"):
        average_runs([a, swapped], tmp_path / "avg")
    fewer = fake_run(tmp_path / "d", 3)
    (fewer / "fold1" / "val_predictions.csv").unlink()
    with pytest.raises(MmserError, match=r"missing: .*d/fold1/val_predictions.csv"):
        average_runs([a, fewer], tmp_path / "avg")
    assert not (tmp_path / "avg").exists()
    with pytest.raises(MmserError, match="at least two runs"):
        average_runs([a], tmp_path / "avg")
    with pytest.raises(MmserError, match="a run is named twice"):
        average_runs([a, tmp_path / "." / "a"], tmp_path / "avg")
    assert not (tmp_path / "avg").exists()


def test_runs_of_one_name_in_two_folders_average(tmp_path):
    """A study and an ablation cell may both be called audio_only."""
    parts = [fake_run(tmp_path / "studies" / "audio_only", 0), fake_run(tmp_path / "ablation" / "audio_only", 1)]
    average_runs(parts, tmp_path / "studies" / "audio_average")
    document = json.loads((tmp_path / "studies" / "audio_average" / AVERAGE_FILE).read_text())
    assert document["parts"] == ["../audio_only", "../../ablation/audio_only"]


def test_the_command_prints_both_scores_and_names_a_bad_run(tmp_path):
    parts = [str(fake_run(tmp_path / name, seed)) for seed, name in enumerate(("a", "b"))]
    done = subprocess.run([sys.executable, "-m", "mmser.cli", "average", *parts, "--out", str(tmp_path / "avg")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "2 runs averaged: validation UA" in done.stdout and "test UA" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "mmser.cli", "average", parts[0], str(tmp_path / "nowhere"), "--out",
                          str(tmp_path / "avg2")], capture_output=True, text=True)
    assert bad.returncode == 2 and "nowhere/config.yaml: missing" in bad.stderr
    assert json.loads((tmp_path / "avg" / AVERAGE_FILE).read_text())["one_speaker_norm"] is True
    assert "standardise frames per speaker differently" not in done.stdout
    # one part standardised with enrolment clips, the other not: averaged, with a note that it is a study only
    config = tmp_path / "b" / "config.yaml"
    config.write_text(config.read_text() + "features:\n  speaker_norm:\n    mode: enrol\n    clips: 3\n")
    mixed = subprocess.run([sys.executable, "-m", "mmser.cli", "average", *parts, "--out", str(tmp_path / "avg3")],
                           capture_output=True, text=True)
    assert mixed.returncode == 0 and "standardise frames per speaker differently" in mixed.stdout, mixed.stderr
    assert json.loads((tmp_path / "avg3" / AVERAGE_FILE).read_text())["one_speaker_norm"] is False


def test_conditions_every_part_stored_are_averaged_and_others_left_out(tmp_path):
    """Robustness conditions (noise, enrolment sizes) stored by every part for every fold are averaged clip by clip;
    one a part lacks for a fold is left out, never averaged over fewer parts."""
    parts = [fake_run(tmp_path / name, seed) for seed, name in enumerate(("a", "b"))]
    rng = np.random.default_rng(7)
    for part in parts:
        for condition, kind in (("noise_white_10dB", "predictions.csv"), ("val_enrol_5clips", "val_predictions.csv"),
                                ("enrol_2clips", "predictions.csv")):
            for fold in FOLDS:
                if condition == "enrol_2clips" and part.name == "b" and fold == "fold1":
                    continue
                (part / condition / fold).mkdir(parents=True)
                table = pd.read_csv(part / fold / kind)
                table[PROB_COLUMNS] = rng.dirichlet(np.ones(8), size=len(table))
                table.to_csv(part / condition / fold / kind, index=False)
                (part / condition / fold / "metrics.json").write_text("{}")
    summary = average_runs(parts, tmp_path / "avg")
    assert summary["conditions"] == ["noise_white_10dB", "val_enrol_5clips"]
    assert summary["conditions_left_out"] == ["enrol_2clips"]
    assert not (tmp_path / "avg" / "enrol_2clips").exists()
    for condition, kind in (("noise_white_10dB", "predictions.csv"), ("val_enrol_5clips", "val_predictions.csv")):
        for fold in FOLDS:
            got = pd.read_csv(tmp_path / "avg" / condition / fold / kind)
            want = np.mean([pd.read_csv(p / condition / fold / kind)[PROB_COLUMNS].values for p in parts], axis=0)
            np.testing.assert_allclose(got[PROB_COLUMNS].values, want, atol=1e-6)
            metrics = json.loads((tmp_path / "avg" / condition / fold / "metrics.json").read_text())
            assert metrics["split"] == ("val" if condition.startswith("val_") else "test") and "UA" in metrics


@pytest.mark.parametrize("split", ["test", "val"])
def test_every_condition_folder_robustness_names_is_recognised_with_its_split(split):
    from mmser.evaluation.robustness import condition_name, condition_split, enrolment_name

    for name in [condition_name(kind, snr, split) for kind in ("white", "pink") for snr in (20, 2.5, 0, -5)] + \
            [enrolment_name(k, split) for k in (1, 10, 59)]:
        assert condition_split(name) == split, name
    for other in ("fold0", "val_group1", "selected", "average", "noise_white", "enrol_clips"):
        assert condition_split(other) is None
