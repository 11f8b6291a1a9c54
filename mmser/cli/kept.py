"""Predictions kept as they finish, so a stopped ``mmser evaluate`` or ``mmser predict --out`` resumes.

The clips are split into units: whole speakers where a clip's prediction depends on its speaker's other clips
(enrolment or running statistics), else runs of :data:`UNIT_CLIPS` clips. Each unit's rows go to
``<partial>/<key>.json`` as soon as its last clip is predicted; ``key`` (:func:`unit_key`) is the SHA-256 of
everything those predictions depend on, so a unit whose file is there is read instead of predicted, and a unit
whose audio, transcript or checkpoint changed is predicted again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Callable

from mmser.atomic import atomic_write_bytes

UNIT_CLIPS = 256  # clips of a unit where each clip is predicted on its own: the most a stopped run predicts again

Clip = tuple[str, "str | None", "str | None"]  # path, transcript or None, speaker or None


def file_identity(path: str) -> tuple:
    """What says a file is unchanged without reading it: ``(path, size, modification time in ns)``; sizes of
    None for a path that is not a file (its prediction is an error, kept as such until the file appears)."""
    stat = os.stat(path) if os.path.isfile(path) else None
    return path, stat and stat.st_size, stat and stat.st_mtime_ns


def unit_key(run_key: str, clips: list[Clip]) -> str:
    """Hex SHA-256 of ``run_key`` (the checkpoints' bytes and the prediction settings) and each of ``clips`` in
    order: its file's identity (:func:`file_identity`), transcript and speaker."""
    digest = hashlib.sha256(run_key.encode())
    for path, text, who in clips:
        digest.update(repr((file_identity(path), text, who)).encode())
    return digest.hexdigest()


def result_row(path: str, result) -> dict:
    """The output row of one clip: ``{"path", **Prediction.to_dict()}``, or ``{"path", "error"}`` for a failure."""
    return {"path": path, "error": str(result)} if isinstance(result, Exception) else {"path": path, **result.to_dict()}


def consecutive_units(n: int) -> list[list[int]]:
    """``range(n)`` in runs of :data:`UNIT_CLIPS`."""
    return [list(range(start, min(start + UNIT_CLIPS, n))) for start in range(0, n, UNIT_CLIPS)]


def read_kept(stored: Path, n: int) -> list[dict] | None:
    """The ``n`` rows kept in ``stored``; None when it is absent or does not hold ``n`` rows (then predicted again)."""
    try:
        rows = json.loads(stored.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    ok = isinstance(rows, list) and len(rows) == n and all(isinstance(r, dict) and "path" in r for r in rows)
    return rows if ok else None


PredictPending = Callable[[list[Clip], Callable[[list[int], list], None]], None]


def kept_rows(clips: list[Clip], units: list[list[int]], run_key: str, partial: Path | None,
              predict: PredictPending, units_named: str = "groups of clips") -> list[dict]:
    """Each of ``clips``'s output row (:func:`result_row`), in input order.

    Units (lists of clip indices covering ``clips``) whose file is in ``partial`` are read from it; the others'
    clips, in input order, go to one call ``predict(pending, on_done)``, which calls ``on_done(positions,
    results)`` whenever clips of ``pending`` are finished (``results``: its list of predictions or errors, by
    position in ``pending``). A unit is written to ``partial`` when its last clip is finished. ``partial`` None:
    nothing is kept."""
    rows: list = [None] * len(clips)
    pending_units = []
    for unit in units:
        stored = partial / f"{unit_key(run_key, [clips[i] for i in unit])}.json" if partial is not None else None
        kept = read_kept(stored, len(unit)) if stored is not None else None
        if kept is not None:
            for i, row in zip(unit, kept):
                rows[i] = row
        else:
            pending_units.append((unit, stored))
    if len(pending_units) < len(units):
        print(f"note: {len(units) - len(pending_units)} of {len(units)} {units_named} kept from {partial} (an "
              "earlier run)", file=sys.stderr)
    pending = sorted(i for unit, _ in pending_units for i in unit)
    if not pending:
        return rows
    unit_of = {i: k for k, (unit, _) in enumerate(pending_units) for i in unit}
    left = [len(unit) for unit, _ in pending_units]

    def on_done(positions: list[int], results: list) -> None:
        for position in positions:
            i = pending[position]
            rows[i] = result_row(clips[i][0], results[position])
            k = unit_of[i]
            left[k] -= 1
            unit, stored = pending_units[k]
            if left[k] == 0 and stored is not None:
                atomic_write_bytes(stored, json.dumps([rows[j] for j in unit]).encode())

    predict([clips[i] for i in pending], on_done)
    return rows
