"""Device choice, one rule for every command: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when there is
one, else CPU). GPU paths differ from the CPU path only by the device and autocast."""

from __future__ import annotations

import contextlib

import torch

from mmser.config import DEVICE_SPEC
from mmser.errors import MmserError


def resolve_device(spec: str) -> str:
    """``spec`` -> a torch device string (``cpu`` or ``cuda:N``); a CUDA device that is not there is an error."""
    spec = str(spec).strip().lower()
    if not DEVICE_SPEC.match(spec):
        raise MmserError(f"device {spec!r}: use cpu, cuda, cuda:N or auto")
    if spec == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return "cpu"
    if not torch.cuda.is_available():
        raise MmserError(f"device {spec!r}: no CUDA device is available here (torch {torch.__version__}); use cpu or auto")
    index = int(spec.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise MmserError(f"device {spec!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return f"cuda:{index}"


def trainer_placement(spec: str) -> tuple[str, object]:
    """(``trainer.accelerator``, ``trainer.devices``) that train on device ``spec``."""
    device = resolve_device(spec)
    if device == "cpu":
        return "cpu", 1
    return "gpu", [int(device.partition(":")[2])]


def autocast(device: str):
    """Mixed precision for inference on a GPU (bf16 where supported, else fp16); nothing on CPU."""
    if not str(device).startswith("cuda"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)
