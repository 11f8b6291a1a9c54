"""Fine-tuning the encoder's top blocks through the CLI: cv -> fold checkpoints -> predict and ONNX export."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from mmser.checkpoint import load_checkpoint
from mmser.cli import main
from mmser.data.manifest import read_manifest
from mmser.models.finetune import encoder_top_blocks
from mmser.features.encoders.registry import build_audio_encoder
from tests.conftest import save_tiny_whisper
from tests.e2e.test_cv_smoke import _csv_experiment, _prepared_csv


def tiny_whisper_cv(root, *overrides: str):
    """A tiny random Whisper (2 blocks) fine-tuned as ``overrides`` say, cross-validated on a generated
    3-speaker corpus (``root/a.csv``) -> (Whisper checkpoint path, cv folder)."""
    _prepared_csv(root, "a", ["angry", "sad", "happy"], per=6)
    whisper = save_tiny_whisper(root / "tiny.pt", state=32, layers=2)
    _csv_experiment(root / "exp.yaml", f"features.audio_encoders=[whisper:{whisper}]", "features.audio_layers=all",
                    "features.frame_stride=2", "model.finetune.lr=1e-3", *overrides)
    out = root / "cv"
    assert main(["cv", str(root / "exp.yaml"), f"data.manifest={root / 'a.csv'}",
                 f"features.cache_dir={root / 'cache'}", "--out", str(out)]) == 0
    return whisper, out


def check_predict_matches_fold(root, out, capsys, atol: float) -> None:
    """``mmser predict`` of three test clips through the first fold's checkpoint gives the probabilities the
    fold stored, within ``atol``."""
    fold = sorted(p.parent.name for p in out.glob("*/model.safetensors"))[0]
    pred = pd.read_csv(out / fold / "predictions.csv")
    paths = read_manifest(root / "a.csv").set_index("utt_id")["path"]
    columns = [c for c in pred.columns if c.startswith("prob_")]
    for _, row in pred.head(3).iterrows():
        capsys.readouterr()
        assert main(["predict", paths[row["utt_id"]], "--checkpoint", str(out / fold / "model.safetensors"), "--json"]) == 0
        got = json.loads(capsys.readouterr().out)
        probs = np.array([got["probabilities"][c.removeprefix("prob_")] for c in columns])
        np.testing.assert_allclose(probs, row[columns].to_numpy(float), atol=atol)


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    whisper, out = tiny_whisper_cv(root, "model.finetune.top_layers=1", "train.max_epochs=3")
    return root, whisper, out


def test_fold_checkpoints_carry_trained_top_blocks(finetuned):
    root, whisper, out = finetuned
    encoder = build_audio_encoder(f"whisper:{whisper}", "all", whisper_window="clip")
    _, pretrained = encoder_top_blocks(encoder, 1)
    folds = sorted(p.parent.name for p in out.glob("*/model.safetensors"))
    assert len(folds) == 3
    for fold in folds:
        ckpt = load_checkpoint(out / fold / "model.safetensors")
        assert ckpt.features.finetune_top_layers == 1 and ckpt.features.frame_stride == 2
        model = ckpt.members[0].model
        assert model.dims.finetune_layers == 1 and model.dims.frame_stride == 2
        state = model.top_blocks.state_dict()
        assert set(state) == set(pretrained)
        moved = [k for k in state if not torch.allclose(state[k], pretrained[k])]
        assert moved, f"{fold}: the top block never trained"


def test_predict_from_a_fold_checkpoint_matches_the_fold_predictions(finetuned, capsys):
    root, _, out = finetuned
    check_predict_matches_fold(root, out, capsys, atol=5e-3)  # the cache holds float16 frames; predict float32


def test_onnx_export_runs_the_fine_tuned_blocks(finetuned):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    root, _, out = finetuned
    ckpt = sorted(out.glob("*/model.safetensors"))[0]
    assert main(["export", "onnx", "--checkpoint", str(ckpt), "--out", str(root / "onnx")]) == 0
    report = json.loads((root / "onnx" / "export.json").read_text())
    assert all(m["max_abs_prob_diff"] <= 1e-4 for m in report["members"])


def test_finetune_bench_times_frozen_top_k_and_whole_encoder_side_by_side(finetuned, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root, _, _ = finetuned
    repo = Path(__file__).resolve().parents[2]
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, str(repo / "bench" / "finetune.py"), str(root / "exp.yaml"),
                           f"data.manifest={root / 'a.csv'}", f"features.cache_dir={root / 'cache'}",
                           "--k", "0,1,all", "--epochs", "1", "--json", str(out)],
                          capture_output=True, text=True, cwd=repo, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    for k in ("1", "all"):
        assert figures[f"K={k} s/epoch"] > 0 and figures[f"ratio K={k} / frozen"] > 0
        assert 0 <= figures[f"K={k} val UA after 1 epochs"] <= 1
