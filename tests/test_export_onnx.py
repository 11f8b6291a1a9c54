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


def pooled_frames(hidden: np.ndarray, stride: int) -> np.ndarray:
    """An encoder's frames ``(L, T, D)`` pooled as export.json's ``audio_frames`` says: the mean of each group of
    ``stride`` frames, the last group filled up with the last frame -> ``(L, ceil(T / stride), D)``."""
    x = hidden.astype(np.float64)
    fill = (-x.shape[1]) % stride
    x = np.concatenate([x] + [x[:, -1:]] * fill, axis=1)
    return x.reshape(x.shape[0], -1, stride, x.shape[2]).mean(axis=2)


def graph_probabilities(folder, audio: np.ndarray) -> np.ndarray:
    """What ``folder/export.json``'s ``probabilities`` says, with ONNX Runtime alone: the mean over its members'
    graphs of softmax(logits) of hidden states ``audio`` (B, L, T, D), every frame valid -> (B, 8)."""
    import onnxruntime as ort

    document = json.loads((folder / "export.json").read_text())
    assert document["probabilities"] == "the mean over members of softmax(logits) (B, 8)"
    probs = []
    for member in document["members"]:
        logits = ort.InferenceSession(str(folder / member["file"])).run(
            None, {"audio": audio, "audio_mask": np.ones(audio.shape[:1] + audio.shape[2:3], bool)})[0]
        e = np.exp(logits - logits.max(-1, keepdims=True))
        probs.append(e / e.sum(-1, keepdims=True))
    return np.mean(probs, axis=0)


def test_export_json_says_how_to_make_a_speaker_standardised_input(checkpoint, whisper_ckpt, tmp_path, capsys):
    """Following export.json's ``audio_frames`` (and the prior file beside the graphs) with numpy alone, the ONNX
    graphs give the probabilities ``Predictor`` gives for a speaker's first clip (running statistics, prior)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from dataclasses import replace

    from safetensors.numpy import load_file

    from mmser.audio import load_audio
    from mmser.checkpoint import save_checkpoint
    from mmser.features.encoders.registry import build_audio_encoder
    from mmser.features.speaker_norm import FrameMoments
    from mmser.features.spec import SpeakerNorm
    from mmser.inference import Predictor
    from tests.conftest import tiny_features, write_tone

    spec = f"whisper:{whisper_ckpt}"
    rng = np.random.default_rng(0)
    mean, std, frames = rng.normal(0, 0.5, (2, 32)), rng.uniform(0.5, 2.0, (2, 32)), 30.0
    prior = FrameMoments(mean * frames, (std ** 2 + mean ** 2) * frames, frames)  # a population seen as 30 frames
    path = tmp_path / "running_prior.safetensors"
    features = replace(tiny_features(), speaker_norm=SpeakerNorm("running", prior_clips=3))
    save_checkpoint(path, load_checkpoint(checkpoint).members, features, None, {}, speaker_prior={spec: prior})
    assert main(["export", "onnx", "--checkpoint", str(path), "--out", str(tmp_path / "onnx")]) == 0
    assert "standardised per speaker (features.speaker_norm.mode: running)" in capsys.readouterr().out
    recipe = json.loads((tmp_path / "onnx" / "export.json").read_text())["audio_frames"]
    assert recipe["speaker_norm"] == "running" and recipe["pool_stride"] == 2
    members = json.loads((tmp_path / "onnx" / "export.json").read_text())["members"]
    assert [m["audio_encoder"] for m in members] == [spec, spec]  # which encoder's frames feed each graph

    clip = write_tone(tmp_path / "clip.wav", seconds=0.9)
    hidden = build_audio_encoder(spec, "all", whisper_window="clip").encode([load_audio(clip)])[0]  # (L, T, D)
    pooled = pooled_frames(hidden, recipe["pool_stride"])  # (L, T/2, D)
    stored = load_file(str(tmp_path / "onnx" / recipe["speaker_prior_file"]))
    count = stored[f"{spec}.count"] + pooled.shape[1]
    mu = (stored[f"{spec}.total"] + pooled.sum(1)) / count  # (L, D)
    sd = np.sqrt(np.maximum((stored[f"{spec}.total_sq"] + (pooled ** 2).sum(1)) / count - mu ** 2, 0)) + 1e-5
    audio = ((pooled - mu[:, None]) / sd[:, None]).astype(np.float32)[None]  # (1, L, T/2, D)
    got = graph_probabilities(tmp_path / "onnx", audio)[0]
    want = Predictor.from_checkpoint(path).predict(clip).probabilities
    np.testing.assert_allclose(got, list(want.values()), atol=2e-3)  # the Predictor standardises into float16


def test_export_json_says_a_checkpoint_averages_over_speed_copies(checkpoint, tmp_path):
    """A checkpoint trained with features.test_time_speeds predicts each clip and its copies at those speeds:
    export.json says so (the graphs take one copy at a time), and says nothing of it for one without."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from dataclasses import replace

    from mmser.checkpoint import save_checkpoint

    ckpt = load_checkpoint(checkpoint)
    path = save_checkpoint(tmp_path / "tta.safetensors", ckpt.members, replace(ckpt.features, test_time_speeds=(0.9, 1.1)),
                           None, {})
    assert main(["export", "onnx", "--checkpoint", str(path), "--out", str(tmp_path / "tta")]) == 0
    document = json.loads((tmp_path / "tta" / "export.json").read_text())
    assert document["test_time_speeds"]["speeds"] == [0.9, 1.1]
    assert "mean over the clip and its copies" in document["test_time_speeds"]["how"]
    assert main(["export", "onnx", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "plain")]) == 0
    assert "test_time_speeds" not in json.loads((tmp_path / "plain" / "export.json").read_text())


@pytest.mark.parametrize("given", ["files", "averaged_file"])
def test_several_checkpoints_export_as_parts_whose_weighted_mean_is_what_they_predict_together(whisper_ckpt, tmp_path,
                                                                                                 capsys, given):
    """An averaged recipe (checkpoints of other windows and member counts, as files or as one averaged file)
    exports part by part; following the top export.json and each part's with numpy and ONNX Runtime alone gives
    what ``mmser predict --checkpoint A B`` gives."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from mmser.audio import load_audio
    from mmser.checkpoint import save_average
    from mmser.ensemble import open_predictor
    from mmser.features.encoders.registry import build_audio_encoder
    from mmser.labels import EMOTIONS
    from tests.conftest import tiny_checkpoint, write_tone

    a = tiny_checkpoint(tmp_path / "a.safetensors", whisper_ckpt, seed=1, members=1)
    b = tiny_checkpoint(tmp_path / "b.safetensors", whisper_ckpt, seed=2, members=2, whisper_window="30s")
    out = tmp_path / "onnx"
    given_files = [a, b] if given == "files" else [save_average(tmp_path / "avg.safetensors", [a, b])]
    names = [str(a), str(b)] if given == "files" else [f"{given_files[0]}[part {k}]" for k in range(2)]
    assert main(["export", "onnx", "--checkpoint", *map(str, given_files), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{names[0]} -> {out / 'part0'}" in printed and str(out / "part1" / "member1.onnx") in printed
    top = json.loads((out / "export.json").read_text())
    assert [(p["folder"], p["checkpoint"], p["weight"]) for p in top["parts"]] == [("part0", names[0], 0.5),
                                                                                   ("part1", names[1], 0.5)]
    clip = write_tone(tmp_path / "clip.wav", seconds=1.3, freq=180)
    wav = load_audio(clip)
    spec = f"whisper:{whisper_ckpt}"
    per_part = []
    for part in top["parts"]:
        document = json.loads((out / part["folder"] / "export.json").read_text())
        assert document["checkpoint"] == part["checkpoint"] and document["audio_frames"]["speaker_norm"] == "off"
        encoder = build_audio_encoder(spec, "all", whisper_window=document["features"]["whisper_window"])
        audio = pooled_frames(encoder.encode([wav])[0], document["audio_frames"]["pool_stride"])
        per_part.append(graph_probabilities(out / part["folder"], audio.astype(np.float32)[None])[0])
    assert not np.allclose(per_part[0], per_part[1], atol=1e-2)  # the parts differ: a part left out would show
    got = np.average(per_part, axis=0, weights=[p["weight"] for p in top["parts"]])
    want = open_predictor([a, b]).predict(clip).probabilities
    np.testing.assert_allclose(got, [want[e] for e in EMOTIONS], atol=2e-3)  # the Predictor pools in float16


def test_several_checkpoints_are_checked_before_any_graph_is_written(whisper_ckpt, tmp_path, capsys):
    from mmser.features.spec import SpeakerNorm
    from tests.conftest import tiny_checkpoint

    plain = tiny_checkpoint(tmp_path / "plain.safetensors", whisper_ckpt, seed=1, members=1)
    enrolled = tiny_checkpoint(tmp_path / "enrol.safetensors", whisper_ckpt, seed=2, members=1,
                               speaker_norm=SpeakerNorm("enrol", 2))
    out = tmp_path / "onnx"
    assert main(["export", "onnx", "--checkpoint", str(plain), str(enrolled), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "standardise frames per speaker differently" in err and str(plain) in err and str(enrolled) in err
    assert main(["export", "onnx", "--checkpoint", str(plain), str(plain), "--out", str(out)]) == 2
    assert "named twice" in capsys.readouterr().err
    assert not out.exists()


def test_an_export_replaces_what_an_earlier_export_wrote_into_its_folder(whisper_ckpt, tmp_path, capsys):
    """A graph of an earlier, larger export is never left beside the new ones (a user globbing *.onnx would
    average it in); files the earlier export.json does not name stay."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from tests.conftest import tiny_checkpoint

    two = tiny_checkpoint(tmp_path / "two.safetensors", whisper_ckpt, seed=1, members=2)
    one = tiny_checkpoint(tmp_path / "one.safetensors", whisper_ckpt, seed=2, members=1)
    out = tmp_path / "onnx"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["export", "onnx", "--checkpoint", str(two), str(one), "--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "part0").glob("*.onnx")) == ["member0.onnx", "member1.onnx"]
    assert main(["export", "onnx", "--checkpoint", str(two), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "member0.onnx", "member1.onnx", "notes.txt"]
    assert main(["export", "onnx", "--checkpoint", str(one), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "member0.onnx", "notes.txt"]
    assert [m["file"] for m in json.loads((out / "export.json").read_text())["members"]] == ["member0.onnx"]
    # a refused export removes nothing
    assert main(["export", "onnx", "--checkpoint", str(one), str(one), "--out", str(out)]) == 2
    assert (out / "member0.onnx").is_file() and (out / "export.json").is_file()


def test_an_earlier_export_json_is_followed_to_plain_names_only(tmp_path):
    from mmser.export_onnx import remove_previous_export

    (tmp_path / "victim.txt").write_text("keep")
    out = tmp_path / "onnx"
    out.mkdir()
    (out / "member0.onnx").write_bytes(b"graph")
    (out / "export.json").write_text(json.dumps({"members": [{"file": "../victim.txt"}, {"file": "member0.onnx"},
                                                             {"file": str(tmp_path / "victim.txt")}],
                                                 "parts": [{"folder": ".."}, "junk"], "audio_frames": "junk"}))
    remove_previous_export(out)
    assert (tmp_path / "victim.txt").read_text() == "keep" and list(out.iterdir()) == []
    (out / "export.json").write_text("not json")  # not one of ours: left alone
    remove_previous_export(out)
    assert (out / "export.json").read_text() == "not json"
