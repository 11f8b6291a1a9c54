"""``mmser export onnx``: each member's model (fusion + head over encoder outputs) to ONNX, checked
against PyTorch with ONNX Runtime.

Inputs are the encoder outputs the model consumes (``audio`` (B, L_a, T, D_a) + ``audio_mask`` (B, T),
and/or ``text`` (B, L_t, N, D_t) + ``text_mask`` (B, N)), with dynamic batch and sequence axes; the
output is ``logits`` (B, 8). The encoders themselves stay in PyTorch/CTranslate2, except the top blocks a
fine-tuned model trained (``model.finetune.top_layers``): those are part of the graph, which then takes
every hidden state at the encoder's frame rate, ``T`` a multiple of ``frames_multiple_of`` (export.json;
pad with masked frames).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from mmser.checkpoint import load_checkpoint
from mmser.errors import MmserError

TOLERANCE = 1e-4  # max |probability difference| accepted between ONNX Runtime and PyTorch


class _AudioInputs(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, audio, audio_mask):
        return self.model(audio, audio_mask, None, None)


class _TextInputs(_AudioInputs):
    def forward(self, text, text_mask):
        return self.model(None, None, text, text_mask)


class _FusedInputs(_AudioInputs):
    def forward(self, audio, audio_mask, text, text_mask):
        return self.model(audio, audio_mask, text, text_mask)


def _wrap(model) -> torch.nn.Module:
    """The model with the explicit positional inputs the exporter needs."""
    if model.dims.uses_audio and model.dims.uses_text:
        return _FusedInputs(model)
    return _AudioInputs(model) if model.dims.uses_audio else _TextInputs(model)


def example_inputs(dims, batch: int = 2, frames: int = 37, tokens: int = 9, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    frames += (-frames) % dims.frame_stride  # models that pool frames themselves take whole groups (see export)
    if dims.uses_audio:
        out["audio"] = torch.randn(batch, dims.num_audio_layers, frames, dims.audio_dim, generator=g)
        mask = torch.ones(batch, frames, dtype=torch.bool)
        mask[1:, frames // 2:] = False  # a padded row
        out["audio_mask"] = mask
    if dims.uses_text:
        out["text"] = torch.randn(batch, dims.num_text_layers, tokens, dims.text_dim, generator=g)
        mask = torch.ones(batch, tokens, dtype=torch.bool)
        mask[1:, 3:] = False
        out["text_mask"] = mask
    return out


def export(checkpoint: str | Path, out_dir: str | Path, check_inputs: list[dict] | None = None) -> list[dict]:
    """Export every member; returns per-member check results (max abs probability difference)."""
    import onnxruntime as ort

    ckpt = load_checkpoint(checkpoint)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reports = []
    for j, member in enumerate(ckpt.members):
        model = member.model.eval()
        if model.dims.reads_waveforms:
            raise MmserError(f"{checkpoint}: member {j} trained the whole audio encoder (model.finetune.top_layers="
                             "all) and reads waveforms; ONNX export takes models over encoder outputs only (use "
                             "mmser predict / serve, or fine-tune the top blocks: top_layers=K)")
        inputs = example_inputs(model.dims)
        names = list(inputs)
        batch, frames, tokens = (torch.export.Dim(n, min=2, max=100_000) for n in ("batch", "frames", "tokens"))
        stride = model.dims.frame_stride  # > 1: a fine-tuning model pools frames after its encoder blocks, and
        if stride > 1:  # the graph takes a whole number of groups (pad frames, masked, to a multiple of stride)
            frames = stride * torch.export.Dim("frame_groups", min=2, max=100_000 // stride)
        dynamic = {"audio": {0: batch, 2: frames}, "audio_mask": {0: batch, 1: frames},
                   "text": {0: batch, 2: tokens}, "text_mask": {0: batch, 1: tokens}}
        path = out_dir / f"member{j}.onnx"
        torch.onnx.export(_wrap(model), tuple(inputs.values()), str(path), input_names=names, output_names=["logits"],
                          dynamic_shapes=tuple(dynamic[n] for n in names), opset_version=18, dynamo=True,
                          external_data=False, verbose=False)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        worst = 0.0
        for case in (check_inputs or []) + [example_inputs(model.dims, batch=3, frames=51, tokens=5, seed=1)]:
            case = {k: v for k, v in case.items() if k in names}
            with torch.inference_mode():
                ref = torch.softmax(_wrap(model)(*case.values()), -1).numpy()
            got = session.run(None, {k: v.numpy() for k, v in case.items()})[0]
            got = np.exp(got - got.max(-1, keepdims=True))
            got /= got.sum(-1, keepdims=True)
            worst = max(worst, float(np.abs(ref - got).max()))
        reports.append({"member": j, "file": path.name, "max_abs_prob_diff": worst, "tolerance": TOLERANCE,
                        "inputs": names, "frames_multiple_of": stride})
        if worst > TOLERANCE:
            raise MmserError(f"{path}: ONNX Runtime differs from PyTorch by {worst:.2e} > {TOLERANCE}")
    (out_dir / "export.json").write_text(json.dumps({"checkpoint": str(checkpoint), "members": reports,
                                                     "features": ckpt.meta["features"]}, indent=2))
    return reports
