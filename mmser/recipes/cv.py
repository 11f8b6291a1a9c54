"""``mmser cv``: cross-validate one model (``cfg.model``) over the configured speaker-independent folds."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from omegaconf import DictConfig

from mmser.data.protocol import Protocol, load_protocol
from mmser.evaluation.crossval import folds_done, run_cv
from mmser.features.store import FeatureStore, store_for


def cv_inputs(cfg: DictConfig, progress: bool = True,
              runs: Sequence[str | Path] = ()) -> tuple[Protocol, FeatureStore | None]:
    """The protocol and feature store that cross-validating ``cfg.model`` reads (features encoded or loaded once,
    however many runs share them). ``runs``: the run folders they are for; when every fold of each is done
    already, no features are encoded or loaded (the store is None)."""
    kind = cfg.model.kind
    text_sources = [] if kind == "audio_only" else [cfg.data.text_source]
    protocol = load_protocol(cfg.data, text_sources)
    if runs and all(folds_done(cfg, protocol, run) for run in runs):
        return protocol, None
    return protocol, store_for(protocol.rows, cfg, [kind], text_sources, progress)


def cross_validate(cfg: DictConfig, out_dir: str | Path, progress: bool = True, blind: bool = False) -> dict:
    """Every fold of ``cfg``'s protocol for ``cfg.model``; returns the summary (UA/WA over folds).
    ``blind``: progress lines show validation UA only (see :func:`~mmser.evaluation.crossval.run_cv`)."""
    protocol, store = cv_inputs(cfg, progress, [out_dir])
    return run_cv(cfg, protocol, store, out_dir, blind=blind)
