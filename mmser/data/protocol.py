"""The evaluation protocol of a config: which utterances, which classes, which speaker-independent folds.

:func:`load_protocol` reads the manifest(s) and returns a :class:`Protocol` (rows + classes); it never
edits the config. Recipes record ``protocol.classes`` in the config they store beside their results.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mmser.config import require
from mmser.data.manifest import read_manifest
from mmser.data.splits import Fold, assert_speaker_disjoint, build_folds, holdout_validation
from mmser.distributed import say
from mmser.errors import MmserError
from mmser.labels import EMOTIONS, class_mask

CROSS_CORPUS_PART = "cross_corpus_part"  # column marking train/test rows of a cross-corpus protocol


@dataclass(frozen=True)
class Protocol:
    """The rows a run uses and the classes its head predicts (the others are masked)."""

    rows: pd.DataFrame  # manifest rows kept by the protocol, index 0..N-1
    classes: tuple[str, ...]  # in EMOTIONS order

    @property
    def class_mask(self) -> tuple[bool, ...]:
        """Which of the 8 classes the head may predict."""
        return tuple(class_mask(list(self.classes)))

    @property
    def is_cross_corpus(self) -> bool:
        return CROSS_CORPUS_PART in self.rows.columns


def text_column(df: pd.DataFrame, text_source: str) -> pd.Series:
    """Transcripts of ``text_source`` ("gold" = the ``transcript`` column, else an ASR column)."""
    col = "transcript" if text_source == "gold" else text_source
    if col not in df.columns:
        asr = [c for c in df.columns if c.startswith("asr_")]
        raise MmserError(f"text source {text_source!r}: no column {col!r} in the manifest "
                         f"(ASR columns present: {asr or 'none'}; run `mmser transcribe` first)")
    return df[col].fillna("").astype(str)


def _corpus_of(df: pd.DataFrame, path: str | Path) -> pd.Series:
    """Each row's corpus: the ``corpus`` column where set, else the manifest's file name (stem)."""
    corpus = df["corpus"] if "corpus" in df.columns else pd.Series("", index=df.index)
    return corpus.where(corpus != "", Path(path).stem)


def corpus_qualified_speakers(df: pd.DataFrame, path: str | Path) -> pd.Series:
    """Each row's speaker as :func:`combined_manifests` names it: ``<corpus>:<speaker>``."""
    return _corpus_of(df, path) + ":" + df["speaker"]


def combined_manifests(paths: list[str]) -> pd.DataFrame:
    """Several corpora's manifests as one: speaker ids qualified by corpus (``<corpus>:<speaker>``, so that two
    corpora's "spk01" stay two speakers), the corpus taken from the ``corpus`` column or the file name. Says how
    many rows, speakers and labels each brings; utterance ids must not repeat across manifests."""
    parts, seen = [], {}
    for path in paths:
        df = read_manifest(path)
        df["corpus"] = _corpus_of(df, path)
        df["speaker"] = corpus_qualified_speakers(df, path)
        clash = set(df["utt_id"]) & set(seen)
        if clash:
            first = sorted(clash)[0]
            raise MmserError(f"{path}: utt_id {first!r} (and {len(clash) - 1} more) also in {seen[first]}")
        seen.update(dict.fromkeys(df["utt_id"], path))
        say(f"{path}: {len(df)} utterances, {df['speaker'].nunique()} speaker(s) of {sorted(df['corpus'].unique())}, "
            f"labels {sorted(df['label'].unique(), key=EMOTIONS.index)}")
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


def load_protocol(data_cfg, text_sources: list[str] | tuple[str, ...] = ()) -> Protocol:
    """The manifest of ``cfg.data`` restricted to the protocol (classes, improvised-only), saying what it
    leaves out; checks that every text source in ``text_sources`` has its column before any work."""
    if data_cfg.get("manifests"):
        df = combined_manifests(list(data_cfg.manifests))
    else:
        require(data_cfg, "manifest")
        df = read_manifest(data_cfg.manifest)
    classes = list(data_cfg.classes) if data_cfg.classes else None
    if data_cfg.test_manifest:
        test = read_manifest(data_cfg.test_manifest)
        shared = sorted(set(df["label"]) & set(test["label"]), key=EMOTIONS.index)
        say(f"cross-corpus: train {data_cfg.manifest} ({len(df)}), test {data_cfg.test_manifest} ({len(test)}); "
              f"shared labels {shared}")
        clash = set(df["utt_id"]) & set(test["utt_id"])
        if clash:
            raise MmserError(f"cross-corpus manifests share utt_id(s) {sorted(clash)[:5]}")
        df = pd.concat([df.assign(**{CROSS_CORPUS_PART: "train"}), test.assign(**{CROSS_CORPUS_PART: "test"})],
                       ignore_index=True)
        df = df[df["label"].isin(shared)]
        classes = classes or shared
    if not classes:  # the head predicts the classes the corpus has (others masked)
        classes = [e for e in EMOTIONS if e in set(df["label"])]
    keep = df["label"].isin(classes)
    if (~keep).any():
        say(f"protocol classes {classes}: leaving out {int((~keep).sum())} utterance(s) "
              f"labelled {sorted(df.loc[~keep, 'label'].unique())}")
    df = df[keep]
    if data_cfg.improvised_only:
        if "improvised" not in df.columns:
            raise MmserError("data.improvised_only needs an 'improvised' column (IEMOCAP manifests have it)")
        df = df[df["improvised"].astype(str).str.lower() == "true"]
        say(f"improvised dialogs only: {len(df)} utterances")
    df = df.reset_index(drop=True)
    for source in text_sources:
        text_column(df, source)
    return Protocol(df, tuple(sorted(classes, key=EMOTIONS.index)))


def make_folds(protocol: Protocol, split_cfg) -> list[Fold]:
    """The speaker-independent folds of ``cfg.split`` (one train/test fold for a cross-corpus protocol)."""
    df = protocol.rows
    if protocol.is_cross_corpus:
        return [cross_corpus_fold(df, split_cfg.val_speakers, split_cfg.seed)]
    s = split_cfg
    return build_folds(df, s.protocol, s.speakers_per_fold, s.val_speakers, s.seed, s.shuffle, s.folds_file, s.utterance_folds)


def cross_corpus_fold(df: pd.DataFrame, val_speakers: int, seed: int) -> Fold:
    """Train (+ validation speakers) on the training corpus, test on the whole other corpus."""
    train_side = df[df[CROSS_CORPUS_PART] == "train"]
    inner = holdout_validation(train_side, val_speakers, seed)
    test = df[df[CROSS_CORPUS_PART] == "test"]
    fold = Fold("cross_corpus", inner.train, inner.val, tuple(test["utt_id"]), tuple(sorted(test["speaker"].unique())),
                inner.val_speakers)
    assert_speaker_disjoint(df, fold)
    return fold


def limit_per_class(df: pd.DataFrame, ids: tuple[str, ...], n: int | None, seed: int) -> tuple[str, ...]:
    """At most ``n`` utterances per class from ``ids`` (seeded), for data-efficiency curves."""
    if n is None:
        return ids
    labels = df.set_index("utt_id").loc[list(ids), "label"]
    rng = np.random.default_rng(seed)
    keep: set[str] = set()
    for _, group in labels.groupby(labels):
        keep.update(rng.choice(group.index.to_numpy(), size=min(n, len(group)), replace=False).tolist())
    return tuple(i for i in ids if i in keep)


def sentence_overlap(df: pd.DataFrame, fold: Fold, text_source: str) -> float:
    """Fraction of test utterances whose transcript also occurs on the training side (a leakage measure)."""
    from mmser.features.asr import normalize_text

    text = text_column(df, text_source).map(normalize_text)
    idx = pd.Series(range(len(df)), index=df["utt_id"])
    seen = set(text.iloc[idx[list(fold.train) + list(fold.val)].values])
    test = text.iloc[idx[list(fold.test)].values]
    return float(test.isin(seen).mean()) if len(test) else 0.0
