"""ONNX export of fusion + head, checked against PyTorch with ONNX Runtime."""

import json

import numpy as np
import pytest
import torch

from mmser.cli import main
from mmser.checkpoint import load_checkpoint


def test_onnx_export_matches_pytorch(checkpoint, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    assert main(["export", "onnx", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "onnx")]) == 0
    report = json.loads((tmp_path / "onnx" / "export.json").read_text())
    assert len(report["members"]) == 2
    assert all(m["max_abs_prob_diff"] <= 1e-4 for m in report["members"])
    import onnxruntime as ort

    from mmser.export_onnx import example_inputs

    ckpt_model = load_checkpoint(checkpoint).members[0].model
    session = ort.InferenceSession(str(tmp_path / "onnx" / "member0.onnx"))
    inputs = example_inputs(ckpt_model.dims, batch=1, frames=13, seed=5)
    got = session.run(None, {k: v.numpy() for k, v in inputs.items()})[0]
    with torch.inference_mode():
        ref = ckpt_model(inputs["audio"], inputs["audio_mask"]).numpy()
    valid = ckpt_model.dims.class_mask
    np.testing.assert_allclose(got[:, list(valid)], ref[:, list(valid)], atol=1e-4)
