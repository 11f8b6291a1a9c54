"""Crash safety: SIGKILL `extract`, `transcribe` and `cv` mid-way; the re-run finishes with the results of an
uninterrupted run, recomputes no finished work, and never reads a partial file as complete."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmser.data.manifest import read_manifest, write_manifest
from mmser.features.cache import FeatureCache
from tests.conftest import save_tiny_whisper, write_tone

pytestmark = pytest.mark.slow


def mmser(*args, cwd=None):
    return [sys.executable, "-m", "mmser.cli", *map(str, args)]


def run_and_kill(cmd, ready, timeout=240):
    """Start ``cmd``; SIGKILL it as soon as ``ready()`` is true (and fail if it finished first)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ready():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        if proc.poll() is not None:
            pytest.fail(f"finished before it could be killed:\n{proc.stdout.read().decode()[-2000:]}")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("never reached the kill point")


@pytest.fixture(scope="module")
def whisper_ckpt(tmp_path_factory):
    return save_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny-random.pt", state=64, layers=2)


@pytest.fixture
def corpus(tmp_path):
    rows = [{"utt_id": f"u{i:02d}", "path": str(write_tone(tmp_path / "a" / f"{i}.wav", seconds=0.4 + 0.02 * i, seed=i + 1)),
             "speaker": f"s{i % 4}", "label": ["angry", "sad"][i % 2], "transcript": "x"} for i in range(24)]
    path = tmp_path / "m.csv"
    write_manifest(pd.DataFrame(rows), path)
    return path


def test_extract_killed_then_resumed(corpus, whisper_ckpt, tmp_path):
    spec = f"whisper:{whisper_ckpt}"
    common = ["--encoder", spec, "features.batch_size=1", "features.shard_size=3", "features.whisper_window=30s"]
    killed_cache, clean_cache = tmp_path / "c1", tmp_path / "c2"
    run_and_kill(mmser("extract", corpus, *common, f"features.cache_dir={killed_cache}"),
                 lambda: len(list(killed_cache.rglob("shard-*.safetensors"))) >= 2)
    kept = sum(1 for _ in killed_cache.rglob("shard-*.safetensors")) * 3
    out = subprocess.run(mmser("extract", corpus, *common, f"features.cache_dir={killed_cache}"), capture_output=True,
                         text=True, check=True).stdout
    encoded = int(re.search(r"(\d+) encoded", out).group(1))
    assert encoded <= 24 - kept  # finished shards were not recomputed
    subprocess.run(mmser("extract", corpus, *common, f"features.cache_dir={clean_cache}"), check=True, capture_output=True)
    a, b = (FeatureCache(next(c.iterdir()).parent, *_meta(next(c.iterdir()))) for c in (killed_cache, clean_cache))
    keys = sorted(a._index)
    assert keys == sorted(b._index) and len(keys) == 24
    for key, value in a.get_many(keys).items():
        np.testing.assert_array_equal(value, b.get_many([key])[key])


def _meta(cache_dir: Path):
    import json

    meta = json.loads((cache_dir / "meta.json").read_text())
    return meta["encoder_id"], meta["fingerprint"], meta["layers"]


def test_transcribe_killed_then_resumed(corpus, whisper_ckpt, tmp_path):
    spec = f"openai-whisper:{whisper_ckpt}"
    clean = tmp_path / "clean.csv"
    clean.write_bytes(corpus.read_bytes())
    partial = corpus.with_name(f"{corpus.name}.asr_openai-whisper_{str(whisper_ckpt).replace('/', '_')}.partial.jsonl")
    partial = next(iter([partial]))
    run_and_kill(mmser("transcribe", corpus, "--asr", spec, "asr.beam_size=1"),
                 lambda: any(len(p.read_text().splitlines()) >= 3 for p in corpus.parent.glob("*.partial.jsonl")))
    done_before = len(next(corpus.parent.glob("*.partial.jsonl")).read_text().splitlines())
    assert done_before >= 3
    subprocess.run(mmser("transcribe", corpus, "--asr", spec, "asr.beam_size=1"), check=True, capture_output=True)
    subprocess.run(mmser("transcribe", clean, "--asr", spec, "asr.beam_size=1"), check=True, capture_output=True)
    col = [c for c in read_manifest(corpus).columns if c.startswith("asr_")][0]
    assert read_manifest(corpus)[col].tolist() == read_manifest(clean)[col].tolist()
    assert not list(corpus.parent.glob("*.partial.jsonl"))


def test_cv_killed_then_resumed(corpus, whisper_ckpt, tmp_path):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        f"data:\n  name: k\n  manifest: {corpus}\n  classes: [angry, sad]\n"
        f"split:\n  protocol: leave_speakers_out\n  speakers_per_fold: 1\n  val_speakers: 1\n"
        f"features:\n  audio_encoders: ['whisper:{whisper_ckpt}']\n  whisper_window: clip\n  cache_dir: {tmp_path / 'cache'}\n"
        "model:\n  kind: audio_only\n  hidden_dim: 16\ntrain:\n  max_epochs: 3\n  batch_size: 4\n"
        "trainer:\n  accelerator: cpu\n  enable_progress_bar: false\n")
    resumed, clean = tmp_path / "r1", tmp_path / "r2"
    run_and_kill(mmser("cv", cfg, "--out", resumed), lambda: (resumed / "fold0" / "metrics.json").is_file())
    out = subprocess.run(mmser("cv", cfg, "--out", resumed), capture_output=True, text=True, check=True).stdout
    assert "fold0: done earlier" in out
    subprocess.run(mmser("cv", cfg, "--out", clean), capture_output=True, text=True, check=True)
    for fold in ("fold0", "fold1", "fold2", "fold3"):
        a = pd.read_csv(resumed / fold / "predictions.csv")
        b = pd.read_csv(clean / fold / "predictions.csv")
        pd.testing.assert_frame_equal(a, b, atol=1e-5)
