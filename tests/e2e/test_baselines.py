"""The seeds' classical baselines on the same folds: SVM / random forest on eGeMAPS + MFCC, a random forest on
the librosa set, and a 1D-CNN over 40 MFCC frames through the Lightning loop."""

import json

import pandas as pd
import pytest

from mmser.cli import main
from tests.e2e.test_cv_smoke import _csv_experiment, _prepared_csv


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("baselines")
    _prepared_csv(root, "a", ["angry", "sad"], n_speakers=4, per=6)
    _csv_experiment(root / "exp.yaml")
    return root


@pytest.mark.parametrize("model, features", [("svm_rbf", "egemaps_mfcc"), ("random_forest", "egemaps_mfcc"),
                                             ("random_forest", "librosa"), ("logreg", "librosa")])
def test_classical_baseline_on_the_same_folds(corpus, model, features):
    pytest.importorskip("opensmile")
    pytest.importorskip("librosa")
    out = corpus / f"{model}_{features}"
    assert main(["baseline", str(corpus / "exp.yaml"), f"data.manifest={corpus / 'a.csv'}",
                 f"classical.model={model}", f"classical.features={features}",
                 f"features.cache_dir={corpus / 'cache'}", "--out", str(out)]) == 0
    folds = sorted(out.glob("*/metrics.json"))
    assert len(folds) == 4
    for f in folds:
        metrics = json.loads(f.read_text())
        assert metrics["model"] == model and metrics["features"] == features
        assert set(metrics["val_ua_by_setting"]) and str(metrics["setting"]) in metrics["val_ua_by_setting"]
        pred = pd.read_csv(f.parent / "predictions.csv")
        assert set(pred["speaker"]) == set(metrics["test_speakers"])
        probs = pred.filter(like="prob_").to_numpy()
        assert abs(probs.sum(1) - 1).max() < 1e-4


def test_mfcc_cnn_trains_through_the_lightning_loop(corpus, capsys):
    out = corpus / "cnn"
    assert main(["cv", str(corpus / "exp.yaml"), f"data.manifest={corpus / 'a.csv'}", "features.audio_encoders=[mfcc:40]",
                 "model.audio_cnn_channels=16", f"features.cache_dir={corpus / 'cache'}", "--out", str(out)]) == 0
    from mmser.checkpoint import load_checkpoint

    ckpt = load_checkpoint(sorted(out.glob("*/model.safetensors"))[0])
    model = ckpt.members[0].model
    assert model.dims.audio_cnn_channels == 16 and model.dims.audio_dim == 40
    from mmser.data.manifest import read_manifest

    clip = read_manifest(corpus / "a.csv")["path"].iloc[0]
    capsys.readouterr()
    assert main(["predict", clip,
                 "--checkpoint", str(sorted(out.glob("*/model.safetensors"))[0]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in ("angry", "sad")


def test_a_stopped_feature_table_keeps_what_it_computed(tmp_path, monkeypatch):
    """The classical features are written every SAVE_EVERY clips: a run stopped at its 5th clip keeps 4, and
    the next computes only the clips not kept."""
    import numpy as np

    import mmser.features.classical as classical
    from mmser.data.manifest import read_manifest

    _prepared_csv(tmp_path, "a", ["angry", "sad"], per=4)
    df = read_manifest(tmp_path / "a.csv")
    monkeypatch.setattr(classical, "SAVE_EVERY", 2)
    seen: list[str] = []
    stop_at = [5]  # the 5th clip of the first run

    def compute(path):
        seen.append(path)
        if len(seen) in stop_at:
            raise RuntimeError("stopped")  # a kill, as far as the cache file can tell
        return np.full(3, float(len(path)))

    cache = tmp_path / "table.parquet"
    with pytest.raises(RuntimeError, match="stopped"):
        classical._cached_table(df, cache, compute, "test set", progress=False)
    saved = set(pd.read_parquet(cache).index)
    assert len(saved) == 4
    seen.clear()
    stop_at.clear()
    table = classical._cached_table(df, cache, compute, "test set", progress=False)
    unsaved = {k for k in df["audio_sha256"] if k not in saved}  # byte-identical clips share a key
    assert len(seen) == len(unsaved) < len(df) and table.shape == (len(df), 3)
    assert len(pd.read_parquet(cache)) == len(saved | unsaved)  # each key stored once
    np.testing.assert_array_equal(table[:, 0], [float(len(p)) for p in df["path"]])


def test_byte_identical_clips_are_computed_and_stored_once_across_writes(tmp_path, monkeypatch):
    """Two rows with one content key on either side of a write: one computation, one stored row, and the
    table has a row per manifest row."""
    import numpy as np

    import mmser.features.classical as classical

    monkeypatch.setattr(classical, "SAVE_EVERY", 1)
    paths = [tmp_path / f"{i}.wav" for i in range(4)]
    for path in paths:
        path.write_bytes(b"")  # only their existence is checked; compute below reads nothing
    df = pd.DataFrame({"audio_sha256": ["a", "b", "a", "c"], "path": [str(p) for p in paths]})
    seen: list[str] = []

    def compute(path):
        seen.append(path)
        return np.full(2, float(len(seen)))

    table = classical._cached_table(df, tmp_path / "t.parquet", compute, "test set", progress=False)
    assert len(seen) == 3 and len(pd.read_parquet(tmp_path / "t.parquet")) == 3
    assert table.shape == (4, 2) and table[0, 0] == table[2, 0]
