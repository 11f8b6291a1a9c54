"""``mmser select``: cross-validate each candidate recipe (or resume it), choose per fold on validation
speakers only, and report the choice's test UA (nested) beside each candidate's."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from mmser.data.manifest import atomic_write_bytes
from mmser.errors import MmserError
from mmser.evaluation.selection import select_blind, select_per_fold, selection_markdown, selection_table
from mmser.recipes.cv import check_validation_groups, cross_validate_groups


def run_selection(configs: dict[str, DictConfig], out: str | Path, command: str = "mmser select",
                  progress: bool = True, val_groups: int = 1) -> pd.DataFrame:
    """``configs``: candidate name -> config (same data and folds). Writes ``out/<name>/`` per candidate (and,
    with ``val_groups`` > 1, ``out/<name>/val_group<g>/`` for the further validation groups), ``out/selected/``
    and ``out/selection.{md,csv}``; returns the table."""
    for name, cfg in configs.items():
        if cfg.split.val_speakers < 1:
            raise MmserError(f"{name}: split.val_speakers={cfg.split.val_speakers}: selection needs validation "
                             "speakers on the training side of every fold")
        check_validation_groups(cfg, val_groups)  # every group can be drawn: checked before any training
    out = Path(out)
    for name, cfg in configs.items():
        cross_validate_groups(cfg, out / name, val_groups, progress, blind=True,
                              heading="cross-validation (folds done earlier are kept; validation UA shown, test UA "
                                      "reported after the choice)")
    candidates = {name: out / name for name in configs}
    per_fold = select_per_fold(candidates, out, val_groups)
    select_blind(candidates, out, val_groups)
    table = selection_table(candidates, out, val_groups)
    atomic_write_bytes(out / "selection.csv", table.to_csv(index=False, float_format="%.4f").encode())
    atomic_write_bytes(out / "selection_per_fold.csv", per_fold.to_csv(index=False, float_format="%.4f").encode())
    atomic_write_bytes(out / "selection.md", selection_markdown(table, command, val_groups).encode())
    return table
