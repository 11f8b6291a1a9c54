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
