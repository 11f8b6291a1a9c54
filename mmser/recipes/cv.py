"""``mmser cv``: cross-validate one model (``cfg.model``) over the configured speaker-independent folds."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from omegaconf import DictConfig

from mmser.data.protocol import Protocol, load_protocol, make_folds
from mmser.data.splits import validation_group
from mmser.distributed import say
from mmser.errors import MmserError
from mmser.evaluation.crossval import folds_done, run_cv
from mmser.evaluation.selection import group_run
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


def check_validation_groups(cfg: DictConfig, val_groups: int, protocol: Protocol | None = None) -> None:
    """Refuse, before any training, ``val_groups`` validation groups per fold that ``cfg``'s folds cannot hold:
    each group is another disjoint set of ``split.val_speakers`` speakers from the fold's training side.
    ``protocol``: ``cfg``'s, when the caller has read it already."""
    if val_groups < 1:
        raise MmserError(f"--val-groups {val_groups}: use 1 (each fold's own validation speakers) or more")
    if val_groups > 1:
        protocol = protocol or load_protocol(cfg.data)
        for fold in make_folds(protocol, cfg.split):
            validation_group(protocol.rows, fold, val_groups - 1, cfg.split.seed)


def cross_validate_groups(cfg: DictConfig, run: Path, val_groups: int, progress: bool = True, blind: bool = False,
                          heading: str = "cross-validation (folds done earlier are kept)") -> list[Path]:
    """Cross-validate ``cfg`` once per validation group, group g into :func:`~mmser.evaluation.selection.group_run`
    (``run`` itself for group 0), resuming each; features are encoded or loaded once for all groups. Returns the
    group runs."""
    runs = [group_run(run, group) for group in range(val_groups)]
    protocol, store = cv_inputs(cfg, progress, runs)
    for group, group_dir in enumerate(runs):
        say(f"\n[{run.name}{'' if group == 0 else f', validation group {group}'}] {heading}", flush=True)
        run_cv(cfg, protocol, store, group_dir, blind=blind, val_group=group)
    return runs


def cross_validate(cfg: DictConfig, out_dir: str | Path, progress: bool = True, blind: bool = False) -> dict:
    """Every fold of ``cfg``'s protocol for ``cfg.model``; returns the summary (UA/WA over folds).
    ``blind``: progress lines show validation UA only (see :func:`~mmser.evaluation.crossval.run_cv`)."""
    protocol, store = cv_inputs(cfg, progress, [out_dir])
    return run_cv(cfg, protocol, store, out_dir, blind=blind)
