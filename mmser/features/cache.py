"""Feature cache: encoder outputs computed once, stored in fp16 safetensors shards, written atomically.

A cache folder is keyed by encoder id + weights fingerprint + layer selection, and each item inside by
the audio's content hash (or the text's hash): a changed file or model is never served stale. Shards
are immutable and appear by atomic rename, so a killed run leaves no half shard and a re-run computes
only what no complete shard holds. Memory is bounded by ``shard_size`` items.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Iterable

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save as save_safetensors

from mmser.data.manifest import atomic_write_bytes
from mmser.errors import MmserError

GIGABYTE = 1 << 30  # bytes
PRUNE_HINT = "mmser cache list shows what the cache holds, mmser cache prune removes what runs have not used"


class CacheSpaceError(MmserError):
    """The feature cache's disk is full, or cannot hold what a run still has to encode."""


def text_key(text: str) -> str:
    """Cache key of a transcript."""
    return "t" + hashlib.sha256(str(text).encode("utf-8")).hexdigest()[:40]


def audio_key(sha256: str) -> str:
    """Cache key of an audio file from its content hash."""
    return "a" + sha256[:40]


def make_cache_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents); raises MmserError naming it, and a link to a missing folder on its
    way, when it cannot be made (a file in the way, no permission, a dangling link such as one copied from
    another machine)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        dangling = next((p for p in (folder, *folder.parents) if p.is_symlink() and not p.exists()), None)
        why = (f"{dangling} is a link to {os.readlink(dangling)}, which does not exist" if dangling is not None
               else f"{err.strerror}: {err.filename}")
        raise MmserError(f"{folder}: cannot create the feature cache folder ({why}); point features.cache_dir at a "
                         "folder this user can write") from None


class FeatureCache:
    """One encoder's cached outputs: ``key -> (L, T, D)`` float16 arrays."""

    def __init__(self, root: str | Path, encoder_id: str, fingerprint: str, layers: str):
        ident = f"{encoder_id}|{fingerprint}|{layers}"
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", encoder_id)[-48:]
        self.dir = Path(root) / f"{slug}-{hashlib.sha256(ident.encode()).hexdigest()[:12]}"
        make_cache_folder(self.dir)
        meta = self.dir / "meta.json"
        if not meta.exists():
            atomic_write_bytes(meta, json.dumps({"encoder_id": encoder_id, "fingerprint": fingerprint,
                                                 "layers": layers}, indent=2).encode())
        self._index: dict[str, Path] = {}
        self.refresh()

    def refresh(self) -> None:
        """Re-read which keys the complete shards hold."""
        self._index = {}
        for shard in sorted(self.dir.glob("shard-*.safetensors")):
            with safe_open(str(shard), framework="numpy") as handle:
                for key in handle.keys():
                    self._index[key] = shard

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def __len__(self) -> int:
        return len(self._index)

    def location(self, key: str) -> Path:
        """The shard holding ``key`` (raises KeyError naming the cache when none does)."""
        if key not in self._index:
            raise KeyError(f"{key} not in feature cache {self.dir}")
        return self._index[key]

    def locate(self, keys: Iterable[str]) -> list[tuple[str, str]]:
        """``(shard file, key)`` of each key, in order, marking the shards as used now: a shard's modification
        time is when a run last wrote or read it, which is what ``mmser cache prune`` goes by."""
        located = [(str(self.location(k)), k) for k in keys]
        now = time.time()
        for shard in {shard for shard, _ in located}:
            try:
                os.utime(shard, (now, now))
            except OSError:  # a read-only shared cache: nobody prunes it from here
                pass
        return located

    def missing(self, keys: Iterable[str]) -> list[str]:
        return [k for k in dict.fromkeys(keys) if k not in self._index]

    def get_many(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """Load ``keys`` (each ``(L, T, D)`` float16), reading each shard once."""
        by_shard: dict[Path, list[str]] = {}
        for key in dict.fromkeys(keys):
            if key not in self._index:
                raise KeyError(f"{key} not in feature cache {self.dir}")
            by_shard.setdefault(self._index[key], []).append(key)
        out = {}
        for shard, shard_keys in by_shard.items():
            with safe_open(str(shard), framework="numpy") as handle:
                for key in shard_keys:
                    out[key] = handle.get_tensor(key)
        return out

    def write_shard(self, items: dict[str, np.ndarray]) -> Path | None:
        """Store ``items`` as one new shard (fp16), atomically; returns its path."""
        if not items:
            return None
        tensors = {k: np.ascontiguousarray(v, dtype=np.float16) for k, v in items.items()}
        path = self.dir / f"shard-{time.time_ns()}-{os.getpid()}.safetensors"
        try:
            atomic_write_bytes(path, save_safetensors(tensors))
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise
            raise CacheSpaceError(f"{self.dir}: the disk is full ({len(self)} items cached here are kept; free "
                                  f"space ({PRUNE_HINT}) or set features.cache_dir to a larger disk, then run "
                                  "again)") from err
        for key in tensors:
            self._index[key] = path
        return path


class ShardWriter:
    """Collects items and writes a shard every ``shard_size``; ``close()`` (or leaving a ``with``) flushes.

    With ``expected`` (the number of items the run will add), each full shard also checks that the disk can hold
    the rest at the bytes per item written so far, and stops the run with :class:`CacheSpaceError` when it cannot
    (the shards written are kept): a long encoding fails at its first shard rather than at a full disk."""

    def __init__(self, cache: FeatureCache, shard_size: int = 256, expected: int | None = None):
        self.cache, self.shard_size, self.pending, self.expected = cache, shard_size, {}, expected
        self.written_items, self.written_bytes = 0, 0

    def add(self, key: str, value: np.ndarray) -> None:
        self.pending[key] = np.ascontiguousarray(value, dtype=np.float16)  # held as stored: half of float32
        if len(self.pending) >= self.shard_size:
            self.flush()
            self.check_space()

    def flush(self) -> None:
        path = self.cache.write_shard(self.pending)
        if path is not None:
            self.written_items += len(self.pending)
            self.written_bytes += path.stat().st_size
        self.pending = {}

    def check_space(self) -> None:
        """Raise :class:`CacheSpaceError` when the items still expected, at the bytes per item written so far,
        would not fit on the cache's disk."""
        if self.expected is None or not self.written_items:
            return
        remaining = self.expected - self.written_items - len(self.pending)
        per_item = self.written_bytes / self.written_items
        free = shutil.disk_usage(self.cache.dir).free
        if remaining * per_item > free:
            raise CacheSpaceError(
                f"{self.cache.dir}: the {remaining} items still to encode need about "
                f"{remaining * per_item / GIGABYTE:.1f} GB ({per_item / (1 << 20):.2f} MB each so far) and the disk "
                f"has {free / GIGABYTE:.1f} GB free; the {self.written_items} items encoded in this run are kept. Free "
                f"space ({PRUNE_HINT}) or set features.cache_dir to a larger disk, then run again: it goes on from "
                "them")

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, *exc) -> None:
        # keep what was computed even when the run stops on an error (not on SIGKILL: then only full shards stay)
        self.flush()
