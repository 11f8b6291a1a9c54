"""``mmser cache``: what the feature cache holds, and pruning by last use without losing what runs still read."""

import os
import time

import numpy as np
import pandas as pd
import pytest

from mmser.cli import main
from mmser.config import load_config
from mmser.errors import MmserError
from mmser.features.cache import FeatureCache
from mmser.features.cache_usage import DAY, HOUR, describe, prune_plan, remove, scan
from mmser.features.extract import extract
from mmser.features.store import load_store
from tests.conftest import save_tiny_whisper, write_tone
from tests.features.test_cache import CountingEncoder, features_cfg, manifest


def cache_with_shards(root, ages_days, encoder_id="enc"):
    """One cache folder with one 2-item shard per age (days since last use); returns (cache, shard paths)."""
    cache, paths, now = FeatureCache(root, encoder_id, "fp", "all"), [], time.time()
    for i, age in enumerate(ages_days):
        path = cache.write_shard({f"a{i}x": np.ones((1, 10, 8)), f"a{i}y": np.zeros((1, 10, 8))})
        os.utime(path, (now - age * DAY, now - age * DAY))
        paths.append(path)
    return cache, paths


def test_scan_reports_each_folder_and_its_shards(tmp_path):
    cache_with_shards(tmp_path, [3, 1], "enc:a")
    cache_with_shards(tmp_path, [5], "enc:b")
    folders = {f.encoder_id: f for f in scan(tmp_path)}
    assert set(folders) == {"enc:a", "enc:b"}
    a = folders["enc:a"]
    assert a.items == 4 and len(a.shards) == 2 and a.layers == "all"
    assert a.bytes == sum(p.stat().st_size for p in a.path.glob("shard-*"))
    assert time.time() - a.last_used == pytest.approx(1 * DAY, abs=60)
    text = describe(list(folders.values()))
    assert "enc:a" in text and "enc:b" in text and "6 items" in text


def test_a_missing_cache_folder_is_named(tmp_path):
    with pytest.raises(MmserError, match="nowhere"):
        scan(tmp_path / "nowhere")


def test_locate_marks_the_shards_a_run_reads(tmp_path):
    cache, (old, other) = cache_with_shards(tmp_path, [10, 10])
    located = cache.locate(["a0y", "a0x"])
    assert located == [(str(old), "a0y"), (str(old), "a0x")]
    assert time.time() - old.stat().st_mtime < 60
    assert time.time() - other.stat().st_mtime > 9 * DAY


def test_loading_a_store_marks_its_shards_so_prune_keeps_them(tmp_path):
    whisper = f"whisper:{save_tiny_whisper(tmp_path / 'w.pt')}"
    rows = [{"utt_id": f"u{i}", "path": str(write_tone(tmp_path / f"c{i}.wav", seconds=0.3, seed=i + 1)),
             "speaker": "s", "label": "angry"} for i in range(6)]
    df = pd.DataFrame(rows)
    cfg = load_config([], [f"features.cache_dir={tmp_path / 'cache'}", f"features.audio_encoders=[{whisper}]",
                           "features.whisper_window=clip", "features.shard_size=2"], use_local=False).features
    load_store(df, cfg, [whisper], [], False)  # encodes 3 shards of 2 clips
    [folder] = scan(cfg.cache_dir)
    for shard in folder.shards:
        os.utime(shard.path, (time.time() - 30 * DAY,) * 2)
    store = load_store(df.iloc[:2], cfg, [whisper], [], False)  # a run reading the first two clips only
    result = store.extracted[whisper]
    read = {result.cache.location(k) for k in result.keys}
    gone = {s.path for s in prune_plan(scan(cfg.cache_dir), unused_days=7)}
    assert gone == {s.path for s in folder.shards} - read and 1 <= len(gone) < 3


def test_extracting_a_cached_manifest_marks_its_shards(tmp_path):
    df, cfg, enc = manifest(tmp_path), features_cfg(tmp_path), CountingEncoder()
    extract(df, "fake:enc", cfg, encoder=enc, progress=False)
    for path in (tmp_path / "cache").rglob("shard-*"):
        os.utime(path, (time.time() - 30 * DAY,) * 2)
    again = extract(df.iloc[:2], "fake:enc", cfg, encoder=enc, progress=False)  # warming the cache for a run
    assert again.computed == 0
    gone = {s.path for s in prune_plan(scan(cfg.cache_dir), unused_days=7)}
    assert gone == set((tmp_path / "cache").rglob("shard-*")) - {again.cache.location(k) for k in again.keys}
    assert len(gone) == 2


def test_prune_by_unused_days_removes_only_old_shards_and_the_next_run_encodes_them_again(tmp_path):
    df, cfg, enc = manifest(tmp_path), features_cfg(tmp_path), CountingEncoder()
    result = extract(df, "fake:enc", cfg, encoder=enc, progress=False)
    shards = sorted(result.cache.dir.glob("shard-*"))  # 3 shards of 2, 2 and 1 items
    os.utime(shards[0], (time.time() - 30 * DAY,) * 2)
    gone = prune_plan(scan(cfg.cache_dir), unused_days=7)
    assert [s.path for s in gone] == [shards[0]]
    assert remove(gone) == gone[0].bytes and not shards[0].exists() and shards[1].exists()
    again = extract(df, "fake:enc", cfg, encoder=enc, progress=False)
    assert again.computed == 2 and enc.calls == 7  # only the pruned shard's two clips


def test_max_gb_removes_least_recently_used_first_and_never_a_shard_in_use(tmp_path):
    _, paths = cache_with_shards(tmp_path, [1, 9, 5, 0.01])  # the last one used 15 minutes ago
    size = paths[0].stat().st_size
    folders = scan(tmp_path)
    budget = 2.5 * size / (1 << 30)  # room for two and a half shards
    assert [s.path for s in prune_plan(folders, max_gb=budget)] == [paths[1], paths[2]]
    assert [s.path for s in prune_plan(folders, max_gb=0)] == [paths[1], paths[2], paths[0]]  # not the one in use
    assert [s.path for s in prune_plan(folders, max_gb=0, keep_hours=0)] == [paths[1], paths[2], paths[0], paths[3]]
    assert [s.path for s in prune_plan(folders, unused_days=3, max_gb=100)] == [paths[1], paths[2]]
    assert prune_plan(folders, unused_days=1 / 24, keep_hours=12) == prune_plan(folders, unused_days=0.5)
    assert 12 * HOUR == 0.5 * DAY


def test_a_folder_left_without_shards_is_removed(tmp_path):
    cache, paths = cache_with_shards(tmp_path, [40, 30])
    remove(prune_plan(scan(tmp_path), unused_days=7))
    assert not cache.dir.exists() and scan(tmp_path) == []


@pytest.mark.parametrize("kwargs, message", [({}, "--unused-days"), ({"unused_days": -1}, "--unused-days must be"),
                                             ({"max_gb": float("nan")}, "--max-gb must be")])
def test_bad_prune_arguments_are_named(tmp_path, kwargs, message):
    cache_with_shards(tmp_path, [1])
    with pytest.raises(MmserError, match=message):
        prune_plan(scan(tmp_path), **kwargs)


def test_cli_lists_dry_runs_and_prunes(tmp_path, capsys):
    _, paths = cache_with_shards(tmp_path / "c", [30, 2])
    override = f"features.cache_dir={tmp_path / 'c'}"
    assert main(["cache", "list", override]) == 0
    assert "enc" in capsys.readouterr().out
    assert main(["cache", "prune", "--unused-days", "7", "--dry-run", override]) == 0
    assert str(paths[0]) in capsys.readouterr().out and paths[0].exists()
    assert main(["cache", "prune", "--unused-days", "7", override]) == 0
    out = capsys.readouterr().out
    assert "removed 1 shard(s), 2 items" in out and not paths[0].exists() and paths[1].exists()
    assert main(["cache", "prune", override]) == 2
    assert "--unused-days" in capsys.readouterr().err
    assert main(["cache", "list", "--max-gb", "1", override]) == 2
    assert "belong to `mmser cache prune`" in capsys.readouterr().err


def test_a_shard_removed_under_a_running_job_is_named(tmp_path):
    from mmser.features.store import CachedRows

    cache, (path,) = cache_with_shards(tmp_path, [0])
    rows = CachedRows(cache.locate(["a0x"]))
    path.unlink()
    with pytest.raises(MmserError, match="shard is gone.*run again"):
        rows[0]
