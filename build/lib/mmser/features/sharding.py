"""Splitting one corpus's extraction or transcription across N processes, GPUs or machines.

Shard ``I/N`` takes the items whose content key falls in residue ``I`` modulo ``N``: every item belongs to
exactly one shard, whatever order rows come in, and the shards need no coordination. Extraction writes
into the one content-keyed cache (shards appear by atomic rename, named by time and process); transcription
journals per shard, and a run without ``--shard`` merges the journals into the manifest's column.
"""

from __future__ import annotations

import os
import re

from mmser.errors import MmserError

# (rank, world size) variables of the launchers that set them, in order of preference
LAUNCHER_VARIABLES = (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS"), ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"))


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` (0 <= I < N), ``"env"`` (rank and world size from torchrun / SLURM / MPI variables) or None."""
    if text is None:
        return None
    if text == "env":
        for rank, world in LAUNCHER_VARIABLES:
            if rank in os.environ and world in os.environ:
                return parse_shard(f"{os.environ[rank]}/{os.environ[world]}")
        raise MmserError("--shard env: none of " + ", ".join(f"{r}/{w}" for r, w in LAUNCHER_VARIABLES) + " is set")
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match or not int(match[1]) < int(match[2]):
        raise MmserError(f"--shard {text!r}: use I/N with 0 <= I < N (e.g. 0/4), or env")
    return int(match[1]), int(match[2])


def in_shard(key: str, shard: tuple[int, int] | None) -> bool:
    """Whether the item with content key ``key`` (hex after a one-letter prefix) belongs to ``shard``."""
    if shard is None:
        return True
    index, count = shard
    return int(key[1:17], 16) % count == index
