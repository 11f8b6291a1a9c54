"""How UA grows with the clips a speaker has said before, under running speaker statistics.

    python scripts/running_by_position.py RUN --manifest runs/ravdess/manifest.csv [--compare OTHER_RUN ...]

RUN is a cross-validation folder of a ``features.speaker_norm.mode: running`` recipe. Each test clip's
arrival position (1 = its speaker's first clip) is recomputed from the manifest the run was made on
(``mmser.features.speaker_norm.arrival_order``, seed 0, as training and cross-validation drew it). The
stored test predictions of RUN, and of each OTHER_RUN on the same clips, are scored per group of positions
(UA pooled over the folds' test actors). Reads stored predictions only.
"""

import argparse
import json
from pathlib import Path

import pandas as pd

from mmser.data.manifest import read_manifest
from mmser.features.speaker_norm import arrival_order
from mmser.training.metrics import unweighted_accuracy

GROUPS = [(1, 1), (2, 5), (6, 10), (11, 30), (31, 10**9)]  # arrival positions, inclusive


def positions(manifest: Path) -> pd.Series:
    """utt_id -> its arrival position among its speaker's clips (1-based)."""
    rows = read_manifest(manifest)
    order = arrival_order(rows["speaker"].astype(str).tolist())
    ids = rows["utt_id"].tolist()
    return pd.Series({ids[i]: k + 1 for rows_of in order.values() for k, i in enumerate(rows_of)})


def test_predictions(run: Path) -> pd.DataFrame:
    return pd.concat([pd.read_csv(p, dtype={"utt_id": str}) for p in sorted(run.glob("fold*/predictions.csv"))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--compare", type=Path, nargs="*", default=[])
    args = parser.parse_args()
    position = positions(args.manifest)
    out = {}
    for run in [args.run, *args.compare]:
        pred = test_predictions(run)
        pred["position"] = pred["utt_id"].map(position)
        if pred["position"].isna().any():
            raise SystemExit(f"{run}: {int(pred['position'].isna().sum())} test clips are not in {args.manifest}")
        out[run.name] = {}
        for low, high in GROUPS:
            part = pred[(pred["position"] >= low) & (pred["position"] <= high)]
            name = f"{low}" if low == high else (f"{low}-{high}" if high < 10**9 else f">={low}")
            out[run.name][name] = {"clips": len(part), "UA": round(100 * unweighted_accuracy(part["true"], part["pred"]), 1)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
