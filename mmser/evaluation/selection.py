"""Recipe selection on validation speakers only (``mmser select``), and the honest estimate of it.

Each candidate recipe is a cross-validated run over the same folds. In every fold, the candidate whose
ensemble scores the best UA on that fold's *validation* speakers (drawn from the training side;
``metrics.json`` ``val_UA``, from ``val_predictions.csv``) is chosen, and its predictions of the fold's test
speakers become that fold's predictions of the ``selected`` run: test folds are read only after the choice,
to report it. The recipe to recommend is the one with the best validation UA over all folds. Since a speaker
tested in one fold is a validation speaker in others, that choice has seen every fold's test speakers a little;
``selected_blind`` scores the same rule applied per fold without that fold's test speakers (:func:`select_blind`).

A pair of validation speakers per fold separates recipes points apart, not tenths. With ``val_groups`` G > 1
(``mmser select --val-groups G``) each candidate is also cross-validated with G - 1 further disjoint groups of
validation speakers per fold (``<run>/val_group<g>/``, :func:`~mmser.data.splits.validation_group`), and a
fold's validation UA is the mean over its G groups; test predictions stay group 0's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from mmser.data.manifest import atomic_write_bytes
from mmser.errors import MmserError
from mmser.evaluation.tables import read_predictions, run_classes, run_row
from mmser.training.metrics import resampled_ua, unweighted_accuracy

SELECTED = "selected"
SELECTED_BLIND = "selected_blind"
BLIND_ROW = "the recommended recipe's rule, each fold blind to its test speakers (nested)"


def fold_metrics(run: Path) -> dict[str, dict]:
    """fold name -> its metrics.json, for every finished fold of ``run``."""
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(run.glob("*/metrics.json"))}


def group_run(run: Path, group: int) -> Path:
    """The folder of a candidate's run validating on group ``group``: ``run`` itself for group 0, else
    ``run/val_group<group>``."""
    return run if group == 0 else run / f"val_group{group}"


def validation_ua(candidates: dict[str, Path], val_groups: int = 1) -> tuple[dict, dict]:
    """Every candidate's validation UA per fold and group, checked to be comparable: the same folds, test
    speakers and, group by group, validation speakers for every candidate. Returns (name -> fold -> [UA of group
    0 .. val_groups-1], fold -> [metrics.json of group 0 .. val_groups-1] of the first candidate)."""
    metrics = {name: [fold_metrics(group_run(run, g)) for g in range(val_groups)] for name, run in candidates.items()}
    first_name = next(iter(metrics))
    folds = sorted(metrics[first_name][0])
    for name, groups in metrics.items():
        for g, per_fold in enumerate(groups):
            where = group_run(candidates[name], g)
            if sorted(per_fold) != folds:
                raise MmserError(f"{where}: folds {sorted(per_fold)} differ from the other candidates' {folds}"
                                 + (" (run `mmser select` with the same --val-groups)" if g else ""))
            for fold in folds:
                if "val_UA" not in per_fold[fold]:
                    raise MmserError(f"{where / fold / 'metrics.json'}: no validation UA (a run without "
                                     "validation speakers, or from before mmser stored it): run it again")
    reference = {fold: [metrics[first_name][g][fold] for g in range(val_groups)] for fold in folds}
    for fold in folds:
        for name in metrics:
            for g in range(val_groups):
                m, first = metrics[name][g][fold], reference[fold][g]
                if m["test_speakers"] != first["test_speakers"] or m["val_speakers"] != first["val_speakers"]:
                    raise MmserError(f"{group_run(candidates[name], g) / fold}: other test or validation speakers "
                                     "than the other candidates' (compare recipes on the same folds)")
    scores = {name: {fold: [float(metrics[name][g][fold]["val_UA"]) for g in range(val_groups)] for fold in folds}
              for name in metrics}
    return scores, reference


def select_per_fold(candidates: dict[str, Path], out: Path, val_groups: int = 1) -> pd.DataFrame:
    """Choose, fold by fold, the candidate with the best validation UA (mean over ``val_groups`` groups); write
    ``out/selected/<fold>/`` (the chosen candidate's test predictions and a ``selection.json`` with every
    candidate's validation UA). Returns one row per fold: each candidate's validation UA and the choice."""
    per_group, reference = validation_ua(candidates, val_groups)
    rows = []
    for fold, groups in reference.items():
        scores = {name: float(np.mean(per_group[name][fold])) for name in candidates}
        chosen = max(scores, key=lambda n: scores[n])  # ties: the first candidate given
        target = out / SELECTED / fold
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(candidates[chosen] / fold / "predictions.csv", target / "predictions.csv")
        record = {"fold": fold, "chosen": chosen, "val_UA": scores, "val_speakers": groups[0]["val_speakers"],
                  "test_speakers": groups[0]["test_speakers"]}
        if val_groups > 1:
            record["val_UA_by_group"] = {name: per_group[name][fold] for name in candidates}
            record["val_speakers_by_group"] = [m["val_speakers"] for m in groups]
        atomic_write_bytes(target / "selection.json", json.dumps(record, indent=2).encode())
        rows.append({"fold": fold, **{f"val_UA {n}": s for n, s in scores.items()}, "chosen": chosen})
    classes = run_classes(next(iter(candidates.values())))
    if classes:
        atomic_write_bytes(out / SELECTED / "config.yaml",
                           ("# classes of the candidates (the folds' chosen runs hold their own configs)\n"
                            f"data:\n  classes: {json.dumps(classes)}\n").encode())
    return pd.DataFrame(rows)


def validation_lead(candidates: dict[str, Path], leader: str, n_boot: int = 1000, seed: int = 0,
                    val_groups: int = 1) -> dict[str, float]:
    """How firmly the validation speakers put ``leader`` ahead of each other candidate: the fraction of
    ``n_boot`` paired resamples in which ``leader``'s validation UA (mean over folds and ``val_groups`` groups,
    what selection reads) is higher than the candidate's. A resample draws each fold's (and group's) validation
    utterances with replacement, the same draws for every candidate. Reads ``val_predictions.csv`` only, never a
    test fold. Utterances of one speaker are not independent, so the figure is an optimistic one: a candidate
    behind in 60 % of resamples is not separated from the leader. Returns candidate name -> fraction in [0, 1]
    (``leader`` left out)."""
    rng = np.random.default_rng(seed)
    names = list(candidates)
    sets = validation_tables(candidates, val_groups)
    mean_ua = {name: np.zeros(n_boot) for name in names}  # (B,) validation UA, mean over folds and groups
    for tables in sets.values():
        ref = tables[leader]
        idx = rng.integers(0, len(ref), (n_boot, len(ref)))  # (B, N_val) resampled utterances of this set
        uas = resampled_ua(ref["true"].to_numpy(), [tables[n]["pred"].to_numpy() for n in names], idx)
        for name, ua in zip(names, uas):
            mean_ua[name] += ua / len(sets)
    return {name: float(np.mean(mean_ua[leader] > mean_ua[name])) for name in names if name != leader}


def validation_tables(candidates: dict[str, Path],
                      val_groups: int = 1) -> dict[tuple[str, int], dict[str, pd.DataFrame]]:
    """(fold, group) -> candidate name -> its ``val_predictions.csv`` (rows in utterance order), checked to hold
    the same validation utterances and labels for every candidate."""
    first = next(iter(candidates))
    out = {}
    for fold in sorted(fold_metrics(candidates[first])):
        for group in range(val_groups):
            tables = {}
            for name, run in candidates.items():
                path = group_run(run, group) / fold / "val_predictions.csv"
                if not path.is_file():
                    raise MmserError(f"{path}: missing (the fold's validation predictions): run the candidate again")
                tables[name] = read_predictions(path).sort_values("utt_id", kind="stable").reset_index(drop=True)
            ref, ref_path = tables[first], group_run(candidates[first], group) / fold / "val_predictions.csv"
            for name, table in tables.items():
                if not (table["utt_id"].equals(ref["utt_id"]) and table["true"].equals(ref["true"])):
                    raise MmserError(f"{group_run(candidates[name], group) / fold / 'val_predictions.csv'}: other "
                                     f"validation utterances or labels than {ref_path}")
            out[(fold, group)] = tables
    return out


def select_blind(candidates: dict[str, Path], out: Path, val_groups: int = 1) -> pd.DataFrame:
    """The recommended recipe's rule (best validation UA, mean over every fold and group), applied once per fold
    with that fold's test speakers taken out of every other fold's validation speakers, so that no choice has
    seen the speakers it is then scored on. (A speaker held out for testing in one fold is a validation speaker
    in others: choosing once over all folds' validation speakers has seen every fold's test speakers a little,
    and the recommended recipe's test UA carries that.) Writes ``out/selected_blind/<fold>/`` (the chosen
    candidate's test predictions and a ``selection.json``); returns one row per fold."""
    _, reference = validation_ua(candidates, val_groups)
    sets = validation_tables(candidates, val_groups)
    rows = []
    for fold, groups in reference.items():
        test = set(groups[0]["test_speakers"])
        scores = {name: [] for name in candidates}
        for tables in sets.values():
            kept = ~tables[next(iter(candidates))]["speaker"].isin(test)  # the same rows for every candidate
            if kept.any():
                for name, table in tables.items():
                    scores[name].append(unweighted_accuracy(table["true"][kept], table["pred"][kept]))
        mean = {name: float(np.mean(uas)) for name, uas in scores.items()}
        chosen = max(mean, key=lambda n: mean[n])  # ties: the first candidate given
        target = out / SELECTED_BLIND / fold
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(candidates[chosen] / fold / "predictions.csv", target / "predictions.csv")
        record = {"fold": fold, "chosen": chosen, "val_UA_without_test_speakers": mean,
                  "test_speakers": groups[0]["test_speakers"]}
        atomic_write_bytes(target / "selection.json", json.dumps(record, indent=2).encode())
        rows.append({"fold": fold, "chosen": chosen})
    return pd.DataFrame(rows)


def selection_table(candidates: dict[str, Path], out: Path, val_groups: int = 1) -> pd.DataFrame:
    """Per candidate: validation UA (mean over folds and ``val_groups`` groups; what selection reads), how often
    the recommended candidate leads it in validation resamples (:func:`validation_lead`), folds won, test UA
    (mean over folds; reported only); then the per-fold selection's test UA."""
    per_fold = pd.DataFrame([json.loads(p.read_text()) for p in sorted((out / SELECTED).glob("*/selection.json"))])
    per_group, _ = validation_ua(candidates, val_groups)
    records = []
    for name, run in candidates.items():
        val = [np.mean(groups) for groups in per_group[name].values()]
        records.append({"recipe": name, "val_UA": float(np.mean(val)), "folds_chosen": int((per_fold["chosen"] == name).sum()),
                        "test_UA": run_row(run, run.parent)["UA_mean"]})
    table = pd.DataFrame(records)
    best = table["val_UA"].idxmax()
    table["recommended"] = [i == best for i in range(len(table))]
    lead = validation_lead(candidates, table["recipe"][best], val_groups=val_groups)
    table.insert(2, "recommended_ahead", [lead.get(name, np.nan) for name in table["recipe"]])
    selected = run_row(out / SELECTED, out)
    nested = [{"recipe": "selected per fold on validation speakers (nested)", "val_UA": np.nan,
               "recommended_ahead": np.nan, "folds_chosen": len(per_fold), "test_UA": selected["UA_mean"],
               "recommended": False}]
    if (out / SELECTED_BLIND).is_dir():
        blind = run_row(out / SELECTED_BLIND, out)
        nested.append({"recipe": BLIND_ROW, "val_UA": np.nan, "recommended_ahead": np.nan,
                       "folds_chosen": len(per_fold), "test_UA": blind["UA_mean"], "recommended": False})
    return pd.concat([table, pd.DataFrame(nested)], ignore_index=True)


def selection_markdown(table: pd.DataFrame, command: str, val_groups: int = 1) -> str:
    lines = [f"Generated by `{command}` from the per-utterance predictions below this folder.",
             "Selection reads validation UA only (validation speakers drawn from each fold's training side); "
             "test UA is reported after the choice and never used for it.", ""]
    if val_groups > 1:
        lines += [f"Validation UA is the mean over {val_groups} disjoint groups of validation speakers per fold, each "
                  "held out of its own training run of the candidate; test UA is that of the runs validating on "
                  "group 0.", ""]
    lines += ["The recommended recipe leads a candidate in the given share of paired resamples of the validation "
              "utterances (optimistic: a speaker's utterances are not independent).", ""]
    if BLIND_ROW in set(table["recipe"]):
        lines += ["A speaker tested in one fold is a validation speaker in others, so the recommended recipe, chosen "
                  "once over every fold's validation speakers, has seen each fold's test speakers a little. The last "
                  "row applies its rule once per fold with that fold's test speakers left out of every validation "
                  "set: nothing it is scored on was seen by the choice.", ""]
    lines += ["| recipe | validation UA (%) | recommended ahead in validation resamples (%) | folds chosen | "
              "test UA (%) | recommended |", "|---|---|---|---|---|---|"]
    for r in table.to_dict("records"):
        val = "" if np.isnan(r["val_UA"]) else f"{100 * r['val_UA']:.1f}"
        ahead = "" if np.isnan(r["recommended_ahead"]) else f"{100 * r['recommended_ahead']:.0f}"
        lines.append(f"| {r['recipe']} | {val} | {ahead} | {r['folds_chosen']} | {100 * r['test_UA']:.1f} | "
                     f"{'yes' if r['recommended'] else ''} |")
    return "\n".join(lines) + "\n"
