"""``mmser curve``: UA against training examples per class (a data-efficiency curve), from stored predictions."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from mmser.data.manifest import atomic_write_bytes
from mmser.data.protocol import load_protocol
from mmser.distributed import is_main, say
from mmser.evaluation.crossval import run_cv
from mmser.evaluation.plots import plot_curve
from mmser.evaluation.tables import run_row
from mmser.features.store import store_for


def run_curve(cfg: DictConfig, out_dir: str | Path, per_class: list[int], progress: bool = True) -> pd.DataFrame:
    """Cross-validate ``cfg.model`` with at most N training examples per class, for each N (and all)."""
    out_dir = Path(out_dir)
    kind = cfg.model.kind
    text_sources = [] if kind == "audio_only" else [cfg.data.text_source]
    protocol = load_protocol(cfg.data, text_sources)
    store = store_for(protocol.rows, cfg, [kind], text_sources, progress)
    rows = []
    for n in sorted(per_class) + [None]:
        point = copy.deepcopy(cfg)
        point.train.max_per_class = n
        name = f"per_class_{n}" if n else "per_class_all"
        say(f"\n[{name}]", flush=True)
        run_cv(point, protocol, store, out_dir / name)
        if not is_main():  # the other ranks of a DDP run write and read nothing
            continue
        row = run_row(out_dir / name, out_dir)
        rows.append({"per_class": n if n else int(protocol.rows["label"].value_counts().max()), "label": name,
                     "UA_mean": row["UA_mean"], "UA_std": row["UA_std"]})
    table = pd.DataFrame(rows)
    if not is_main():
        return table
    atomic_write_bytes(out_dir / "curve.csv", table.to_csv(index=False, float_format="%.4f").encode())
    plot_curve(table, out_dir / "curve.png", f"{cfg.data.name}: {kind}")
    return table
