"""The whole encoder fine-tuned from the waveform (model.finetune.top_layers=all) through the CLI: cv with
waveform augmentation drawn as clips are read -> fold checkpoints that carry the trained encoder -> predict
equals the stored predictions; train -> a checkpoint -> ONNX export over the encoder's log-mel."""

import json

import pytest
import torch

from mmser.checkpoint import load_checkpoint
from mmser.cli import main
from mmser.config import WHOLE_ENCODER
from mmser.features.encoders.registry import build_audio_encoder
from mmser.models.whole_encoder import whole_encoder_weights
from tests.e2e.test_finetune_cv import check_predict_matches_fold, tiny_whisper_cv


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    root = tmp_path_factory.mktemp("whole")
    whisper, out = tiny_whisper_cv(root, "model.finetune.top_layers=all", "features.augment.variants=1",
                                   "features.augment.noise=[white,babble]", "train.max_epochs=2")
    return root, whisper, out


def test_nothing_is_encoded_and_fold_checkpoints_carry_the_trained_encoder(whole):
    root, whisper, out = whole
    assert not list((root / "cache").rglob("*.safetensors")), "top_layers=all must not fill the feature cache"
    _, pretrained = whole_encoder_weights(build_audio_encoder(f"whisper:{whisper}", "all", whisper_window="clip"))
    folds = sorted(p.parent.name for p in out.glob("*/model.safetensors"))
    assert len(folds) == 3
    for fold in folds:
        ckpt = load_checkpoint(out / fold / "model.safetensors")
        assert ckpt.features.finetune_top_layers == WHOLE_ENCODER
        model = ckpt.members[0].model
        assert model.dims.reads_waveforms and model.dims.frame_stride == 2
        state = model.audio_encoder.state_dict()
        assert set(state) == set(pretrained)
        assert not torch.allclose(state["conv1.weight"], pretrained["conv1.weight"]), f"{fold}: the front end never trained"
        metrics = json.loads((out / fold / "metrics.json").read_text())
        assert "val_UA" in metrics and metrics["n_val"] > 0


def test_predict_from_a_fold_checkpoint_matches_the_fold_predictions(whole, capsys):
    root, whisper, out = whole
    whisper.rename(whisper.with_suffix(".moved"))  # the checkpoint carries the encoder: the original is not read
    try:
        check_predict_matches_fold(root, out, capsys, atol=1e-5)  # the same waveforms through the same model
    finally:
        whisper.with_suffix(".moved").rename(whisper)


def test_train_makes_a_checkpoint_that_exports_to_onnx(whole):
    root, _, out = whole
    assert main(["train", str(root / "exp.yaml"), f"data.manifest={root / 'a.csv'}",
                 f"features.cache_dir={root / 'cache'}", "--out", str(root / "model.safetensors")]) == 0
    assert load_checkpoint(root / "model.safetensors").members[0].model.dims.reads_waveforms
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    assert main(["export", "onnx", "--checkpoint", str(root / "model.safetensors"), "--out", str(root / "onnx")]) == 0
    report = json.loads((root / "onnx" / "export.json").read_text())
    assert all(m["audio_input"]["kind"] == "whisper_log_mel" and m["max_abs_prob_diff"] <= 1e-4
               for m in report["members"])
