"""An averaged run: the probabilities of several cross-validated runs on the same folds, averaged per utterance.

``mmser average RUN_A RUN_B ... --out DIR`` writes DIR as a run of its own, from the parts' stored per-utterance
predictions alone (nothing is trained or encoded): per fold (and, with ``val_groups`` > 1, per validation group,
``DIR/val_group<g>/<fold>/``) the equal-weight mean of the parts' probabilities for the test and the validation
utterances, the label it gives, and the fold's metrics. It is what an ensemble of the parts' checkpoints predicts
(``mmser predict --checkpoint A B ...``): each part's members averaged first, then the parts; when the parts
standardise frames per speaker differently no such ensemble exists (``mmser predict`` and ``mmser train A B``
refuse it), and ``average.json`` says so (``one_speaker_norm``: false). The parts must
share their folds, test and validation speakers (checked, as for selection), their utterances, the classes the
head may predict and the protocol; ``DIR/config.yaml`` is the first part's (what the tables read of it) and
``DIR/average.json`` names every part.

The conditions of ``mmser robustness`` that every part has stored for every fold (``noise_white_10dB/``,
``val_enrol_10clips/``, ...) are averaged the same way, clip by clip, into ``DIR/<condition>/<fold>/``: what the
parts' ensemble predicts from the same noisy clips or the same draw of enrolment clips (both are seeded by the
clip alone, never by the model), so ``mmser robustness --with DIR`` can table the average beside its parts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from mmser.data.manifest import atomic_write_bytes
from mmser.errors import MmserError
from mmser.evaluation.crossval import PROB_COLUMNS
from mmser.evaluation.robustness import SPLIT_PREDICTIONS, condition_split
from mmser.evaluation.selection import fold_metrics, group_run, validation_ua
from mmser.evaluation.tables import read_predictions, run_classes
from mmser.labels import EMOTIONS
from mmser.training.metrics import classification_metrics

AVERAGE_FILE = "average.json"  # names the parts of an averaged run
# the settings every part must share beyond its folds, speakers and utterances (checked directly): what the
# tables read of a run's config
SHARED_KEYS = ("data.classes", "split.protocol")


def shared_conditions(parts: list[Path], folds: list[str]) -> tuple[list[str], list[str]]:
    """The robustness conditions (folder names) every part has stored for every fold of ``folds``, and those
    that some part has but not every part for every fold (left out: never averaged over fewer parts)."""
    names = sorted({p.name for part in parts for p in part.iterdir() if p.is_dir() and condition_split(p.name)})
    shared = [name for name in names
              if all((part / name / fold / "metrics.json").is_file() for part in parts for fold in folds)]
    return shared, [name for name in names if name not in shared]


def _averaged_conditions(parts: list[Path], out: Path, conditions: list[str], folds: list[str], classes,
                         names: list[str]) -> list[tuple[Path, bytes]]:
    """Files of each of ``conditions`` (:func:`shared_conditions`), each fold's predictions averaged over the
    parts."""
    written = []
    for condition in conditions:
        split = condition_split(condition)
        kind = SPLIT_PREDICTIONS[split]
        for fold in folds:
            where = out / condition / fold
            table = averaged_table([read_predictions(p / condition / fold / kind) for p in parts], where / kind)
            metrics = {**classification_metrics(table["true"].values, table["pred"].values, classes), "fold": fold,
                       "split": split, "averaged_parts": names}
            written += [(where / kind, table.to_csv(index=False).encode()),
                        (where / "metrics.json", json.dumps(metrics, indent=2).encode())]
    return written


# how a run standardises frames per speaker: the keys :func:`mmser.ensemble.check_one_speaker_norm` compares
SPEAKER_NORM_KEYS = ("features.speaker_norm.mode", "features.speaker_norm.clips", "features.speaker_norm.labels")


def shared_settings(run: Path) -> dict:
    """``run``'s stored values of :data:`SHARED_KEYS` and :data:`SPEAKER_NORM_KEYS` (None where not stored)."""
    path = run / "config.yaml"
    if not path.is_file():
        raise MmserError(f"{path}: missing (a run of mmser cv or mmser select stores its config there)")
    cfg = OmegaConf.load(path)
    return {key: OmegaConf.select(cfg, key) for key in SHARED_KEYS + SPEAKER_NORM_KEYS}


def averaged_table(tables: list[pd.DataFrame], where: Path) -> pd.DataFrame:
    """One fold's prediction table whose probabilities are the mean of ``tables``' (the same utterances and
    labels in each, in any order); the first table's other columns are kept."""
    first = tables[0].set_index("utt_id")
    probs = np.zeros((len(first), len(PROB_COLUMNS)))  # (N, 8)
    for table in tables:
        table = table.set_index("utt_id")
        if set(table.index) != set(first.index) or len(table) != len(first):
            raise MmserError(f"{where}: the parts predicted different utterances")
        table = table.loc[first.index]
        if not (table["true"] == first["true"]).all():
            raise MmserError(f"{where}: the parts disagree on the true labels")
        probs += table[PROB_COLUMNS].to_numpy(float) / len(tables)
    out = first.reset_index()
    out["pred"] = [EMOTIONS[i] for i in probs.argmax(axis=1)]
    out[PROB_COLUMNS] = np.round(probs, 6)
    return out


def average_runs(parts: list[Path], out: Path, val_groups: int = 1) -> dict:
    """Write the averaged run of ``parts`` to ``out`` (see the module); returns its summary (UA and validation
    UA, mean over folds and groups). Raises MmserError before writing anything when the parts differ in folds,
    speakers, utterances, classes or protocol, or a fold lacks its predictions."""
    parts = [Path(p) for p in parts]
    if len(parts) < 2:
        raise MmserError("name at least two runs to average")
    if val_groups < 1:
        raise MmserError(f"--val-groups {val_groups}: use the runs' number of validation groups (1 or more)")
    out = Path(out)
    names = [os.path.relpath(os.path.abspath(p), os.path.abspath(out)) for p in parts]  # as average.json names them
    if len({p.resolve() for p in parts}) != len(parts):
        raise MmserError(f"a run is named twice: {[str(p) for p in parts]}")
    if out.resolve() in {p.resolve() for p in parts}:
        raise MmserError(f"{out}: the output folder is one of the runs")
    settings = {p: shared_settings(p) for p in parts}
    for p in parts[1:]:
        for key in SHARED_KEYS:
            if settings[p][key] != settings[parts[0]][key]:
                raise MmserError(f"{p}: {key} {settings[p][key]} differs from {parts[0]}'s {settings[parts[0]][key]} "
                                 "(average runs of one corpus on the same folds)")
    validation_ua(dict(zip(names, parts)), val_groups)  # the same folds and speakers, group by group
    classes = run_classes(parts[0])
    written: list[tuple[Path, bytes]] = []
    test_ua: dict[int, list[float]] = {}  # validation group -> test UA per fold
    val_ua: list[float] = []
    for group in range(val_groups):
        metrics = fold_metrics(group_run(parts[0], group))
        if group == 0:
            folds = sorted(metrics)  # the run's own folds, where robustness conditions live
        for fold, first in metrics.items():
            where = group_run(out, group) / fold
            tables = {}
            for kind in ("predictions.csv", "val_predictions.csv"):
                files = [group_run(p, group) / fold / kind for p in parts]
                missing = [str(f) for f in files if not f.is_file()]
                if missing:
                    raise MmserError(f"missing: {', '.join(missing)}")
                tables[kind] = averaged_table([read_predictions(f) for f in files], where / kind)
            test, val = tables["predictions.csv"], tables["val_predictions.csv"]
            scores = classification_metrics(test["true"].values, test["pred"].values, classes)
            val_scores = classification_metrics(val["true"].values, val["pred"].values, classes)
            record = {**scores, "n": int(len(test)), "fold": fold,
                      **{k: first[k] for k in ("test_speakers", "val_speakers", "protocol", "speaker_independent")
                         if k in first},
                      "val_UA": val_scores["UA"], "val_WA": val_scores["WA"], "averaged_parts": names}
            test_ua.setdefault(group, []).append(scores["UA"])
            val_ua.append(val_scores["UA"])
            written += [(where / kind, table.to_csv(index=False).encode()) for kind, table in tables.items()]
            written.append((where / "metrics.json", json.dumps(record, indent=2).encode()))
        written.append((group_run(out, group) / "config.yaml", (group_run(parts[0], group) / "config.yaml").read_bytes()))
    conditions, left_out = shared_conditions(parts, folds)
    written += _averaged_conditions(parts, out, conditions, folds, classes, names)
    # one rule (a run stored without the keys standardised nothing: mode off)
    rules = {(settings[p][SPEAKER_NORM_KEYS[0]] or "off", *(settings[p][k] for k in SPEAKER_NORM_KEYS[1:])) for p in parts}
    summary = {"parts": names, "val_groups": val_groups, "val_UA_mean": float(np.mean(val_ua)),  # over folds and groups: what selection reads
               "one_speaker_norm": len(rules) == 1,  # false: no ensemble of the parts' checkpoints predicts this
               "conditions": conditions,  # robustness conditions averaged too
               "conditions_left_out": left_out,  # stored by some part, not by every part for every fold
               "UA_mean": float(np.mean(test_ua[0])),  # the test UA of the run's own folds (validation group 0)
               "config": f"config.yaml is {parts[0].name}'s; every part has its {' and '.join(SHARED_KEYS)}"}
    written.append((out / AVERAGE_FILE, json.dumps(summary, indent=2).encode()))
    for path, data in written:
        atomic_write_bytes(path, data)
    return summary
