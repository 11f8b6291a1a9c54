"""Several processes fill one content-keyed cache at once: nothing is corrupted or lost, with or without
--shard, and the shards together encode each clip exactly once."""

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mmser.data.manifest import write_manifest
from mmser.features.cache import FeatureCache
from tests.conftest import save_tiny_whisper, write_tone

N_CLIPS = 24


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("concurrent")
    whisper = save_tiny_whisper(root / "w.pt")
    rows = [{"utt_id": f"u{i}", "path": str(write_tone(root / f"c{i}.wav", seconds=0.2 + 0.02 * i, seed=i + 1)),
             "speaker": f"s{i % 4}", "label": "sad"} for i in range(N_CLIPS)]
    write_manifest(pd.DataFrame(rows), root / "m.csv")
    return root, f"whisper:{whisper}"


def extract_cmd(root, encoder, cache, *extra):
    return [sys.executable, "-m", "mmser.cli", "extract", str(root / "m.csv"), "--encoder", encoder,
            f"features.cache_dir={cache}", "features.whisper_window=clip", "features.shard_size=2",
            "features.batch_size=2", *extra]


def run_together(commands) -> list[str]:
    """Start every command at once; wait for all; return their outputs (each must succeed)."""
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    return [out for out, _ in outs]


def encoded(output: str) -> int:
    return int(re.search(r"(\d+) encoded", output)[1])


def cache_items(cache_root) -> dict[str, np.ndarray]:
    (folder,) = [d for d in cache_root.iterdir() if d.is_dir()]
    meta = __import__("json").loads((folder / "meta.json").read_text())
    cache = FeatureCache(cache_root, meta["encoder_id"], meta["fingerprint"], meta["layers"])
    return cache.get_many(list(cache._index))


def test_two_processes_filling_one_cache_lose_and_corrupt_nothing(corpus):
    root, encoder = corpus
    (reference_out,) = run_together([extract_cmd(root, encoder, root / "reference")])
    assert encoded(reference_out) == N_CLIPS
    reference = cache_items(root / "reference")

    both = run_together([extract_cmd(root, encoder, root / "shared") for _ in range(2)])  # the same clips, at once
    assert all(encoded(out) <= N_CLIPS for out in both)
    shared = cache_items(root / "shared")
    assert shared.keys() == reference.keys()
    for key, value in reference.items():
        np.testing.assert_array_equal(shared[key], value)
    (again,) = run_together([extract_cmd(root, encoder, root / "shared")])
    assert encoded(again) == 0

    halves = run_together([extract_cmd(root, encoder, root / "sharded", "--shard", f"{i}/2") for i in range(2)])
    assert sum(encoded(out) for out in halves) == N_CLIPS and all(encoded(out) > 0 for out in halves)
    sharded = cache_items(root / "sharded")
    assert sharded.keys() == reference.keys()
    for key, value in reference.items():
        np.testing.assert_array_equal(sharded[key], value)
    (after,) = run_together([extract_cmd(root, encoder, root / "sharded")])
    assert encoded(after) == 0
    assert not [p for p in (root / "sharded").rglob("*") if p.name.endswith(".tmp")]
