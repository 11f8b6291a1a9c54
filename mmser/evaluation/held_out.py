"""Scoring trained checkpoints on a labelled manifest of speakers they never saw (``mmser evaluate``): the
check of a recipe on held-out speakers or another corpus, stored as cross-validation stores a fold."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mmser.data.protocol import corpus_qualified_speakers, text_column
from mmser.errors import MmserError
from mmser.evaluation.crossval import prediction_table
from mmser.labels import EMOTIONS
from mmser.training.metrics import bootstrap_ci, classification_metrics, unweighted_accuracy


def check_scorable(df: pd.DataFrame, trained_classes: list[str], where: str) -> None:
    """Refuse a manifest with labels no checkpoint member was trained on (its recall would be 0 by
    construction), naming them and their counts."""
    counts = df["label"].value_counts()
    unknown = sorted(set(counts.index) - set(trained_classes), key=EMOTIONS.index)
    if unknown:
        raise MmserError(f"{where}: label(s) {', '.join(f'{c} ({counts[c]} clips)' for c in unknown)} are not among "
                         f"the classes the checkpoint was trained on ({', '.join(trained_classes)}); leave those rows "
                         "out of the manifest: a model cannot be scored on a class it never learnt")


def heard_in_manifest(df: pd.DataFrame, heard: dict[str, str] | None, where: str, allow: bool) -> list[str] | None:
    """The manifest's speakers that the checkpoints heard in training or validation (``heard``:
    :func:`~mmser.checkpoint.heard_speakers` of their documents; a checkpoint trained on several manifests names its speakers
    ``<corpus>:<speaker>``), sorted; None when the checkpoints do not record theirs. Refuses any unless ``allow``:
    a score on speakers a model learnt from or was stopped on is not a score on new speakers."""
    if heard is None:
        return None
    found: dict[str, str] = {}
    for who, qualified in set(zip(df["speaker"], corpus_qualified_speakers(df, where))):
        part = heard.get(who) or heard.get(qualified)
        if part and found.get(who) != "training":
            found[who] = part
    seen = sorted(found)
    if seen and not allow:
        clips = int(df["speaker"].isin(seen).sum())
        shown = ", ".join(f"{who} ({found[who]})" for who in seen[:10]) + (" ..." if len(seen) > 10 else "")
        raise MmserError(f"{where}: {len(seen)} of its {df['speaker'].nunique()} speaker(s) ({clips} clips) were heard "
                         f"by the checkpoint(s) in training or validation: {shown}. Leave them out of the manifest "
                         "for a score on new speakers, or pass --allow-heard-speakers (e.g. other people who share "
                         "those ids); metrics.json then lists them")
    return seen


def over_labels(probs: np.ndarray, labels: list[str]) -> np.ndarray:
    """``probs`` (N, 8) renormalised over ``labels``, every other class's probability 0: a model scored on a corpus
    with fewer classes, choosing among that corpus's classes only (``mmser evaluate --manifest-labels-only``)."""
    kept = np.where(np.isin(EMOTIONS, labels), probs, 0.0)  # (N, 8)
    total = kept.sum(axis=1, keepdims=True)  # (N, 1)
    return kept / np.where(total > 0, total, 1.0)


def held_out_scores(df: pd.DataFrame, probs: np.ndarray, trained_classes: list[str]) -> tuple[pd.DataFrame, dict]:
    """Per-utterance predictions of every row of ``df`` (probabilities ``probs`` (N, 8), in ``df``'s order) in
    cross-validation's ``predictions.csv`` columns, and their metrics: WA, UA (mean recall over the classes
    present), F1, per class and confusion over ``trained_classes``, a 95 % bootstrap interval of UA over
    utterances, and each speaker's UA."""
    table = prediction_table(df, tuple(df["utt_id"]), probs)
    metrics = classification_metrics(table["true"].values, table["pred"].values, trained_classes)
    low, high = bootstrap_ci(table["true"].values, table["pred"].values)
    metrics["UA_ci95"] = [low, high]
    metrics["speakers"] = {str(who): {"UA": unweighted_accuracy(rows["true"], rows["pred"]), "n": len(rows)}
                           for who, rows in table.groupby("speaker", sort=True)}
    return table, metrics


def transcripts(df: pd.DataFrame, sources: list[str], where: str) -> list[str | None]:
    """Each row's transcript from the column the checkpoints' fused members were trained on (``gold``: the
    ``transcript`` column; an ASR source: its column, from ``mmser transcribe``); None for audio-only ones."""
    if not sources:
        return [None] * len(df)
    if len(sources) > 1:
        raise MmserError(f"the checkpoints' members read transcripts from {', '.join(sources)}: evaluate checkpoints "
                         "of one text source at a time")
    try:
        texts = text_column(df, sources[0])
    except MmserError as err:
        raise MmserError(f"{where}: {err}") from None
    empty = list(df["utt_id"][texts.str.strip() == ""])
    if empty:
        raise MmserError(f"{where}: {len(empty)} row(s) without a {sources[0]} transcript, which the checkpoints' "
                         f"fused members read (e.g. {', '.join(empty[:5])})")
    return list(texts)

