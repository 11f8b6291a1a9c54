"""Whisper encoder frames (50 per second), cut to each clip's real length.

Three sources, one PyTorch code path where possible:
- ``whisper:<name|checkpoint.pt>``: an openai-whisper model (``whisper.load_model``), every layer.
- ``whisper-ct2:<tiny.en|base|small|folder>``: a CTranslate2 Whisper ``model.bin`` read into an
  openai-whisper ``AudioEncoder`` (every layer; the CTranslate2 runtime only gives the last).
- ``faster-whisper:<tiny.en|base|small|folder>``: the CTranslate2 runtime's ``encode`` (last layer).

Whisper pads every input to 30 s (3000 mel frames -> 1500 encoder frames); clips are padded the same
way, so a clip's frames do not depend on what else is in its batch. Longer clips are cut into 30 s
windows whose frames are concatenated.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from mmser.audio import SAMPLE_RATE
from mmser.devices import autocast
from mmser.features.encoders.base import ModelUnavailableError, parse_layers, state_dict_fingerprint
from mmser.features.encoders.ct2_reader import read_ct2_model
from mmser.features.encoders.model_paths import whisper_ct2_dir

WINDOW_SAMPLES = 30 * SAMPLE_RATE  # samples, Whisper's fixed 30 s input
SAMPLES_PER_FRAME = 320  # samples, encoder frame hop (20 ms) after the stride-2 conv
FRAME_RATE = SAMPLE_RATE / SAMPLES_PER_FRAME  # 50 Hz
# fingerprint suffix of clip-window frames; "-clipwindow2" since a clip is padded to whole frames only (it was
# padded to an even number of frames, so the encoder attended to one frame the cache did not keep)
CLIP_WINDOW_TAG = "-clipwindow2"


def n_frames(n_samples: int) -> int:
    """Encoder frames that cover ``n_samples`` of real audio."""
    return max(1, math.ceil(n_samples / SAMPLES_PER_FRAME))


def windows(wav: np.ndarray) -> list[np.ndarray]:
    """Cut ``(n_samples,)`` into <= 30 s pieces."""
    return [wav[i:i + WINDOW_SAMPLES] for i in range(0, max(len(wav), 1), WINDOW_SAMPLES)]


ENCODER_CACHE = Path(os.environ.get("MMSER_ENCODER_CACHE", Path.home() / ".cache" / "mmser" / "encoders"))


@contextmanager
def skipped_weight_init():
    """Build modules without drawing their random initial weights (for weights loaded right after)."""
    names = ("kaiming_uniform_", "uniform_", "normal_", "xavier_uniform_", "zeros_", "ones_")
    saved = {n: getattr(torch.nn.init, n) for n in names}
    try:
        for n in names:
            setattr(torch.nn.init, n, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for n, fn in saved.items():
            setattr(torch.nn.init, n, fn)


def ct2_encoder(model_dir: Path):
    """``(AudioEncoder, fingerprint)`` of the CTranslate2 model in ``model_dir``, from its PyTorch copy.

    The first call reads ``model.bin``, converts it and hashes the weights, then stores ``encoder.safetensors``
    and ``meta.json`` (dims, fingerprint) under :data:`ENCODER_CACHE`, keyed by the file's path, size and
    modification time; later calls load that copy and read the fingerprint beside it (a fast start)."""
    from safetensors.torch import load_file, save_file
    from whisper.model import AudioEncoder

    from mmser.atomic import atomic_write_bytes

    binary = (Path(model_dir) / "model.bin").resolve()
    stat = binary.stat()
    key = hashlib.sha256(f"{binary}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    folder = ENCODER_CACHE / key
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        with skipped_weight_init():  # every weight is loaded next: drawing random ones first is wasted time
            encoder = AudioEncoder(**meta["dims"])
        encoder.load_state_dict(load_file(str(folder / "encoder.safetensors")), strict=True)
        return encoder, meta["fingerprint"]
    encoder = audio_encoder_from_ct2(model_dir)
    fingerprint = state_dict_fingerprint(encoder)
    block = encoder.blocks[0]
    dims = {"n_mels": encoder.conv1.in_channels, "n_ctx": encoder.positional_embedding.shape[0],
            "n_state": encoder.ln_post.normalized_shape[0], "n_head": block.attn.n_head, "n_layer": len(encoder.blocks)}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".encoder.{os.getpid()}.safetensors"
        save_file({k: v.contiguous() for k, v in encoder.state_dict().items()}, str(tmp))
        os.replace(tmp, folder / "encoder.safetensors")
        atomic_write_bytes(meta_path, json.dumps({"model_bin": str(binary), "size": stat.st_size,
                                                  "mtime_ns": stat.st_mtime_ns, "dims": dims,
                                                  "fingerprint": fingerprint}, indent=2).encode())  # last: complete
    except OSError:  # a read-only home: work without the copy
        pass
    return encoder, fingerprint


def audio_encoder_from_ct2(model_dir: Path):
    """openai-whisper ``AudioEncoder`` with the weights of a CTranslate2 Whisper ``model.bin``."""
    from whisper.model import AudioEncoder

    _, var = read_ct2_model(model_dir / "model.bin", prefix="encoder/")

    def get(name: str) -> torch.Tensor:
        value = var[f"encoder/{name}"]
        scale = var.get(f"encoder/{name}_scale")
        if value.dtype == np.int8 and scale is not None:  # int8-quantized weights: w = q / scale (per row)
            value = value.astype(np.float32) / scale.reshape(-1, *([1] * (value.ndim - 1)))
        return torch.from_numpy(value.astype(np.float32))

    n_state, n_mels, _ = var["encoder/conv1/weight"].shape
    n_ctx = var["encoder/position_encodings/encodings"].shape[0]
    n_layer = len({k.split("/")[1] for k in var if re.match(r"encoder/layer_\d+/", k)})
    n_head = int(np.asarray(var["encoder/num_heads"]).reshape(-1)[0])
    encoder = AudioEncoder(n_mels, n_ctx, n_state, n_head, n_layer)
    state = {
        "conv1.weight": get("conv1/weight"), "conv1.bias": get("conv1/bias"),
        "conv2.weight": get("conv2/weight"), "conv2.bias": get("conv2/bias"),
        "positional_embedding": get("position_encodings/encodings"),
        "ln_post.weight": get("layer_norm/gamma"), "ln_post.bias": get("layer_norm/beta"),
    }
    for i in range(n_layer):
        p, b = f"layer_{i}", f"blocks.{i}"
        q, k, v = get(f"{p}/self_attention/linear_0/weight").chunk(3, dim=0)
        qb, _, vb = get(f"{p}/self_attention/linear_0/bias").chunk(3, dim=0)  # Whisper's key has no bias
        state.update({
            f"{b}.attn_ln.weight": get(f"{p}/self_attention/layer_norm/gamma"),
            f"{b}.attn_ln.bias": get(f"{p}/self_attention/layer_norm/beta"),
            f"{b}.attn.query.weight": q, f"{b}.attn.query.bias": qb,
            f"{b}.attn.key.weight": k, f"{b}.attn.value.weight": v, f"{b}.attn.value.bias": vb,
            f"{b}.attn.out.weight": get(f"{p}/self_attention/linear_1/weight"),
            f"{b}.attn.out.bias": get(f"{p}/self_attention/linear_1/bias"),
            f"{b}.mlp_ln.weight": get(f"{p}/ffn/layer_norm/gamma"), f"{b}.mlp_ln.bias": get(f"{p}/ffn/layer_norm/beta"),
            f"{b}.mlp.0.weight": get(f"{p}/ffn/linear_0/weight"), f"{b}.mlp.0.bias": get(f"{p}/ffn/linear_0/bias"),
            f"{b}.mlp.2.weight": get(f"{p}/ffn/linear_1/weight"), f"{b}.mlp.2.bias": get(f"{p}/ffn/linear_1/bias"),
        })
    encoder.load_state_dict(state, strict=True)
    return encoder


class WhisperTorchEncoder:
    """All hidden states of an openai-whisper ``AudioEncoder``: embedding + each block (last after ln_post)."""

    frame_rate = FRAME_RATE

    def __init__(self, spec: str, layers: str = "all", device: str = "cpu", batch_size: int = 8,
                 window: str = "30s"):
        import whisper

        if window not in ("30s", "clip"):
            raise ValueError(f"whisper window must be '30s' or 'clip', got {window!r}")
        self.window = window

        kind, _, name = spec.partition(":")
        fingerprint = None
        if kind == "whisper-ct2":
            self.encoder, fingerprint = ct2_encoder(whisper_ct2_dir(name))
        elif kind == "whisper":
            try:
                self.encoder = whisper.load_model(name, device="cpu", download_root=None).encoder
            except (RuntimeError, OSError) as err:
                raise ModelUnavailableError(spec, f"openai-whisper could not load it ({str(err).splitlines()[0]})",
                                            "Pass the path of a local openai-whisper checkpoint (.pt)") from None
        else:
            raise ValueError(f"not a Whisper encoder spec: {spec}")
        self.encoder = self.encoder.to(device).eval()
        self.device, self.batch_size, self.encoder_id = device, batch_size, spec
        self.n_mels = self.encoder.conv1.in_channels
        available = len(self.encoder.blocks) + 1
        self.layers = parse_layers(layers, available)
        self.num_layers, self.dim = len(self.layers), self.encoder.ln_post.normalized_shape[0]
        weights = fingerprint or state_dict_fingerprint(self.encoder)
        self.fingerprint = weights + ("" if window == "30s" else CLIP_WINDOW_TAG)

    @torch.inference_mode()
    def _forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, 3000) log-mel -> (L_selected, B, 1500, D) hidden states."""
        enc = self.encoder
        with autocast(self.device):
            return self._hidden_states(enc, mel)

    def _hidden_states(self, enc, mel: torch.Tensor) -> torch.Tensor:
        x = F.gelu(enc.conv1(mel))
        x = F.gelu(enc.conv2(x)).permute(0, 2, 1)  # (B, 1500, D)
        x = (x + enc.positional_embedding[: x.shape[1]]).to(x.dtype)
        states = [x]
        for block in enc.blocks:
            x = block(x)
            states.append(x)
        states[-1] = enc.ln_post(x)
        return torch.stack([states[i] for i in self.layers])

    def encode(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Waveforms (16 kHz mono float32) -> ``(L, T, D)`` per clip, T = ceil(n_samples / 320)."""
        import whisper

        pieces = [(i, w) for i, wav in enumerate(wavs) for w in windows(wav)]
        outputs: list[list[np.ndarray]] = [[] for _ in wavs]
        if self.window == "clip":  # no 30 s padding: one window per forward (no key mask in Whisper blocks)
            for i, w in pieces:
                # whole encoder frames and no more: every frame the blocks attend to is one the cache keeps (the
                # fine-tuned top blocks see exactly the frames the frozen encoder saw)
                padded = np.pad(w, (0, (-len(w)) % SAMPLES_PER_FRAME))
                mel = whisper.log_mel_spectrogram(torch.from_numpy(padded), n_mels=self.n_mels)[None]
                outputs[i].append(self._forward(mel.to(self.device)).float().cpu().numpy()[:, 0, : n_frames(len(w))])
            return [np.concatenate(parts, axis=1) for parts in outputs]
        for start in range(0, len(pieces), self.batch_size):
            chunk = pieces[start:start + self.batch_size]
            mel = torch.stack([
                whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(w)), n_mels=self.n_mels)
                for _, w in chunk
            ]).to(self.device)  # (B, n_mels, 3000)
            hidden = self._forward(mel).float().cpu().numpy()  # (L, B, 1500, D)
            for b, (i, w) in enumerate(chunk):
                outputs[i].append(hidden[:, b, : n_frames(len(w))])
        return [np.concatenate(parts, axis=1) for parts in outputs]


class FasterWhisperEncoder:
    """Last-layer encoder frames from the CTranslate2 runtime (``WhisperModel(path).model.encode``)."""

    frame_rate = FRAME_RATE
    num_layers = 1

    def __init__(self, spec: str, device: str = "cpu", batch_size: int = 8, compute_type: str = "float32"):
        from faster_whisper import WhisperModel

        _, _, name = spec.partition(":")
        model_dir = whisper_ct2_dir(name)
        kind, _, index = device.partition(":")
        self.model = WhisperModel(str(model_dir), device=kind, device_index=int(index or 0), compute_type=compute_type)
        self.encoder_id, self.batch_size = spec, batch_size
        from mmser.audio import file_sha256

        self.fingerprint = file_sha256(model_dir / "model.bin")[:16] + f"-{compute_type}"
        probe = np.zeros((1, self.model.feature_extractor.mel_filters.shape[0], 3000), np.float32)  # (1, n_mels, 3000)
        self.dim = int(np.asarray(self.model.encode(probe)).shape[-1])

    def encode(self, wavs: Sequence[np.ndarray]) -> list[np.ndarray]:
        from faster_whisper.audio import pad_or_trim

        fe = self.model.feature_extractor
        pieces = [(i, w) for i, wav in enumerate(wavs) for w in windows(wav)]
        outputs: list[list[np.ndarray]] = [[] for _ in wavs]
        for start in range(0, len(pieces), self.batch_size):
            chunk = pieces[start:start + self.batch_size]
            mel = np.stack([pad_or_trim(fe(np.pad(w, (0, WINDOW_SAMPLES - len(w))))) for _, w in chunk])
            hidden = np.asarray(self.model.encode(mel.astype(np.float32)))  # (B, 1500, D)
            for b, (i, w) in enumerate(chunk):
                outputs[i].append(hidden[None, b, : n_frames(len(w))])
        return [np.concatenate(parts, axis=1).astype(np.float32) for parts in outputs]
