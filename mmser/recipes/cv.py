"""``mmser cv``: cross-validate one model (``cfg.model``) over the configured speaker-independent folds."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from mmser.data.protocol import load_protocol
from mmser.evaluation.crossval import run_cv
from mmser.features.store import store_for


def cross_validate(cfg: DictConfig, out_dir: str | Path, progress: bool = True, blind: bool = False,
                   val_group: int = 0) -> dict:
    """Every fold of ``cfg``'s protocol for ``cfg.model``; returns the summary (UA/WA over folds).
    ``blind``, ``val_group``: see :func:`~mmser.evaluation.crossval.run_cv`."""
    kind = cfg.model.kind
    text_sources = [] if kind == "audio_only" else [cfg.data.text_source]
    protocol = load_protocol(cfg.data, text_sources)
    store = store_for(protocol.rows, cfg, [kind], text_sources, progress)
    return run_cv(cfg, protocol, store, out_dir, blind=blind, val_group=val_group)
