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
    inputs = example_inputs(ckpt_model, batch=1, frames=13, seed=5)
    got = session.run(None, {k: v.numpy() for k, v in inputs.items()})[0]
    with torch.inference_mode():
        ref = ckpt_model(inputs["audio"], inputs["audio_mask"]).numpy()
    valid = ckpt_model.dims.class_mask
    np.testing.assert_allclose(got[:, list(valid)], ref[:, list(valid)], atol=1e-4)


def _whole_encoder_checkpoint(spec: str, path):
    """A one-member checkpoint whose model trains the whole ``spec`` encoder (top_layers=all), 2-frame pooling."""
    import dataclasses

    from mmser.checkpoint import Member, save_checkpoint
    from mmser.config import WHOLE_ENCODER
    from mmser.features.encoders.registry import build_audio_encoder
    from mmser.labels import class_mask
    from mmser.models.builders import ModelDims, build_model
    from mmser.models.whole_encoder import whole_encoder_weights
    from tests.conftest import tiny_features

    encoder = build_audio_encoder(spec, "all", whisper_window="clip", batch_size=4)
    arch, state = whole_encoder_weights(encoder)
    torch.manual_seed(3)
    model = build_model(ModelDims("audio_only", audio_dim=encoder.dim, num_audio_layers=encoder.num_layers,
                                  hidden_dim=16, class_mask=tuple(class_mask(["neutral", "happy", "sad", "angry"])),
                                  finetune_layers=WHOLE_ENCODER, frame_stride=2, encoder_blocks=json.dumps(arch)))
    model.audio_encoder.load_state_dict(state)
    features = dataclasses.replace(tiny_features(), finetune_top_layers=WHOLE_ENCODER)
    return save_checkpoint(path, [Member(model, spec, encoder.fingerprint, None)], features, None, {"note": "test"})


def _clips(lengths=(9600, 5000, 7333)):
    """Waveforms of different lengths (16 kHz samples), padded into one batch: (B, S) and the sample mask."""
    rng = np.random.default_rng(0)
    wave = torch.zeros(len(lengths), max(lengths))
    for b, n in enumerate(lengths):
        wave[b, :n] = torch.from_numpy((0.1 * rng.standard_normal(n)).astype(np.float32))
    return wave, torch.arange(max(lengths))[None] < torch.tensor(lengths)[:, None]


def test_a_whole_whisper_encoder_exports_over_its_log_mel(whisper_ckpt, tmp_path):
    """The graph takes the log-mel as export_onnx's docstring tells a user to make it, and gives the logits the
    PyTorch model gives from the waveforms."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import onnxruntime as ort
    import torch.nn.functional as F
    import whisper

    path = _whole_encoder_checkpoint(f"whisper:{whisper_ckpt}", tmp_path / "whole.safetensors")
    assert main(["export", "onnx", "--checkpoint", str(path), "--out", str(tmp_path / "onnx")]) == 0
    report = json.loads((tmp_path / "onnx" / "export.json").read_text())["members"][0]
    assert report["audio_input"]["kind"] == "whisper_log_mel" and report["frames_multiple_of"] == 2
    wave, mask = _clips()
    frames = [-(-int(n) // 320) for n in mask.sum(1)]  # 30, 16, 23 frames
    width = max(frames) + max(frames) % report["frames_multiple_of"]  # whole groups of frames: 30
    mel = torch.stack([F.pad(whisper.log_mel_spectrogram(F.pad(wave[b, :int(n)], (0, (-int(n)) % 320)),
                                                           n_mels=report["audio_input"]["n_mels"]), (0, 2 * width - 2 * f))
                       for b, (n, f) in enumerate(zip(mask.sum(1), frames))])  # (B, n_mels, 2T)
    frame_mask = torch.arange(width)[None] < torch.tensor(frames)[:, None]  # (B, T)
    session = ort.InferenceSession(str(tmp_path / "onnx" / report["file"]))
    got = session.run(None, {"audio": mel.numpy(), "audio_mask": frame_mask.numpy()})[0]
    model = load_checkpoint(path).members[0].model.eval()
    with torch.inference_mode():
        ref = model(wave, mask).numpy()  # from the waveforms
    valid = list(model.dims.class_mask)
    np.testing.assert_allclose(got[:, valid], ref[:, valid], atol=1e-4)


def test_a_whole_wav2vec2_encoder_exports_over_waveforms_and_one_without_a_mask_is_refused(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import onnxruntime as ort

    from tests.conftest import save_tiny_wav2vec2

    path = _whole_encoder_checkpoint(f"hf:{save_tiny_wav2vec2(tmp_path / 'w2v', layers=2)}", tmp_path / "w.safetensors")
    assert main(["export", "onnx", "--checkpoint", str(path), "--out", str(tmp_path / "onnx")]) == 0
    report = json.loads((tmp_path / "onnx" / "export.json").read_text())["members"][0]
    assert report["audio_input"]["kind"] == "waveform_standardised"
    wave, mask = _clips()
    model = load_checkpoint(path).members[0].model.eval()
    x = wave * mask  # standardised per clip over its own samples, as the feature extractor does
    n = mask.sum(1, keepdim=True).float()
    mean = x.sum(1, keepdim=True) / n
    x = (x - mean) / torch.sqrt(((x - mean) ** 2 * mask).sum(1, keepdim=True) / n + 1e-7) * mask
    got = ort.InferenceSession(str(tmp_path / "onnx" / report["file"])).run(
        None, {"audio": x.numpy(), "audio_mask": mask.numpy()})[0]
    with torch.inference_mode():
        ref = model(wave, mask).numpy()
    valid = list(model.dims.class_mask)
    np.testing.assert_allclose(got[:, valid], ref[:, valid], atol=1e-4)

    group = _whole_encoder_checkpoint(f"hf:{save_tiny_wav2vec2(tmp_path / 'g', feat_extract_norm='group', stable=False)}",
                                      tmp_path / "g.safetensors")
    capsys.readouterr()
    assert main(["export", "onnx", "--checkpoint", str(group), "--out", str(tmp_path / "onnx-g")]) != 0
    assert "without an attention mask" in capsys.readouterr().err
