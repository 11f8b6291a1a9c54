"""What the feature cache holds, and removing what no run has used lately (``mmser cache``).

The cache only grows: every encoder, layer selection and augmented variant adds shards, and a corpus of 100k
clips under a large encoder fills a disk (about 4 MB per second of audio for Whisper large-v3 with every layer).
A shard's modification time is when a run last wrote or read it (:meth:`FeatureCache.locate` marks the shards
each run reads), so pruning is least-recently-used at shard granularity: a removed item is encoded again by the
next run that needs it, nothing else is lost. Shards used within ``keep_hours`` are never removed, so a run in
progress keeps what it reads.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from safetensors import safe_open

from mmser.errors import MmserError
from mmser.features.cache import GIGABYTE

HOUR = 3600.0  # seconds
DAY = 24 * HOUR


@dataclass(frozen=True)
class Shard:
    path: Path
    bytes: int
    items: int
    last_used: float  # seconds since the epoch


@dataclass(frozen=True)
class CacheFolder:
    """One encoder's cache folder: its identity (meta.json) and its shards."""

    path: Path
    encoder_id: str
    layers: str
    fingerprint: str
    shards: tuple[Shard, ...]

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.shards)

    @property
    def items(self) -> int:
        return sum(s.items for s in self.shards)

    @property
    def last_used(self) -> float | None:
        return max((s.last_used for s in self.shards), default=None)


def scan(root: str | Path) -> list[CacheFolder]:
    """Every cache folder under ``root`` (raises MmserError when ``root`` is not a folder)."""
    root = Path(root)
    if not root.is_dir():
        raise MmserError(f"{root}: no feature cache folder here (features.cache_dir)")
    folders = []
    for meta_path in sorted(root.glob("*/meta.json")):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as err:
            raise MmserError(f"{meta_path}: unreadable cache meta.json ({err})") from err
        shards = []
        for path in sorted(meta_path.parent.glob("shard-*.safetensors")):
            stat = path.stat()
            with safe_open(str(path), framework="numpy") as handle:  # reads the header only
                items = len(list(handle.keys()))
            shards.append(Shard(path, stat.st_size, items, stat.st_mtime))
        folders.append(CacheFolder(meta_path.parent, str(meta.get("encoder_id", "?")), str(meta.get("layers", "?")),
                                   str(meta.get("fingerprint", "?")), tuple(shards)))
    return folders


def prune_plan(folders: list[CacheFolder], unused_days: float | None = None, max_gb: float | None = None,
               keep_hours: float = 24.0, now: float | None = None) -> list[Shard]:
    """The shards to remove: those no run has used for ``unused_days``, then the least recently used until the
    cache holds at most ``max_gb`` GB (2^30 bytes, as ``features.memory_budget_gb``); never one used within
    ``keep_hours``."""
    if unused_days is None and max_gb is None:
        raise MmserError("mmser cache prune: give --unused-days DAYS, --max-gb GB or both")
    for name, value in (("--unused-days", unused_days), ("--max-gb", max_gb), ("--keep-hours", keep_hours)):
        if value is not None and not value >= 0:
            raise MmserError(f"mmser cache prune: {name} must be >= 0, got {value}")
    now = time.time() if now is None else now
    removable = sorted((s for f in folders for s in f.shards if s.last_used < now - keep_hours * HOUR),
                       key=lambda s: s.last_used)  # least recently used first
    chosen = [s for s in removable if unused_days is not None and s.last_used < now - unused_days * DAY]
    if max_gb is not None:
        left = sum(f.bytes for f in folders) - sum(s.bytes for s in chosen)
        for shard in removable:
            if left <= max_gb * GIGABYTE:
                break
            if shard not in chosen:
                chosen.append(shard)
                left -= shard.bytes
    return chosen


def remove(shards: list[Shard]) -> int:
    """Delete ``shards``, and the folders they leave without a shard; returns the bytes freed."""
    freed = 0
    for shard in shards:
        shard.path.unlink(missing_ok=True)
        freed += shard.bytes
    for folder in {s.path.parent for s in shards}:
        # nothing left in it, and nothing being written into it
        if folder.is_dir() and [p.name for p in folder.iterdir()] == ["meta.json"]:
            (folder / "meta.json").unlink()
            folder.rmdir()
    return freed


def describe(folders: list[CacheFolder], now: float | None = None) -> str:
    """One line per cache folder: encoder, layers, items, size, last use; then the total."""
    now = time.time() if now is None else now
    lines = [f"{'folder':<44} {'encoder':<28} {'layers':<8} {'items':>8} {'GB':>8}  last used"]
    for f in folders:
        used = "never" if f.last_used is None else f"{(now - f.last_used) / DAY:.1f} days ago"
        lines.append(f"{f.path.name:<44} {f.encoder_id:<28} {f.layers:<8} {f.items:>8} "
                     f"{f.bytes / GIGABYTE:>8.2f}  {used}")
    lines.append(f"{len(folders)} folder(s), {sum(f.items for f in folders)} items, "
                 f"{sum(f.bytes for f in folders) / GIGABYTE:.2f} GB")
    return "\n".join(lines)
