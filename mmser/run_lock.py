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

LOCK_NAME = ".mmser.lock"


@contextmanager
def writing(folder: str | Path) -> Iterator[None]:
    """Hold ``folder``'s writer lock for the block (creating the folder); raise MmserError when another process
    holds it. A no-op where ``fcntl`` does not exist (not Linux or macOS) and on ranks other than the main one."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    if not is_main():
        yield
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_NAME, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "a process that has not said which"
            raise MmserError(f"{folder}: another mmser command is writing this folder ({holder}); wait for it to "
                             "finish (a re-run then resumes where it stopped), or give another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}: {' '.join(sys.argv)}\n")
        handle.flush()
        yield  # the lock goes with the handle
