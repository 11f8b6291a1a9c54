"""Device selection: one rule for every command; a CUDA device that is not there is a clear error."""

import contextlib

import pytest
import torch

from mmser import devices
from mmser.errors import MmserError


def fake_cuda(monkeypatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_without_cuda(monkeypatch):
    fake_cuda(monkeypatch, 0)
    assert devices.resolve_device("auto") == "cpu" and devices.resolve_device("CPU") == "cpu"
    for spec in ("cuda", "cuda:1"):
        with pytest.raises(MmserError, match="no CUDA device is available"):
            devices.resolve_device(spec)
    with pytest.raises(MmserError, match="use cpu, cuda, cuda:N or auto"):
        devices.resolve_device("gpu0")
    assert devices.trainer_placement("auto") == ("cpu", 1)
    assert isinstance(devices.autocast("cpu"), contextlib.nullcontext)


def test_with_two_gpus(monkeypatch):
    fake_cuda(monkeypatch, 2)
    assert devices.resolve_device("auto") == "cuda:0" and devices.resolve_device("cuda") == "cuda:0"
    assert devices.resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(MmserError, match="has 2 CUDA device"):
        devices.resolve_device("cuda:2")
    assert devices.trainer_placement("cuda:1") == ("gpu", [1])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_commands_refuse_a_missing_gpu_before_any_work(tmp_path, capsys):
    from mmser.cli import main

    (tmp_path / "m.csv").write_text("utt_id,path,speaker,label\nu0,x.wav,s,sad\n")
    for args in (["cv", "configs/experiment/ravdess_audio.yaml", f"data.manifest={tmp_path / 'm.csv'}", "--device", "cuda"],
                 ["extract", str(tmp_path / "m.csv"), "--device", "cuda:0"],
                 ["transcribe", str(tmp_path / "m.csv"), "--device", "cuda"],
                 ["predict", str(tmp_path / "m.csv"), "--checkpoint", str(tmp_path / "m.csv"), "--device", "cuda"]):
        assert main(args) == 2, args
        assert "no CUDA device is available" in capsys.readouterr().err, args
