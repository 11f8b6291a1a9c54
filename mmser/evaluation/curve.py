"""``mmser curve``: UA against training examples per class (a data-efficiency curve), from stored predictions."""

from __future__ import annotations

import copy
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from mmser.data.manifest import atomic_write_bytes  # noqa: E402
from mmser.evaluation.crossval import load_protocol_manifest, run_cv  # noqa: E402
from mmser.evaluation.features import load_bank  # noqa: E402
from mmser.evaluation.tables import run_row  # noqa: E402


def run_curve(cfg: DictConfig, out_dir: str | Path, per_class: list[int], progress: bool = True) -> pd.DataFrame:
    """Cross-validate ``cfg.model`` with at most N training examples per class, for each N (and all)."""
    out_dir = Path(out_dir)
    df = load_protocol_manifest(cfg)
    kind = cfg.model.kind
    text_source = cfg.data.text_source if kind != "audio_only" else None
    bank = load_bank(df, cfg.features, list(cfg.features.audio_encoders) if kind != "text_only" else [],
                     [text_source] if text_source else [], progress)
    rows = []
    for n in sorted(per_class) + [None]:
        point = copy.deepcopy(cfg)
        point.train.max_per_class = n
        name = f"per_class_{n}" if n else "per_class_all"
        print(f"\n[{name}]", flush=True)
        run_cv(point, out_dir / name, text_source=text_source, bank=bank, df=df, progress=progress)
        row = run_row(out_dir / name, out_dir)
        rows.append({"per_class": n if n else int(df["label"].value_counts().max()), "label": name,
                     "UA_mean": row["UA_mean"], "UA_std": row["UA_std"]})
    table = pd.DataFrame(rows)
    atomic_write_bytes(out_dir / "curve.csv", table.to_csv(index=False, float_format="%.4f").encode())
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.errorbar(table["per_class"], 100 * table["UA_mean"], yerr=100 * table["UA_std"], marker="o", capsize=3)
    ax.set_xscale("log")
    ax.set(xlabel="training examples per class", ylabel="UA (%) over folds", title=f"{cfg.data.name}: {kind}")
    fig.tight_layout()
    fig.savefig(out_dir / "curve.png", dpi=110)
    plt.close(fig)
    return table
