"""Shared fixtures: tiny generated corpora in the real layouts (numpy signals, espeak-ng speech)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SHARED_RAVDESS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ravdess"


def write_tone(path: Path, seconds: float = 0.6, sr: int = 16_000, freq: float = 220.0, seed: int = 0,
               channels: int = 1, subtype: str = "PCM_16") -> Path:
    """A short voiced-like signal (harmonics + noise) distinct per seed, so no two files are identical."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = freq * (1 + 0.05 * seed)
    wav = sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 5)) + 0.01 * rng.standard_normal(t.size)
    wav = wav.astype(np.float32)
    if channels > 1:
        wav = np.stack([wav] * channels, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wav, sr, subtype=subtype)
    return path


@pytest.fixture
def ravdess_tree(tmp_path: Path) -> Path:
    root = tmp_path / "ravdess"
    seed = 0
    for actor in ("01", "02", "03", "04"):
        for emo in ("01", "03", "05"):
            for stmt in ("01", "02"):
                seed += 1
                write_tone(root / f"Actor_{actor}" / f"03-01-{emo}-01-{stmt}-01-{actor}.wav", seed=seed)
    return root


@pytest.fixture
def iemocap_tree(tmp_path: Path) -> Path:
    """Two sessions, two speakers each, labels incl. exc (-> happy) and xxx (excluded)."""
    root = tmp_path / "IEMOCAP_full_release"
    seed = 0
    for session in (1, 2):
        for dialog in (f"Ses0{session}F_impro01", f"Ses0{session}M_script01_1"):
            emo, trans = ["% header", ""], []
            for i, (letter, label) in enumerate([("F", "neu"), ("M", "ang"), ("F", "exc"), ("M", "sad"), ("F", "xxx")]):
                utt = f"{dialog}_{letter}{i:03d}"
                seed += 1
                write_tone(root / f"Session{session}" / "sentences" / "wav" / dialog / f"{utt}.wav", seed=seed)
                emo += [f"[{i}.0000 - {i}.5000]\t{utt}\t{label}\t[2.5000, 3.0000, 3.5000]", f"C-E2:\t{label};\t()", ""]
                trans.append(f"{utt} [{i:03d}.0000-{i:03d}.5000]: sentence number {i} of {dialog}")
            write_dialog_files(root, session, dialog, emo, trans)
    return root


def write_dialog_files(root: Path, session: int, dialog: str, emo: list[str], trans: list[str]) -> None:
    """IEMOCAP's per-dialog ``EmoEvaluation`` and ``transcriptions`` text files."""
    for sub, lines in (("EmoEvaluation", emo), ("transcriptions", trans)):
        d = root / f"Session{session}" / "dialog" / sub
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{dialog}.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.skip("espeak-ng not installed")
    return exe


def save_tiny_whisper(path: Path, state: int = 32, layers: int = 1) -> Path:
    """A randomly initialised openai-whisper model saved in its own checkpoint format (``whisper.load_model``)."""
    from dataclasses import asdict

    import torch
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=state, n_audio_head=2, n_audio_layer=layers,
                           n_vocab=51864, n_text_ctx=64, n_text_state=state, n_text_head=2, n_text_layer=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"dims": asdict(dims), "model_state_dict": Whisper(dims).state_dict()}, path)
    return path




def save_tiny_wav2vec2(path: Path, layers: int = 2, feat_extract_norm: str = "layer", stable: bool = True) -> Path:
    """A randomly initialised wav2vec2 (hidden size 32) saved with ``save_pretrained`` (an ``hf:`` encoder folder)."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    config = Wav2Vec2Config(hidden_size=32, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=64,
                            conv_dim=(32, 32), conv_stride=(5, 64), conv_kernel=(10, 64), num_conv_pos_embeddings=16,
                            num_conv_pos_embedding_groups=4, feat_extract_norm=feat_extract_norm,
                            do_stable_layer_norm=stable)
    Wav2Vec2Model(config).eval().save_pretrained(path)
    return path


def tiny_features():
    """The FeatureSpec of the tiny test checkpoints (clip window, 2-frame pooling)."""
    from mmser.features.spec import FeatureSpec

    return FeatureSpec(whisper_window="clip", frame_stride=2, audio_layers="all", text_layers="last", max_text_tokens=32)


def tiny_checkpoint(path, whisper_ckpt, seed: int, members: int, **features):
    """An audio-only checkpoint over the tiny Whisper: ``members`` models drawn with ``seed``, trained (as its
    FeatureSpec says) with ``features`` replacing the tiny test spec's fields."""
    from dataclasses import replace

    import torch

    from mmser.checkpoint import Member, save_checkpoint
    from mmser.features.encoders.registry import build_audio_encoder
    from mmser.models.builders import ModelDims, build_model

    spec = f"whisper:{whisper_ckpt}"
    window = features.get("whisper_window", "clip")
    fingerprint = build_audio_encoder(spec, "all", whisper_window=window).fingerprint
    torch.manual_seed(seed)
    models = [Member(build_model(ModelDims("audio_only", audio_dim=32, num_audio_layers=2, hidden_dim=16)), spec,
                     fingerprint, None) for _ in range(members)]
    return save_checkpoint(path, models, replace(tiny_features(), **features), None, {})


@pytest.fixture(scope="module")
def whisper_ckpt(tmp_path_factory):
    """A tiny randomly initialised openai-whisper checkpoint (state 32, 1 block)."""
    return save_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny-random.pt", state=32, layers=1)


@pytest.fixture(scope="module")
def checkpoint(whisper_ckpt, tmp_path_factory):
    """An audio-only 2-member mmser checkpoint over the tiny Whisper (4 classes)."""
    import torch

    from mmser.checkpoint import Member, save_checkpoint
    from mmser.features.encoders.registry import build_audio_encoder
    from mmser.labels import class_mask
    from mmser.models.builders import ModelDims, build_model

    spec = f"whisper:{whisper_ckpt}"
    enc = build_audio_encoder(spec, "all", whisper_window="clip")
    torch.manual_seed(1)
    mask = tuple(class_mask(["neutral", "happy", "sad", "angry"]))
    members = [Member(build_model(ModelDims("audio_only", audio_dim=32, num_audio_layers=2, hidden_dim=16, class_mask=mask)),
                      spec, enc.fingerprint, None) for _ in range(2)]
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    save_checkpoint(path, members, tiny_features(), None, {"note": "test"})
    return path


@pytest.fixture(scope="module")
def running_checkpoint(checkpoint, tmp_path_factory):
    """``checkpoint``'s members saved as trained with ``features.speaker_norm.mode: running``."""
    from dataclasses import replace

    from mmser.checkpoint import load_checkpoint, save_checkpoint
    from mmser.features.spec import SpeakerNorm

    members = load_checkpoint(checkpoint).members
    path = tmp_path_factory.mktemp("ckpt") / "running.safetensors"
    save_checkpoint(path, members, replace(tiny_features(), speaker_norm=SpeakerNorm("running")), None, {})
    return path


@pytest.fixture
def client(checkpoint):
    """(HTTP test client, the predictor behind it) for ``checkpoint``."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from mmser.inference import Predictor
    from mmser.serve import create_app

    predictor = Predictor.from_checkpoint(checkpoint)
    return TestClient(create_app(predictor, max_upload_bytes=200_000, max_duration_s=10.0)), predictor


# A long recording for timelines and streams (tests/test_timeline.py, tests/test_streaming.py)
SENTENCES = [  # (text, espeak pitch, rate)
    ("the weather report says it will rain all afternoon", 30, 150),
    ("I cannot believe you broke my favourite guitar again", 80, 210),
    ("please bring the blue folder to the meeting room", 50, 130),
]
PAUSE_S = 1.5


def speak(text: str, pitch: int, rate: int, path) -> np.ndarray:
    from mmser.audio import load_audio

    subprocess.run(["espeak-ng", "-v", "en-us", "-p", str(pitch), "-s", str(rate), "-w", str(path), text], check=True)
    return load_audio(path)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """sentences with 1.5 s pauses (and a lone short word at the end) -> (path, [(start s, end s, text)])."""
    from mmser.audio import SAMPLE_RATE

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    root = tmp_path_factory.mktemp("long")
    pieces, spans, t = [np.zeros(int(0.8 * SAMPLE_RATE), np.float32)], [], 0.8
    for k, (text, pitch, rate) in enumerate(SENTENCES + [("hey", 50, 200)]):
        wav = speak(text, pitch, rate, root / f"s{k}.wav")
        voiced = np.flatnonzero(np.abs(wav) > 0.01)
        wav = wav[voiced[0]:voiced[-1] + 1]  # espeak's own leading/trailing silence cut: the span is the speech
        spans.append((t, t + len(wav) / SAMPLE_RATE, text))
        pieces += [wav, np.zeros(int(PAUSE_S * SAMPLE_RATE), np.float32)]
        t += len(wav) / SAMPLE_RATE + PAUSE_S
    path = root / "long.wav"
    sf.write(path, np.concatenate(pieces), SAMPLE_RATE)
    return path, spans
