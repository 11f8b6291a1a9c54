"""``mmser ablate``: audio-only, text-only, concat and cross-attention fusion x each transcript source.

Features are loaded once and shared by every cell; each cell is a resumable ``run_cv`` in its own
folder (``audio_only``, ``<kind>__<text source>``); the table is then rebuilt from the stored predictions.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from mmser.evaluation.crossval import load_protocol_manifest, run_cv
from mmser.evaluation.features import load_bank
from mmser.evaluation.tables import write_tables
from mmser.models.builders import MODEL_KINDS


def cell_name(kind: str, text_source: str | None) -> str:
    return kind if text_source is None else f"{kind}__{text_source}"


def run_ablation(cfg: DictConfig, out_dir: str | Path, progress: bool = True) -> pd.DataFrame:
    out_dir = Path(out_dir)
    kinds = list(cfg.ablation)
    unknown = set(kinds) - set(MODEL_KINDS)
    if unknown:
        raise ValueError(f"ablation: unknown model kind(s) {sorted(unknown)}; use {MODEL_KINDS}")
    if "audio_only" in kinds:  # fused models may start from it: run it first
        kinds = ["audio_only"] + [k for k in kinds if k != "audio_only"]
    sources = list(cfg.text_sources)
    df = load_protocol_manifest(cfg)
    audio_specs = list(cfg.features.audio_encoders) if any(k != "text_only" for k in kinds) else []
    text_sources = sources if any(k != "audio_only" for k in kinds) else []
    bank = load_bank(df, cfg.features, audio_specs, text_sources, progress)
    audio_dir = out_dir / "audio_only"
    for kind in kinds:
        cell_cfg = copy.deepcopy(cfg)
        cell_cfg.model.kind = kind
        for source in ([None] if kind == "audio_only" else sources):
            name = cell_name(kind, source)
            print(f"\n[{name}]", flush=True)
            run_cv(cell_cfg, out_dir / name, text_source=source, bank=bank, df=df,
                   audio_init_dir=audio_dir if cfg.model.init_from_audio_only else None, progress=progress)
    return write_tables(out_dir)
