"""Feature cache: content keys, atomic shards, resumption without recomputation, bad input named."""

import os
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mmser.audio import AudioError
from mmser.errors import MmserError
from mmser.features.cache import FeatureCache, audio_key, text_key
from mmser.features.extract import extract
from tests.conftest import write_tone


class CountingEncoder:
    """A fake acoustic encoder that counts what it encodes (and can fail after a number of clips)."""

    encoder_id, fingerprint, num_layers, dim, frame_rate = "fake:enc", "fp1", 1, 4, 50.0

    def __init__(self, fail_after=None):
        self.calls, self.fail_after = 0, fail_after

    def encode(self, wavs):
        out = []
        for wav in wavs:
            if self.fail_after is not None and self.calls >= self.fail_after:
                raise RuntimeError("simulated crash")
            self.calls += 1
            out.append(np.full((1, 3, 4), float(len(wav)), np.float32))
        return out


def features_cfg(tmp_path, shard_size=2):
    return SimpleNamespace(cache_dir=str(tmp_path / "cache"), audio_layers="all", text_layers="last", device="cpu",
                           batch_size=1, shard_size=shard_size, num_threads=0, max_text_tokens=16, whisper_window="30s")


def manifest(tmp_path, n=5):
    rows = []
    for i in range(n):
        p = write_tone(tmp_path / f"a{i}.wav", seconds=0.3 + 0.1 * i, seed=i + 1)
        rows.append({"utt_id": f"u{i}", "path": str(p), "label": "angry", "speaker": "s", "duration_s": 0.3 + 0.1 * i})
    return pd.DataFrame(rows)


def test_keys_follow_content_and_model(tmp_path):
    a = FeatureCache(tmp_path, "enc", "fp1", "all")
    assert FeatureCache(tmp_path, "enc", "fp1", "all").dir == a.dir
    assert FeatureCache(tmp_path, "enc", "fp2", "all").dir != a.dir  # changed weights -> other cache
    assert FeatureCache(tmp_path, "enc", "fp1", "last").dir != a.dir  # other layers -> other cache
    assert audio_key("ab" * 32) != audio_key("cd" * 32) and text_key("hi") != text_key("hi ")


def test_fp16_roundtrip_and_second_run_is_a_hit(tmp_path):
    df, cfg, enc = manifest(tmp_path), features_cfg(tmp_path), CountingEncoder()
    first = extract(df, "fake:enc", cfg, encoder=enc, progress=False)
    assert first.computed == 5 and enc.calls == 5
    second = extract(df, "fake:enc", cfg, encoder=enc, progress=False)
    assert second.computed == 0 and enc.calls == 5
    got = second.cache.get_many(second.keys)[second.keys[0]]
    assert got.dtype == np.float16 and got.shape == (1, 3, 4)


def test_changed_audio_is_recomputed(tmp_path):
    df, cfg, enc = manifest(tmp_path), features_cfg(tmp_path), CountingEncoder()
    extract(df, "fake:enc", cfg, encoder=enc, progress=False)
    write_tone(tmp_path / "a0.wav", seconds=0.9, seed=99)
    df = df.drop(columns=[c for c in df.columns if c == "audio_sha256"])
    extract(df, "fake:enc", cfg, encoder=enc, progress=False)
    assert enc.calls == 6


def test_crash_keeps_finished_shards_and_resume_computes_only_the_rest(tmp_path):
    df, cfg = manifest(tmp_path), features_cfg(tmp_path, shard_size=2)
    with pytest.raises(RuntimeError, match="simulated"):
        extract(df, "fake:enc", cfg, encoder=CountingEncoder(fail_after=3), progress=False)
    enc = CountingEncoder()
    result = extract(df, "fake:enc", cfg, encoder=enc, progress=False)
    assert enc.calls == 2 and result.computed == 2  # 3 were kept (2 in a full shard + 1 flushed on error)


def test_the_cache_folder_and_what_it_holds_are_said_before_encoding(tmp_path, capsys):
    # a cache_dir relative to another working folder encodes everything again: the line shows where and how much
    df, cfg = manifest(tmp_path), features_cfg(tmp_path, shard_size=2)
    with pytest.raises(RuntimeError, match="simulated"):
        extract(df, "fake:enc", cfg, encoder=CountingEncoder(fail_after=3), progress=True)
    capsys.readouterr()
    result = extract(df, "fake:enc", cfg, encoder=CountingEncoder(), progress=True)
    err = capsys.readouterr().err
    assert f"fake:enc: encoding 2 of 5 clips (3 cached) into {result.cache.dir.resolve()}" in err
    extract(df, "fake:enc", cfg, encoder=CountingEncoder(), progress=True)
    assert "encoding" not in capsys.readouterr().err  # nothing to encode: nothing said


def test_interrupted_write_leaves_no_shard(tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path, "enc", "fp", "all")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        cache.write_shard({"k": np.zeros((1, 2, 3))})
    monkeypatch.undo()
    assert list(cache.dir.glob("shard-*")) == [] and list(cache.dir.glob(".*tmp")) == []
    assert "k" not in FeatureCache(tmp_path, "enc", "fp", "all")


def test_bad_audio_is_named_and_finished_work_kept(tmp_path):
    df, cfg = manifest(tmp_path), features_cfg(tmp_path, shard_size=10)
    (tmp_path / "a3.wav").write_bytes(b"")
    enc = CountingEncoder()
    with pytest.raises(AudioError, match="a3.wav: empty file"):
        extract(df.drop(columns=[]), "fake:enc", cfg, encoder=enc, progress=False)
    assert len(FeatureCache(cfg.cache_dir, "fake:enc", "fp1", "all")) == enc.calls > 0


def test_a_disk_too_small_for_the_rest_stops_at_the_first_shard_and_keeps_it(tmp_path, monkeypatch):
    import shutil

    from mmser.features import cache as cache_module

    df, cfg = manifest(tmp_path), features_cfg(tmp_path, shard_size=2)
    (tmp_path / "cache").mkdir()
    shard_bytes = FeatureCache(cfg.cache_dir, "probe", "fp", "all").write_shard(
        {f"k{i}": np.zeros((1, 3, 4)) for i in range(2)}).stat().st_size
    usage = shutil.disk_usage(tmp_path)
    # room for 2 of the 3 items left after the first shard (about half a shard each)
    monkeypatch.setattr(cache_module.shutil, "disk_usage", lambda path: usage._replace(free=shard_bytes))
    enc = CountingEncoder()
    with pytest.raises(cache_module.CacheSpaceError, match=r"cache.*the 3 items still to encode need about .* GB") as err:
        extract(df, "fake:enc", cfg, encoder=enc, progress=False)
    assert "the 2 items encoded in this run are kept" in str(err.value) and enc.calls == 2
    assert "mmser cache prune" in str(err.value)
    monkeypatch.setattr(cache_module.shutil, "disk_usage", lambda path: usage._replace(free=2 * shard_bytes))
    enc = CountingEncoder()
    assert extract(df, "fake:enc", cfg, encoder=enc, progress=False).computed == 3 and enc.calls == 3


def test_a_full_disk_is_named_as_such(tmp_path, monkeypatch):
    import errno

    from mmser.features import cache as cache_module

    cache = FeatureCache(tmp_path, "enc", "fp", "all")
    cache.write_shard({"kept": np.zeros((1, 2, 3))})

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module, "atomic_write_bytes", full)
    with pytest.raises(cache_module.CacheSpaceError, match=r"the disk is full \(1 items cached here are kept") as err:
        cache.write_shard({"k": np.zeros((1, 2, 3))})
    assert "mmser cache prune" in str(err.value)
    monkeypatch.setattr(cache_module, "atomic_write_bytes", lambda path, data: (_ for _ in ()).throw(OSError("other")))
    with pytest.raises(OSError, match="other") as other:
        cache.write_shard({"k": np.zeros((1, 2, 3))})
    assert not isinstance(other.value, cache_module.CacheSpaceError)


def test_a_cache_folder_behind_a_dangling_link_is_named(tmp_path):
    (tmp_path / "cache").symlink_to(tmp_path / "elsewhere" / "cache")  # e.g. a link from another machine
    with pytest.raises(MmserError, match=r"cache is a link to .*elsewhere/cache, which does not exist"):
        FeatureCache(tmp_path / "cache" / "features", "enc", "fp1", "all")
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(MmserError, match=r"file/features/\S+: cannot create the feature cache folder \(Not a directory"):
        FeatureCache(tmp_path / "file" / "features", "enc", "fp1", "all")
