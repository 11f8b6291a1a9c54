"""``mmser ablate``: audio-only, text-only, concat and cross-attention fusion x each transcript source.

Features are loaded once and shared by every cell; each cell is a resumable cross-validation in its own
folder (``audio_only``, ``<kind>__<text source>``) with its kind's ``ablation_overrides`` applied; the
table is then rebuilt from the stored predictions.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from mmser.config import cell_config
from mmser.data.protocol import load_protocol
from mmser.distributed import is_main, say
from mmser.evaluation.crossval import run_cv
from mmser.evaluation.tables import write_tables
from mmser.features.store import store_for


def cell_name(kind: str, text_source: str | None) -> str:
    return kind if text_source is None else f"{kind}__{text_source}"


def run_ablation(cfg: DictConfig, out_dir: str | Path, progress: bool = True) -> pd.DataFrame:
    """Every (model kind, transcript source) cell of ``cfg.ablation`` x ``cfg.text_sources``; returns the table."""
    out_dir = Path(out_dir)
    kinds = list(cfg.ablation)
    if "audio_only" in kinds:  # fused models may start from it: run it first
        kinds = ["audio_only"] + [k for k in kinds if k != "audio_only"]
    sources = list(cfg.text_sources)
    protocol = load_protocol(cfg.data, sources if any(k != "audio_only" for k in kinds) else [])
    store = store_for(protocol.rows, cfg, kinds, sources, progress)
    audio_dir = out_dir / "audio_only"
    for kind in kinds:
        cell_cfg = cell_config(cfg, kind)
        for source in ([None] if kind == "audio_only" else sources):
            name = cell_name(kind, source)
            say(f"\n[{name}]", flush=True)
            run_cv(cell_cfg, protocol, store, out_dir / name, text_source=source,
                   audio_init_dir=audio_dir if cfg.model.init_from_audio_only else None)
    return write_tables(out_dir) if is_main() else pd.DataFrame()  # the other ranks of a DDP run write nothing
