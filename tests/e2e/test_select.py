"""``mmser select``: the choice per fold follows validation UA only, never the test fold."""

import json
import re
import shutil

import pandas as pd
import pytest

from mmser.cli import main
from mmser.errors import MmserError
from mmser.evaluation.selection import select_per_fold, selection_table, validation_lead
from tests.conftest import save_tiny_whisper
from tests.e2e.test_cv_smoke import _csv_experiment, _prepared_csv


@pytest.fixture(scope="module")
def selection(tmp_path_factory):
    root = tmp_path_factory.mktemp("select")
    _prepared_csv(root, "a", ["angry", "sad", "happy"], n_speakers=4)
    whisper = save_tiny_whisper(root / "tiny.pt", state=32, layers=1)
    _csv_experiment(root / "short.yaml", f"features.audio_encoders=[whisper:{whisper}]", "train.max_epochs=1")
    _csv_experiment(root / "longer.yaml", f"features.audio_encoders=[whisper:{whisper}]", "train.max_epochs=4",
                    "features.augment.time_mask=0.2")
    _select(root, root / "sel", "short", "longer")
    return root / "sel"


def _select(root, out, *candidates, options=(), status=0):
    """``mmser select`` of the fixture's candidate configs ``root/<name>.yaml`` into ``out``."""
    assert main(["select", *(str(root / f"{name}.yaml") for name in candidates), f"data.manifest={root / 'a.csv'}",
                 f"features.cache_dir={root / 'cache'}", "--out", str(out), *options]) == status


def test_each_fold_takes_the_candidate_with_the_best_validation_ua(selection):
    folds = sorted(p.parent.name for p in (selection / "selected").glob("*/selection.json"))
    assert len(folds) == 4
    for fold in folds:
        record = json.loads((selection / "selected" / fold / "selection.json").read_text())
        scores = {}
        for name in ("short", "longer"):
            metrics = json.loads((selection / name / fold / "metrics.json").read_text())
            val = pd.read_csv(selection / name / fold / "val_predictions.csv", dtype=str)
            assert set(val["speaker"]) == set(metrics["val_speakers"])  # validation speakers, never the test ones
            assert not set(val["speaker"]) & set(metrics["test_speakers"])
            scores[name] = metrics["val_UA"]
        assert record["val_UA"] == scores
        best = "short" if scores["short"] >= scores["longer"] else "longer"
        assert record["chosen"] == best
        chosen = pd.read_csv(selection / best / fold / "predictions.csv")
        pd.testing.assert_frame_equal(pd.read_csv(selection / "selected" / fold / "predictions.csv"), chosen)
    table = pd.read_csv(selection / "selection.csv")
    assert table["folds_chosen"].iloc[:2].sum() == 4 and table["recommended"].sum() == 1
    assert "nested" in table["recipe"].iloc[-1]
    assert "never used" in (selection / "selection.md").read_text()


def test_the_choice_does_not_move_when_only_test_predictions_change(selection, tmp_path):
    """Rewriting a candidate's test predictions (and test metrics) changes no choice."""
    copy = tmp_path / "sel"
    shutil.copytree(selection, copy)
    before = {p.parent.name: json.loads(p.read_text())["chosen"] for p in (copy / "selected").glob("*/selection.json")}
    for fold_dir in (copy / "short").glob("*/"):
        if (fold_dir / "predictions.csv").is_file():
            pred = pd.read_csv(fold_dir / "predictions.csv")
            pred["pred"] = pred["true"]  # a perfect test score
            pred.to_csv(fold_dir / "predictions.csv", index=False)
            metrics = json.loads((fold_dir / "metrics.json").read_text())
            metrics["UA"] = 1.0
            (fold_dir / "metrics.json").write_text(json.dumps(metrics))
    shutil.rmtree(copy / "selected")
    select_per_fold({"short": copy / "short", "longer": copy / "longer"}, copy)
    after = {p.parent.name: json.loads(p.read_text())["chosen"] for p in (copy / "selected").glob("*/selection.json")}
    assert after == before


def test_the_blind_rule_leaves_each_folds_test_speakers_out_of_every_validation_set(selection, tmp_path):
    """selected_blind: per fold, the recommended recipe's rule (best mean validation UA over every fold) on the
    validation sets without that fold's test speakers; making a candidate perfect on those speakers' validation
    utterances (in the other folds) moves no fold's own choice."""
    from sklearn.metrics import balanced_accuracy_score

    from mmser.evaluation.selection import select_blind

    names = ("short", "longer")
    folds = sorted(p.parent.name for p in (selection / "selected_blind").glob("*/selection.json"))
    assert len(folds) == 4
    vals = {(n, f): pd.read_csv(selection / n / f / "val_predictions.csv", dtype=str) for n in names for f in folds}
    seen_as_validation = 0
    for fold in folds:
        record = json.loads((selection / "selected_blind" / fold / "selection.json").read_text())
        test = set(json.loads((selection / "short" / fold / "metrics.json").read_text())["test_speakers"])
        assert set(record["test_speakers"]) == test
        want = {}
        for name in names:
            uas = [balanced_accuracy_score(v["true"][~v["speaker"].isin(test)], v["pred"][~v["speaker"].isin(test)])
                   for f in folds if len(v := vals[(name, f)][~vals[(name, f)]["speaker"].isin(test)])]
            want[name] = sum(uas) / len(uas)
        assert record["val_UA_without_test_speakers"] == pytest.approx(want)
        assert record["chosen"] == ("short" if want["short"] >= want["longer"] else "longer")
        pd.testing.assert_frame_equal(pd.read_csv(selection / "selected_blind" / fold / "predictions.csv"),
                                      pd.read_csv(selection / record["chosen"] / fold / "predictions.csv"))
        seen_as_validation += any(vals[("short", f)]["speaker"].isin(test).any() for f in folds)
    assert seen_as_validation > 0  # the fixture's test speakers are other folds' validation speakers
    table = pd.read_csv(selection / "selection.csv")
    assert "blind to its test speakers" in table["recipe"].iloc[-1]
    assert "has seen each fold's test speakers a little" in (selection / "selection.md").read_text()
    # the losing candidate made perfect on each fold's test speakers' validation utterances: no blind choice moves
    for fold in folds:
        copy = tmp_path / fold
        shutil.copytree(selection, copy)
        test = json.loads((copy / "short" / fold / "metrics.json").read_text())["test_speakers"]
        record = json.loads((copy / "selected_blind" / fold / "selection.json").read_text())
        loser = next(n for n in names if n != record["chosen"])
        for f in folds:
            path = copy / loser / f / "val_predictions.csv"
            val = pd.read_csv(path, dtype=str, keep_default_na=False)
            val.loc[val["speaker"].isin(test), "pred"] = val.loc[val["speaker"].isin(test), "true"]
            val.to_csv(path, index=False)
        shutil.rmtree(copy / "selected_blind")
        select_blind({n: copy / n for n in names}, copy)
        again = json.loads((copy / "selected_blind" / fold / "selection.json").read_text())
        assert again["chosen"] == record["chosen"]
        assert again["val_UA_without_test_speakers"] == record["val_UA_without_test_speakers"]


def test_candidates_on_other_folds_are_refused(selection, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(selection / "longer", other)
    metrics_file = sorted(other.glob("*/metrics.json"))[0]
    metrics = json.loads(metrics_file.read_text())
    metrics["val_speakers"] = metrics["test_speakers"]
    metrics_file.write_text(json.dumps(metrics))
    with pytest.raises(MmserError, match="other test or validation speakers"):
        select_per_fold({"short": selection / "short", "other": other}, tmp_path)


def test_progress_shows_validation_ua_and_never_a_test_fold(selection, tmp_path, capsys):
    """Resumed (every fold done), ``mmser select`` prints each fold's validation UA; test UA appears only in the
    table printed after the choice."""
    root = selection.parent
    copy = tmp_path / "sel"
    shutil.copytree(selection, copy)
    capsys.readouterr()
    _select(root, copy, "short", "longer")
    progress = [line for line in capsys.readouterr().out.splitlines() if "skipped" in line]
    assert len(progress) == 8  # 2 candidates x 4 folds
    for line in progress:
        name, fold = re.search(r"(\w+)/(fold\d+)", line).groups()
        metrics = json.loads((selection / name / fold / "metrics.json").read_text())
        assert f"validation UA {metrics['val_UA']:.3f}" in line
        assert re.search(r"(?<!validation )\bUA\b", line) is None


def test_a_candidate_whose_every_fold_is_done_loads_no_features(selection, tmp_path, monkeypatch):
    """Resuming a selection to add a candidate (or `mmser cv` on a finished run) must not encode or load the
    finished runs' features again (a finished candidate's encoder may be slow, or its cache pruned)."""
    import mmser.recipes.cv as cv

    root = selection.parent
    copy = tmp_path / "sel"
    shutil.copytree(selection, copy)
    shutil.rmtree(copy / "longer" / "fold3")
    loaded = []
    real_store_for = cv.store_for

    def store_for(rows, cfg, *args, **kwargs):
        loaded.append(int(cfg.train.max_epochs))
        return real_store_for(rows, cfg, *args, **kwargs)

    monkeypatch.setattr(cv, "store_for", store_for)
    _select(root, copy, "short", "longer")
    assert loaded == [4]  # "longer" (4 epochs) had a fold to train; "short" had none
    assert (copy / "longer" / "fold3" / "metrics.json").is_file()
    assert (copy / "selection.csv").read_text() == (selection / "selection.csv").read_text()
    assert main(["cv", str(root / "short.yaml"), f"data.manifest={root / 'a.csv'}", f"features.cache_dir={root / 'cache'}",
                 "--out", str(copy / "short")]) == 0
    assert loaded == [4]


def test_progress_of_a_fold_trained_now_shows_validation_ua_only(selection, tmp_path, capsys):
    root = selection.parent
    capsys.readouterr()
    _select(root, tmp_path / "sel", "short")
    trained = [line for line in capsys.readouterr().out.splitlines() if re.search(r"short/fold\d+: .*\(\d+ s\)", line)]
    assert len(trained) == 4
    for line in trained:
        fold = re.search(r"(fold\d+)", line).group(1)
        metrics = json.loads((tmp_path / "sel" / "short" / fold / "metrics.json").read_text())
        assert f"validation UA {metrics['val_UA']:.3f}" in line
        assert re.search(r"(?<!validation )\bUA\b|\bWA\b", line) is None


def _with_validation_predictions(source, dest, rewrite):
    """A copy ``dest`` of candidate folder ``source`` whose every fold's val_predictions.csv is rewritten by
    ``rewrite``."""
    shutil.copytree(source, dest)
    for path in sorted(dest.glob("*/val_predictions.csv")):
        pred = pd.read_csv(path, dtype=str)
        rewrite(pred)
        pred.to_csv(path, index=False)
    return dest


def test_the_validation_lead_counts_resamples_where_the_leader_is_ahead(selection, tmp_path):
    """Against a leader right on every validation utterance: a copy of it is never strictly behind (0), a
    candidate wrong on every utterance is behind in every resample (1), the real candidates lie in between,
    and the order of the candidates does not change a figure."""
    def right(p):
        p["pred"] = p["true"]

    def wrong_class(p):
        p["pred"] = p["true"].map({"angry": "sad", "sad": "happy", "happy": "angry"})

    perfect = _with_validation_predictions(selection / "short", tmp_path / "perfect", right)
    same = _with_validation_predictions(selection / "longer", tmp_path / "same", right)
    wrong = _with_validation_predictions(selection / "longer", tmp_path / "wrong", wrong_class)
    candidates = {"perfect": perfect, "same": same, "wrong": wrong, "short": selection / "short"}
    lead = validation_lead(candidates, "perfect")
    assert set(lead) == {"same", "wrong", "short"}
    assert lead["same"] == 0.0 and lead["wrong"] == 1.0
    assert 0.0 < lead["short"] <= 1.0
    assert validation_lead(dict(reversed(list(candidates.items()))), "perfect") == lead
    # the leader behind a perfect candidate: it is ahead in no resample
    assert validation_lead({"short": selection / "short", "perfect": perfect}, "short") == {"perfect": 0.0}


def test_the_validation_lead_never_reads_a_test_fold(selection, tmp_path):
    copy = tmp_path / "sel"
    shutil.copytree(selection, copy)
    candidates = {"short": copy / "short", "longer": copy / "longer"}
    before = validation_lead(candidates, "short")
    for path in (copy / "longer").glob("*/predictions.csv"):
        pred = pd.read_csv(path)
        pred["pred"] = pred["true"]
        pred.to_csv(path, index=False)
    assert validation_lead(candidates, "short") == before


def test_the_validation_lead_refuses_other_validation_utterances(selection, tmp_path):
    def rename(p):
        p["utt_id"] = p["utt_id"] + "_x"

    other = _with_validation_predictions(selection / "longer", tmp_path / "other", rename)
    with pytest.raises(MmserError, match=r"val_predictions\.csv: other validation utterances"):
        validation_lead({"short": selection / "short", "other": other}, "short")


def test_the_table_shows_the_validation_lead_of_the_recommended_recipe(selection):
    table = pd.read_csv(selection / "selection.csv")
    recommended = table["recommended"].astype(bool)
    assert table.loc[recommended, "recommended_ahead"].isna().all()
    nested = table["recipe"].str.endswith("(nested)")
    assert nested.sum() == 2 and table.loc[nested, "recommended_ahead"].isna().all()  # the nested rows
    others = table.loc[~recommended & ~nested, "recommended_ahead"]
    assert len(others) == 1 and others.between(0, 1).all()
    leader = table.loc[recommended, "recipe"].item()
    other = table.loc[~recommended, "recipe"].iloc[0]
    lead = validation_lead({leader: selection / leader, other: selection / other}, leader)[other]
    assert abs(others.item() - lead) < 1e-4
    assert "recommended ahead in validation resamples (%)" in (selection / "selection.md").read_text()


@pytest.fixture(scope="module")
def two_groups(selection, tmp_path_factory):
    """The fixture's selection resumed with ``--val-groups 2``: group 0's folds kept, group 1's trained."""
    out = tmp_path_factory.mktemp("groups") / "sel"
    shutil.copytree(selection, out)
    _select(selection.parent, out, "short", "longer", options=["--val-groups", "2"])
    return out


def test_a_second_validation_group_holds_out_other_training_speakers(selection, two_groups):
    for name in ("short", "longer"):
        for fold in sorted(p.parent.name for p in (two_groups / name).glob("*/metrics.json")):
            first = json.loads((two_groups / name / fold / "metrics.json").read_text())
            assert first == json.loads((selection / name / fold / "metrics.json").read_text())  # resumed, kept
            second = json.loads((two_groups / name / "val_group1" / fold / "metrics.json").read_text())
            assert second["test_speakers"] == first["test_speakers"]
            assert not set(second["val_speakers"]) & set(first["val_speakers"] + first["test_speakers"])
            val = pd.read_csv(two_groups / name / "val_group1" / fold / "val_predictions.csv", dtype=str)
            assert set(val["speaker"]) == set(second["val_speakers"])


def test_selection_reads_the_mean_validation_ua_over_the_groups(two_groups):
    for path in sorted((two_groups / "selected").glob("*/selection.json")):
        record, fold = json.loads(path.read_text()), path.parent.name
        for name in ("short", "longer"):
            by_group = [json.loads((run / fold / "metrics.json").read_text())["val_UA"]
                        for run in (two_groups / name, two_groups / name / "val_group1")]
            assert record["val_UA_by_group"][name] == by_group
            assert record["val_UA"][name] == pytest.approx(sum(by_group) / 2)
        chosen = max(record["val_UA"], key=lambda n: record["val_UA"][n])
        assert record["chosen"] == chosen and len(record["val_speakers_by_group"]) == 2
        pd.testing.assert_frame_equal(pd.read_csv(path.parent / "predictions.csv"),  # group 0's test predictions
                                      pd.read_csv(two_groups / chosen / path.parent.name / "predictions.csv"))
    table = pd.read_csv(two_groups / "selection.csv")
    for name in ("short", "longer"):
        records = [json.loads(p.read_text()) for p in sorted((two_groups / "selected").glob("*/selection.json"))]
        expected = sum(r["val_UA"][name] for r in records) / len(records)
        assert table.loc[table["recipe"] == name, "val_UA"].item() == pytest.approx(expected, abs=1e-4)
    markdown = (two_groups / "selection.md").read_text()
    assert "--val-groups 2" in markdown and "mean over 2 disjoint groups" in markdown


def test_one_validation_group_ignores_the_others_and_gives_the_first_table(selection, two_groups, tmp_path):
    copy = tmp_path / "sel"
    shutil.copytree(two_groups, copy)
    _select(selection.parent, copy, "short", "longer")
    pd.testing.assert_frame_equal(pd.read_csv(copy / "selection.csv"), pd.read_csv(selection / "selection.csv"))


def test_the_validation_lead_reads_every_group(two_groups, tmp_path):
    """A copy of a candidate, right on every validation utterance of group 1 only: never strictly ahead of the
    candidate on group 0 alone, ahead in resamples once group 1 is read."""
    def right(p):
        p["pred"] = p["true"]

    short = two_groups / "short"
    assert json.loads((short / "val_group1" / "fold0" / "metrics.json").read_text())["val_UA"] < 1.0
    better = tmp_path / "better"
    shutil.copytree(short, better, ignore=shutil.ignore_patterns("val_group1"))
    _with_validation_predictions(short / "val_group1", better / "val_group1", right)
    candidates = {"better": better, "short": short}
    assert validation_lead(candidates, "better") == {"short": 0.0}
    assert validation_lead(candidates, "better", val_groups=2)["short"] > 0.5
    table = selection_table({"short": short, "longer": two_groups / "longer"}, two_groups, val_groups=2)
    assert table["recommended_ahead"].notna().sum() == 1


def test_progress_of_a_second_group_names_the_recipe(selection, two_groups, tmp_path, capsys):
    out = tmp_path / "again"
    shutil.copytree(two_groups, out)
    capsys.readouterr()
    _select(selection.parent, out, "short", "longer", options=["--val-groups", "2"])
    progress = [line.strip() for line in capsys.readouterr().out.splitlines() if "done earlier" in line]
    expected = {f"{name}/val_group1/{fold.parent.name}" for name in ("short", "longer")
                for fold in (two_groups / name / "val_group1").glob("fold*/metrics.json")}
    assert expected and {line.split(":")[0] for line in progress if "val_group1" in line} == expected


def test_too_many_validation_groups_are_refused_before_any_training(selection, tmp_path, capsys):
    """4 speakers, 1 tested and 1 validating per fold: 3 training-side speakers give at most 3 groups."""
    out = tmp_path / "sel"
    capsys.readouterr()
    _select(selection.parent, out, "short", options=["--val-groups", "4"], status=2)
    assert "cannot give 4 disjoint validation groups" in capsys.readouterr().err
    assert not out.exists()
    _select(selection.parent, out, "short", options=["--val-groups", "0"], status=2)
    assert "--val-groups 0" in capsys.readouterr().err


def test_the_average_of_candidates_is_what_their_checkpoints_predict_together(selection, tmp_path, capsys):
    """`mmser average` of two candidates scores what `mmser predict --checkpoint A B` gives with their fold
    checkpoints: per test clip, the mean of the two checkpoints' probabilities."""
    from mmser.ensemble import open_predictor
    from mmser.evaluation.crossval import PROB_COLUMNS

    assert main(["average", str(selection / "short"), str(selection / "longer"), "--out", str(tmp_path / "avg")]) == 0
    assert "2 runs averaged: validation UA" in capsys.readouterr().out
    stored = pd.read_csv(tmp_path / "avg" / "fold0" / "predictions.csv").set_index("utt_id")
    manifest = pd.read_csv(selection.parent / "a.csv").set_index("utt_id")
    clips = [(str(selection.parent / manifest.loc[utt, "path"]), None) for utt in stored.index]
    fold_checkpoints = [selection / name / "fold0" / "model.safetensors" for name in ("short", "longer")]
    predicted = open_predictor(fold_checkpoints).predict_many(clips)
    got = [[p.probabilities[c.removeprefix("prob_")] for c in PROB_COLUMNS] for p in predicted]
    assert abs(pd.DataFrame(got, columns=PROB_COLUMNS).values - stored[PROB_COLUMNS].values).max() < 2e-6
    singles = [pd.read_csv(selection / name / "fold0" / "predictions.csv").set_index("utt_id").loc[stored.index]
               for name in ("short", "longer")]
    assert abs(singles[0][PROB_COLUMNS].values - singles[1][PROB_COLUMNS].values).max() > 1e-3  # two models, not one
