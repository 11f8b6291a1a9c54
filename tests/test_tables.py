"""Tables from stored per-utterance predictions: a run whose folds were written by different mmser versions."""

import pandas as pd

from mmser.evaluation.tables import run_rows


def _fold(path, speakers, gender=None):
    path.mkdir(parents=True)
    table = pd.DataFrame({"utt_id": [f"{s}_{i}" for s in speakers for i in range(4)],
                          "speaker": [s for s in speakers for _ in range(4)],
                          "true": ["angry", "sad"] * (2 * len(speakers)), "pred": ["angry", "angry"] * (2 * len(speakers))})
    if gender is not None:
        table["gender"] = [gender[s] for s in table["speaker"]]
    table.to_csv(path / "predictions.csv", index=False)


def test_a_fold_without_a_subgroup_column_gives_no_partial_subgroup_rows(tmp_path):
    run = tmp_path / "run"
    _fold(run / "fold0", ["a"])  # written before predictions carried the speakers' gender
    _fold(run / "fold1", ["b", "c"], {"b": "F", "c": "M"})
    rows = run_rows(run, tmp_path)
    assert [r["run"] for r in rows] == ["run"]  # no gender rows that would cover one fold only
    assert rows[0]["utterances"] == 12 and rows[0]["folds"] == 2
    _fold(run / "fold2", ["d"], {"d": "F"})
    (run / "fold0" / "predictions.csv").unlink()
    (run / "fold0").rmdir()
    assert [r["run"] for r in run_rows(run, tmp_path)] == ["run", "run · gender=F", "run · gender=M"]


def test_the_validation_ua_is_the_mean_over_folds_of_the_validation_predictions(tmp_path):
    import math

    from mmser.evaluation.tables import to_markdown

    run = tmp_path / "run"
    _fold(run / "fold0", ["a"])
    _fold(run / "fold1", ["b"])
    assert math.isnan(run_rows(run, tmp_path)[0]["val_UA_mean"])  # nothing stored: n/a, not 0
    assert "| run | 2 | n/a |" in to_markdown(pd.DataFrame(run_rows(run, tmp_path)))
    pd.DataFrame({"utt_id": ["v0", "v1"], "speaker": ["x", "x"], "true": ["angry", "sad"],  # UA 1.0
                  "pred": ["angry", "sad"]}).to_csv(run / "fold0" / "val_predictions.csv", index=False)
    pd.DataFrame({"utt_id": ["v0", "v1", "v2"], "speaker": ["y"] * 3, "true": ["angry", "sad", "sad"],  # UA 0.75
                  "pred": ["angry", "angry", "sad"]}).to_csv(run / "fold1" / "val_predictions.csv", index=False)
    row = run_rows(run, tmp_path)[0]
    assert row["val_UA_mean"] == 0.875  # (1.0 + 0.75) / 2, the test UA unchanged (0.5)
    assert row["UA_mean"] == 0.5
    assert "| run | 2 | 87.5 | 50.0 ± 0.0 |" in to_markdown(pd.DataFrame([row]))


def test_linked_run_folders_are_tabled_under_their_link_and_a_link_loop_ends(tmp_path):
    from mmser.evaluation.tables import build_table

    shared = tmp_path / "select"
    _fold(shared / "run" / "fold0", ["a"])
    _fold(shared / "run" / "noise_white_0dB" / "fold0", ["a"])
    linked = tmp_path / "robustness"
    linked.mkdir()
    (linked / "run").symlink_to(shared / "run", target_is_directory=True)  # a run shared, not copied
    (linked / "run" / "fold0" / "loop").symlink_to(linked, target_is_directory=True)  # a link back up
    assert sorted(build_table(linked)["run"]) == ["run", "run/noise_white_0dB"]
