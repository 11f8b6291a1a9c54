"""How much memory this process may still take: for caps that should grow with the machine (no heavy imports:
used on the predict path)."""

from __future__ import annotations

import os
from pathlib import Path

# cgroup files that bound a container's memory: (limit, usage), v2 then v1; "max" or a huge number means none
CGROUP_FILES = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"))
NO_LIMIT = 2**60  # bytes, v1 writes "no limit" as a number near 2^63


def available_bytes() -> int | None:
    """Bytes of memory available now: the kernel's estimate (``MemAvailable`` in /proc/meminfo, else free
    pages), lowered to what the container's cgroup limit leaves; ``None`` where neither can be read."""
    system = _meminfo_available()
    if system is None:
        system = _free_pages()
    found = [b for b in (system, *map(_cgroup_room, CGROUP_FILES)) if b is not None]
    return min(found) if found else None


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _free_pages() -> int | None:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on this system
        return None


def _cgroup_room(files: tuple[str, str]) -> int | None:
    try:
        limit, usage = (Path(f).read_text().strip() for f in files)
        if limit == "max" or int(limit) >= NO_LIMIT:
            return None
        return max(int(limit) - int(usage), 0)
    except (OSError, ValueError):
        return None
