"""Shards split a corpus without coordination: every item in exactly one shard; sharded transcription
journals per shard and a run without a shard merges them, decoding nothing twice."""

import numpy as np
import pytest

from mmser.data.manifest import read_manifest
from mmser.errors import MmserError
from mmser.features.asr import asr_column
from mmser.features.sharding import in_shard, parse_shard
from mmser.features.transcribe import transcribe_manifest
from tests.features.test_asr import ASR_CFG, ScriptedASR, small_manifest


def test_parse_shard_and_launcher_variables(monkeypatch):
    assert parse_shard(None) is None and parse_shard("1/4") == (1, 4) and parse_shard("0/1") == (0, 1)
    for bad in ("4/4", "-1/2", "a/b", "1"):
        with pytest.raises(MmserError, match="use I/N"):
            parse_shard(bad)
    for var in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(MmserError, match="RANK/WORLD_SIZE"):
        parse_shard("env")
    monkeypatch.setenv("SLURM_PROCID", "2")
    monkeypatch.setenv("SLURM_NTASKS", "3")
    assert parse_shard("env") == (2, 3)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert parse_shard("env") == (1, 2)  # torchrun's variables first


def test_every_key_falls_in_exactly_one_shard():
    rng = np.random.default_rng(0)
    keys = ["a" + "".join(rng.choice(list("0123456789abcdef"), 40)) for _ in range(2000)]
    for n in (1, 2, 3, 8):
        owners = [[i for i in range(n) if in_shard(k, (i, n))] for k in keys]
        assert all(len(o) == 1 for o in owners)
        sizes = np.bincount([o[0] for o in owners], minlength=n)
        assert sizes.min() > 0.8 * len(keys) / n  # balanced


def test_sharded_transcription_journals_then_merges(tmp_path):
    path = small_manifest(tmp_path, n=6)
    col = asr_column("faster-whisper:tiny.en")
    calls = []
    for i in range(2):
        asr = ScriptedASR()
        assert transcribe_manifest(path, "faster-whisper:tiny.en", ASR_CFG, progress=False, asr=asr, shard=(i, 2)) is None
        calls.append(asr.calls)
        assert col not in read_manifest(path).columns  # the manifest waits for the merge
    assert sum(calls) == 6 and all(c > 0 for c in calls)  # each row decoded once, by one shard
    merge = ScriptedASR()
    report = transcribe_manifest(path, "faster-whisper:tiny.en", ASR_CFG, progress=False, asr=merge)
    assert merge.calls == 0 and report["wer"] == 0.0
    assert read_manifest(path)[col].str.startswith("words").all()
    assert not list(tmp_path.glob("*.partial*.jsonl"))
    with pytest.raises(MmserError, match="--force and --shard"):
        transcribe_manifest(path, "faster-whisper:tiny.en", ASR_CFG, force=True, asr=merge, shard=(0, 2))
