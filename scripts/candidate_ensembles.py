"""Would averaging selection candidates help? Read on validation actors only.

    python scripts/candidate_ensembles.py results/ravdess/select

For each fold, the candidates under the selection folder are ranked by their mean validation UA on the
*other* folds. The validation probabilities of the top n are averaged and scored on this fold's validation
actors. Prints the mean over folds for each n (n = 1: the single best candidate). Test predictions are never read.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mmser.evaluation.crossval import PROB_COLUMNS
from mmser.evaluation.selection import SELECTED, fold_metrics
from mmser.evaluation.tables import run_classes
from mmser.labels import EMOTIONS
from mmser.training.metrics import classification_metrics


def main(root: Path) -> None:
    runs = sorted(p for p in root.iterdir() if p.is_dir() and p.name != SELECTED and list(p.glob("*/val_predictions.csv")))
    val = {run.name: {fold: m["val_UA"] for fold, m in fold_metrics(run).items()} for run in runs}
    folds = sorted(val[runs[0].name])
    scores: dict[int, list[float]] = {n: [] for n in range(1, len(runs) + 1)}
    for fold in folds:
        rank = sorted(runs, key=lambda r: -np.mean([val[r.name][f] for f in folds if f != fold]))
        tables = [pd.read_csv(run / fold / "val_predictions.csv").set_index("utt_id").sort_index() for run in rank]
        for n in scores:
            probs = np.mean([t[PROB_COLUMNS].values for t in tables[:n]], axis=0)  # (N, 8)
            pred = np.array(EMOTIONS)[probs.argmax(axis=1)]
            scores[n].append(classification_metrics(tables[0]["true"].values, pred, run_classes(runs[0]))["UA"])
    print(json.dumps({"candidates": [r.name for r in runs], "folds": folds,
                      "validation UA of the top-n average": {n: round(100 * float(np.mean(s)), 1) for n, s in scores.items()}},
                     indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
