"""Printing and storing a benchmark's figures (shared by the scripts in bench/)."""

from __future__ import annotations

import json
from pathlib import Path


def report(figures: dict, json_path: str | None) -> None:
    """Print ``figures`` one per line, aligned, and write them as JSON to ``json_path`` when given."""
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:>{width}}: {value}")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(figures, indent=2) + "\n")
