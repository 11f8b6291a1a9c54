"""``mmser table``: rebuild ``results.csv`` / ``results.md`` (and plots) from stored per-utterance predictions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mmser.evaluation.tables import write_tables


def rebuild_tables(results_dir: str | Path, plots: bool = True) -> pd.DataFrame:
    """Every run below ``results_dir`` -> its row; writes the tables beside them and returns the table."""
    return write_tables(results_dir, plots=plots)
