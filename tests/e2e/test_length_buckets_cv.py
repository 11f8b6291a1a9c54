"""Batches of similar duration through the CLI and the benchmark: a cross-validation with
train.length_buckets runs every fold, and bench/length_buckets.py measures less padding than random batches
on the same clips (the whole encoder from the waveform, so padding is in samples)."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from mmser.cli import main
from tests.conftest import save_tiny_whisper
from tests.e2e.test_cv_smoke import _csv_experiment, _prepared_csv


def test_cv_with_length_buckets_and_the_padding_benchmark(tmp_path):
    _prepared_csv(tmp_path, "a", ["angry", "sad", "happy"], per=8, varied=True)
    assert pd.read_csv(tmp_path / "a.csv")["duration_s"].nunique() == 4
    whisper = save_tiny_whisper(tmp_path / "tiny.pt", state=32, layers=2)
    _csv_experiment(tmp_path / "exp.yaml", f"features.audio_encoders=[whisper:{whisper}]", "features.audio_layers=all",
                    "features.frame_stride=2", "model.finetune.top_layers=all", "train.length_buckets=2",
                    "train.batch_size=2")
    common = [str(tmp_path / "exp.yaml"), f"data.manifest={tmp_path / 'a.csv'}", f"features.cache_dir={tmp_path / 'cache'}"]
    assert main(["cv", *common, "--out", str(tmp_path / "cv")]) == 0
    for fold in ("fold0", "fold1", "fold2"):
        pred = pd.read_csv(tmp_path / "cv" / fold / "predictions.csv")
        assert len(pred) == 8 and pred["utt_id"].is_unique

    repo = Path(__file__).resolve().parents[2]
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, str(repo / "bench" / "length_buckets.py"), *common, "--pool", "4",
                           "--epochs", "1", "--json", str(out)], capture_output=True, text=True, cwd=repo, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["length_buckets=4 padded/real time steps"] < figures["random padded/real time steps"]
    assert figures["random s/epoch"] > 0 and figures["ratio bucketed / random s/epoch"] > 0
