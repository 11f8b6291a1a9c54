"""``training_curves.png``: every fold member's per-epoch training loss and validation UA, also for members
trained without validation speakers (their UA line is left empty, their loss line is drawn)."""

import json

import matplotlib.pyplot as plt

from mmser.evaluation import plots


def _fold(run, name, history):
    (run / name).mkdir(parents=True)
    (run / name / "metrics.json").write_text(json.dumps({"members": [{"history": history}]}))


def test_curves_draw_the_loss_of_members_trained_without_validation(tmp_path, monkeypatch):
    _fold(tmp_path, "fold0", [{"epoch": 0, "val_ua": 0.5, "train_loss": 1.2}, {"epoch": 1, "val_ua": 0.75, "train_loss": 0.8}])
    _fold(tmp_path, "fold1", [{"epoch": 0, "val_ua": None, "train_loss": 1.5}, {"epoch": 1, "val_ua": None, "train_loss": 0.9}])
    drawn = []
    monkeypatch.setattr(plt, "close", lambda fig: drawn.append(fig))
    out = plots.plot_training_curves(tmp_path)
    assert out == tmp_path / "training_curves.png" and out.is_file()
    loss_axis, ua_axis = drawn[0].axes[:2]
    assert [list(line.get_ydata()) for line in loss_axis.get_lines()] == [[1.2, 0.8], [1.5, 0.9]]
    ua = [list(line.get_ydata()) for line in ua_axis.get_lines()]
    assert ua[0] == [0.5, 0.75] and all(y != y for y in ua[1])  # NaN: nothing drawn for fold1
