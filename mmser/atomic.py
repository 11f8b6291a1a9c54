"""Atomic file writes: readers never see half a file (no heavy imports: used on the predict path)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file + rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(path: str | Path) -> Path:
    """Raise MmserError, naming ``path``, when a file cannot be written there (a folder in its place, a file above
    it, no permission, a read-only or pseudo file system): checked before long work, whose result would
    otherwise be lost at the end. Creates the parent folders; returns ``path``."""
    from mmser.errors import MmserError

    if str(path).endswith(("/", os.sep)) or Path(path).is_dir():
        raise MmserError(f"{path}: a folder; give a file path (e.g. {Path(path) / 'model.safetensors'})")
    path = Path(path)
    reason = _unwritable(path.parent)
    if reason:
        raise MmserError(f"{path}: cannot write there ({reason}); choose another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def check_folder(path: str | Path) -> Path:
    """Raise MmserError, naming ``path``, when results cannot be written into it as a folder: a file in its place
    or above it, or the nearest folder that exists takes no new entry (permissions, a read-only or pseudo file
    system). Leaves nothing behind (a command refused later leaves no folder); returns ``path``."""
    from mmser.errors import MmserError

    path = Path(path)
    reason = _unwritable(path)
    if reason:
        raise MmserError(f"{path}: cannot write results there ({reason}); give a folder")
    return path


def _unwritable(folder: Path) -> str | None:
    """Why nothing can be written into ``folder`` (made as needed), or None: a file in its place or above it, or
    the nearest existing folder refusing a new entry (a probe folder made and removed at once)."""
    blocking = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        return f"{blocking} is a file, not a folder"
    nearest = next(p for p in (folder, *folder.parents) if p.exists())
    try:
        os.rmdir(tempfile.mkdtemp(dir=nearest, prefix=".mmser-probe."))
    except OSError as err:
        return f"{err.strerror or err} in {nearest}"
    return None
