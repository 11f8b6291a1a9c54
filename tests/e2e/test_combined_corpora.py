"""Several corpora in one run (data.manifests) and the speaker-dependent random-utterance split, flagged."""

import json

import pandas as pd
import pytest

from mmser.cli import main
from mmser.config import load_config
from mmser.data.protocol import load_protocol, make_folds
from mmser.errors import MmserError
from tests.conftest import save_tiny_whisper
from tests.e2e.test_corpus_configs import indian_english_tree, ravdess_tree, tess_tree
from tests.e2e.test_cv_smoke import _csv_experiment


@pytest.fixture(scope="module")
def three_corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("combined")
    ie = indian_english_tree(root / "ie")
    for emo in ("base", "happy", "angry"):  # two speakers named in the metadata (the layout allows it)
        (ie / emo / "metadata.csv").write_text("".join(f"{emo}_{k:04d}|Text {k}|spk01\n" if k == 0 else
                                                       f"{emo}_{k:04d}|Text {k}|spk02\n" for k in range(2)))
    manifests = []
    for layout, tree in (("ravdess", ravdess_tree), ("tess", tess_tree), ("indian_english", lambda r: ie)):
        out = root / f"{layout}.csv"
        assert main(["prepare", layout, str(tree(root / layout) if layout != "indian_english" else ie),
                     "--out", str(out)]) == 0
        manifests.append(out)
    whisper = save_tiny_whisper(root / "tiny.pt", state=32, layers=1)
    _csv_experiment(root / "exp.yaml", f"features.audio_encoders=[whisper:{whisper}]", "split.speakers_per_fold=2")
    return root, manifests


def test_speakers_are_qualified_by_corpus_and_folds_are_disjoint_across_corpora(three_corpora):
    root, manifests = three_corpora
    cfg = load_config([root / "exp.yaml"], [f"data.manifests=[{','.join(map(str, manifests))}]"])
    protocol = load_protocol(cfg.data)
    rows = protocol.rows
    assert set(rows["corpus"]) == {"ravdess", "tess", "indian_english"}
    assert all(s.split(":")[0] == c for s, c in zip(rows["speaker"], rows["corpus"]))
    assert rows.loc[rows["corpus"] == "indian_english", "speaker"].nunique() == 2
    folds = make_folds(protocol, cfg.split)
    speaker = rows.set_index("utt_id")["speaker"]
    tested = []
    for fold in folds:
        parts = [set(speaker[list(ids)]) for ids in (fold.train, fold.val, fold.test)]
        assert not (parts[0] & parts[2]) and not (parts[1] & parts[2]) and not (parts[0] & parts[1])
        tested += list(fold.test)
    assert sorted(tested) == sorted(rows["utt_id"])  # every utterance tested once


def test_combined_run_has_per_corpus_and_per_gender_rows(three_corpora):
    root, manifests = three_corpora
    out = root / "cv"
    assert main(["cv", str(root / "exp.yaml"), f"data.manifests=[{','.join(map(str, manifests))}]",
                 f"features.cache_dir={root / 'cache'}", "--out", str(out)]) == 0
    assert main(["table", str(root)]) == 0
    table = pd.read_csv(root / "results.csv")
    runs = list(table["run"])
    assert "cv" in runs
    for corpus in ("ravdess", "tess", "indian_english"):
        assert f"cv · corpus={corpus}" in runs
    assert "cv · gender=M" in runs and "cv · gender=F" in runs  # RAVDESS actors 01/03 male, 02/04 female
    preds = pd.concat(pd.read_csv(p, keep_default_na=False) for p in out.glob("*/predictions.csv"))
    by_corpus = table.set_index("run").loc[[f"cv · corpus={c}" for c in ("ravdess", "tess", "indian_english")]]
    assert by_corpus["utterances"].sum() == len(preds)
    assert table.set_index("run").loc["cv", "utterances"] == len(preds)


def test_the_same_utterance_in_two_manifests_is_refused(three_corpora, tmp_path):
    root, manifests = three_corpora
    cfg = load_config([root / "exp.yaml"], [f"data.manifests=[{manifests[0]},{manifests[0]}]"])
    with pytest.raises(MmserError, match="also in"):
        load_protocol(cfg.data)


def test_random_utterance_split_is_flagged_everywhere(three_corpora, capsys):
    root, manifests = three_corpora
    out = root / "random"
    capsys.readouterr()
    assert main(["cv", str(root / "exp.yaml"), f"data.manifest={manifests[0]}", "split.protocol=random_utterance",
                 "split.utterance_folds=3", f"features.cache_dir={root / 'cache'}", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "SPEAKER-DEPENDENT" in printed and "[speaker-dependent]" in printed
    for metrics_file in out.glob("*/metrics.json"):
        metrics = json.loads(metrics_file.read_text())
        assert metrics["protocol"] == "random_utterance" and metrics["speaker_independent"] is False
    assert json.loads((out / "summary.json").read_text())["speaker_independent"] is False
    tested = pd.concat(pd.read_csv(p) for p in out.glob("*/predictions.csv"))
    assert tested["utt_id"].is_unique and len(tested) == 24
    # each test speaker is also a training speaker: the leak the flag names
    assert main(["table", str(out)]) == 0
    assert "[SPEAKER-DEPENDENT: random utterances]" in (out / "results.md").read_text()
