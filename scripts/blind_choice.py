"""The recommended recipe's rule, each fold blind to its own test speakers, over a selection folder's candidates
and further runs on the same folds (e.g. the average of its finalists, from `mmser average`).

    python scripts/blind_choice.py results/ravdess/select_enrol_groups2 --with average --val-groups 2

The candidates are those of the folder's selection.csv, then the ``--with`` runs (listed last: a tie keeps the
earlier one). For each fold, the run with the best validation UA over every fold and group, that fold's test
speakers left out of each validation set (:func:`mmser.evaluation.selection.select_blind`), is chosen; printed:
the choice per fold and the test UA of the chosen runs' predictions (mean over folds), read after the choice.
Nothing is written below the selection folder.
"""

import argparse
import json
import tempfile
from pathlib import Path

import pandas as pd

from mmser.evaluation.selection import SELECTED_BLIND, select_blind
from mmser.evaluation.tables import run_row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a selection folder (mmser select --out)")
    parser.add_argument("--with", dest="extra", nargs="*", default=[], help="more runs under ROOT, by folder name")
    parser.add_argument("--val-groups", type=int, default=1, help="as given to mmser select")
    args = parser.parse_args()
    names = [r for r in pd.read_csv(args.root / "selection.csv")["recipe"] if not r.endswith("(nested)")]
    candidates = {name: args.root / name for name in [*names, *args.extra]}
    with tempfile.TemporaryDirectory() as tmp:
        select_blind(candidates, Path(tmp), args.val_groups)
        for record in sorted((Path(tmp) / SELECTED_BLIND).glob("*/selection.json")):
            print(f"{record.parent.name}: {json.loads(record.read_text())['chosen']}")
        ua = run_row(Path(tmp) / SELECTED_BLIND, Path(tmp))["UA_mean"]
    print(f"test UA of the choices (mean over folds): {100 * ua:.1f} %")


if __name__ == "__main__":
    main()
