"""One writer per run folder: a second mmser command writing a folder that another one is still writing is
refused, naming the first (its process id and command line), instead of both training the same folds.

The lock is an advisory ``flock`` on ``<folder>/.mmser.lock``: the system releases it when its process ends,
however it ends, so a killed run never leaves the folder locked, and a re-run resumes as before. Only the main
process of a multi-process (DDP) run takes it; its other ranks write nothing.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from mmser.distributed import is_main
from mmser.errors import MmserError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: runs go unguarded
    fcntl = None

LOCK_NAME = ".mmser.lock"


@contextmanager
def writing(folder: str | Path) -> Iterator[None]:
    """Hold ``folder``'s writer lock for the block (creating the folder); raise MmserError when another process
    holds it. A no-op where ``fcntl`` does not exist (not Linux or macOS), on file systems without locks, and on
    ranks other than the main one."""
    if fcntl is None or not is_main():
        yield
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_NAME, "a+", encoding="utf-8") as handle:
        if _locked(handle, folder):
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}: {' '.join(sys.argv)}\n")
            handle.flush()
        yield  # the lock goes with the handle


def _locked(handle, folder: Path) -> bool:
    """Take ``handle``'s exclusive lock: True, or False on a file system without locks (some FUSE mounts: the
    run goes unguarded, as before locks). Raises MmserError, naming the holder, when another process has it."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "a process that has not said which"
        raise MmserError(f"{folder}: another mmser command is writing this folder ({holder}); wait for it to "
                         "finish (a re-run then resumes where it stopped), or give another --out") from None
    except OSError:
        return False
    return True
