"""Would averaging selection candidates help? Read on validation actors only.

    python scripts/candidate_ensembles.py results/ravdess/select
    python scripts/candidate_ensembles.py results/ravdess/select_enrol_groups2 --val-groups 2

For each fold, the candidates under the selection folder are ranked by their mean validation UA on the
*other* folds (over every validation group). The validation probabilities of the top n are averaged and
scored on this fold's validation actors, group by group (a group's runs validate on that group's actors).
Prints the mean over folds and groups for each n (n = 1: the single best candidate). Test predictions are
never read.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from mmser.evaluation.average import AVERAGE_FILE
from mmser.evaluation.crossval import PROB_COLUMNS
from mmser.evaluation.selection import SELECTED, group_run, validation_ua
from mmser.evaluation.tables import run_classes
from mmser.labels import EMOTIONS
from mmser.training.metrics import classification_metrics


def top_n_validation_ua(root: Path, val_groups: int) -> dict:
    runs = {p.name: p for p in sorted(root.iterdir())  # the candidates: not the choice, nor an average of them
            if p.is_dir() and p.name != SELECTED and not (p / AVERAGE_FILE).is_file()
            and list(p.glob("*/val_predictions.csv"))}
    scores, _ = validation_ua(runs, val_groups)  # name -> fold -> [UA per group]; checks the folds match
    folds = sorted(next(iter(scores.values())))
    classes = run_classes(next(iter(runs.values())))
    top_n: dict[int, list[float]] = {n: [] for n in range(1, len(runs) + 1)}
    for fold in folds:
        rank = sorted(runs, key=lambda name: -np.mean([scores[name][f] for f in folds if f != fold]))
        for group in range(val_groups):
            tables = [pd.read_csv(group_run(runs[name], group) / fold / "val_predictions.csv")
                      .set_index("utt_id").sort_index() for name in rank]
            for n in top_n:
                probs = np.mean([t[PROB_COLUMNS].values for t in tables[:n]], axis=0)  # (N, 8)
                pred = np.array(EMOTIONS)[probs.argmax(axis=1)]
                top_n[n].append(classification_metrics(tables[0]["true"].values, pred, classes)["UA"])
    return {"candidates": list(runs), "folds": folds, "val_groups": val_groups,
            "validation UA of the top-n average": {n: round(100 * float(np.mean(s)), 1) for n, s in top_n.items()}}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="a selection folder (mmser select --out)")
    parser.add_argument("--val-groups", type=int, default=1, help="as given to mmser select")
    args = parser.parse_args()
    print(json.dumps(top_n_validation_ua(args.root, args.val_groups), indent=2))
