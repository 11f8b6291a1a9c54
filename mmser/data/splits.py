"""Speaker-independent folds: leave-one-session-out, leave-k-speakers-out, or folds from a file; and, to show
what it overstates, the speaker-dependent random-utterance split.

Every speaker-independent fold holds whole speakers: test speakers (or sessions) are held out, validation
speakers are drawn from the training side only, and :func:`assert_speaker_disjoint` checks that no speaker is
in more than one of train / validation / test. ``random_utterance`` folds (:func:`random_utterance_folds`)
put every speaker in train and test; they are marked ``speaker_dependent`` and every printout, metrics file
and table row built from them says so. Deterministic under ``seed``.
"""

from __future__ import annotations

import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mmser.errors import MmserError


class SplitError(MmserError):
    """Folds that cannot be built speaker-independently."""


class SpeakerLeakError(AssertionError):
    """A speaker appears in more than one of train / validation / test."""


@dataclass(frozen=True)
class Fold:
    """One fold: utterance ids of each part and the speakers held out for testing."""

    name: str
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    test_speakers: tuple[str, ...]
    val_speakers: tuple[str, ...]
    speaker_dependent: bool = False  # random utterances: the test speakers are also training speakers


def speakers_of(df: pd.DataFrame, utt_ids) -> list[str]:
    """The speakers, sorted, of the rows of ``df`` whose ``utt_id`` is in ``utt_ids``."""
    return sorted(set(df.loc[df["utt_id"].isin(set(utt_ids)), "speaker"]))


def assert_speaker_disjoint(df: pd.DataFrame, fold: Fold) -> None:
    """Raise SpeakerLeakError if any speaker is in two parts of ``fold``, or parts share utterances."""
    speaker = df.set_index("utt_id")["speaker"]
    parts = {name: set(speaker.loc[list(getattr(fold, name))]) for name in ("train", "val", "test")}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        shared = parts[a] & parts[b]
        if shared:
            raise SpeakerLeakError(f"fold {fold.name}: speaker(s) {sorted(shared)} in both {a} and {b}")
    ids = [set(fold.train), set(fold.val), set(fold.test)]
    if ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2]:
        raise SpeakerLeakError(f"fold {fold.name}: an utterance is in two parts")


def _make_fold(df: pd.DataFrame, name: str, test_speakers: list[str], val_count: int, rng: np.random.Generator) -> Fold:
    train_speakers = sorted(set(df["speaker"]) - set(test_speakers))
    if val_count >= len(train_speakers):
        raise SplitError(
            f"fold {name}: {len(train_speakers)} training speaker(s) cannot give {val_count} validation speaker(s) "
            "and still leave one to train on (lower split.val_speakers, 0 = fixed epochs without early stopping)"
        )
    val_speakers = sorted(rng.choice(train_speakers, size=val_count, replace=False).tolist()) if val_count else []
    return _speaker_fold(df, name, test_speakers, val_speakers)


def _speaker_fold(df: pd.DataFrame, name: str, test_speakers, val_speakers) -> Fold:
    """The fold of ``df`` testing ``test_speakers``, validating on ``val_speakers``, training on the others."""
    part = df["speaker"].map(lambda s: "test" if s in test_speakers else "val" if s in val_speakers else "train")
    fold = Fold(
        name=name,
        train=tuple(df.loc[part == "train", "utt_id"]),
        val=tuple(df.loc[part == "val", "utt_id"]),
        test=tuple(df.loc[part == "test", "utt_id"]),
        test_speakers=tuple(sorted(test_speakers)),
        val_speakers=tuple(sorted(val_speakers)),
    )
    assert_speaker_disjoint(df, fold)
    return fold


def validation_group(df: pd.DataFrame, fold: Fold, group: int, seed: int = 0) -> Fold:
    """``fold`` with its validation speakers replaced by validation group ``group`` (recipe selection on more
    validation speakers, ``mmser select --val-groups``). Group 0 is ``fold`` itself; group g >= 1 holds as many
    speakers as ``fold.val_speakers``, drawn from the rest of the training side, disjoint from groups 0..g-1 (a
    permutation fixed by ``seed`` and the fold's name, so group g is the same whatever the number of groups).
    The test speakers never change; the speakers of group 0 train in the other groups."""
    if group == 0:
        return fold
    if fold.speaker_dependent or not fold.val_speakers:
        raise SplitError(f"fold {fold.name}: validation group {group} needs validation speakers on a speaker-"
                         "independent fold (split.val_speakers >= 1, not random_utterance)")
    count = len(fold.val_speakers)
    rows = df[df["utt_id"].isin(set(fold.train) | set(fold.val) | set(fold.test))]
    training_side = sorted(set(rows["speaker"]) - set(fold.test_speakers))
    others = sorted(set(training_side) - set(fold.val_speakers))
    if group * count > len(others):  # group 0's speakers then train: a training speaker is always left
        raise SplitError(f"fold {fold.name}: {len(training_side)} training-side speaker(s) cannot give "
                         f"{group + 1} disjoint validation groups of {count} speaker(s) "
                         "(fewer --val-groups, or lower split.val_speakers)")
    rng = np.random.default_rng([seed, zlib.crc32(fold.name.encode())])
    order = rng.permutation(others).tolist()
    return _speaker_fold(rows, fold.name, fold.test_speakers, order[(group - 1) * count:group * count])


def leave_one_session_out(df: pd.DataFrame, val_speakers: int = 2, seed: int = 0) -> list[Fold]:
    """One fold per session: that session's speakers are the test set (IEMOCAP protocol)."""
    sessions = sorted(s for s in df["session"].astype(str).unique() if s != "")
    if len(sessions) < 2:
        raise SplitError(f"leave-one-session-out needs at least 2 sessions, the manifest has {sessions or 'none'}")
    by_session = df.groupby(df["session"].astype(str))["speaker"].agg(lambda s: sorted(set(s)))
    shared = {s for s in df["speaker"].unique() if sum(s in v for v in by_session) > 1}
    if shared:
        raise SplitError(f"speaker(s) {sorted(shared)} appear in more than one session: sessions are not speaker-disjoint")
    rng = np.random.default_rng(seed)
    return [_make_fold(df, f"session{s}", by_session[s], val_speakers, rng) for s in sessions]


def leave_speakers_out(df: pd.DataFrame, speakers_per_fold: int = 3, val_speakers: int = 2, seed: int = 0,
                       shuffle: bool = False) -> list[Fold]:
    """Partition speakers into groups of ``speakers_per_fold``; each group is one fold's test set."""
    speakers = sorted(df["speaker"].unique())
    if len(speakers) < 2:
        raise SplitError(f"speaker-independent folds need at least 2 speakers, the manifest has {len(speakers)}")
    if speakers_per_fold >= len(speakers):
        raise SplitError(f"{speakers_per_fold} speakers per fold leaves no training speaker out of {len(speakers)}")
    rng = np.random.default_rng(seed)
    if shuffle:
        speakers = rng.permutation(speakers).tolist()
    groups = [speakers[i:i + speakers_per_fold] for i in range(0, len(speakers), speakers_per_fold)]
    if len(groups[-1]) < speakers_per_fold:
        warnings.warn(f"{len(speakers)} speakers do not divide into groups of {speakers_per_fold}: "
                      f"last fold tests {len(groups[-1])} speaker(s)")
    return [_make_fold(df, f"fold{k}", g, val_speakers, rng) for k, g in enumerate(groups)]


def folds_from_file(df: pd.DataFrame, path: str | Path, val_speakers: int = 2, seed: int = 0) -> list[Fold]:
    """Folds from a CSV with columns ``speaker,fold``: each fold value names one test group. A speaker without a
    fold, or in two folds, is refused (it would be tested never, or twice)."""
    from mmser.data.manifest import read_listing

    table = read_listing(path, ("speaker", "fold"), "folds file")
    table["speaker"], table["fold"] = table["speaker"].str.strip(), table["fold"].str.strip()
    empty = [n for n, (who, fold) in enumerate(zip(table["speaker"], table["fold"]), start=2) if not who or not fold]
    if empty:
        raise SplitError(f"{path}: empty speaker or fold in row(s) {empty[:10]}")
    table = table.drop_duplicates(["speaker", "fold"])  # a row written twice names the speaker once
    folds_of = table.groupby("speaker")["fold"].agg(list)
    twice = folds_of[folds_of.str.len() > 1]
    if len(twice):
        raise SplitError(f"{path}: speaker(s) in more than one fold: "
                         + ", ".join(f"{who} ({' and '.join(folds)})" for who, folds in list(twice.items())[:10]))
    unknown = set(df["speaker"]) - set(table["speaker"])
    if unknown:
        raise SplitError(f"{path}: speaker(s) {sorted(unknown)[:10]} of the manifest have no fold")
    rng = np.random.default_rng(seed)
    present = set(df["speaker"])
    folds = []
    for f, g in table.groupby("fold", sort=True):
        speakers = sorted(s for s in g["speaker"] if s in present)
        if not speakers:  # e.g. a published protocol's fold of speakers this manifest does not have
            warnings.warn(f"{path}: fold {f} has none of the manifest's speakers ({sorted(g['speaker'])}); left out")
            continue
        folds.append(_make_fold(df, f"fold{f}", speakers, val_speakers, rng))
    if not folds:
        raise SplitError(f"{path}: no fold holds a speaker of the manifest")
    return folds


SPEAKER_DEPENDENT_NOTE = "SPEAKER-DEPENDENT (random utterances: every speaker is in training and test)"


def random_utterance_folds(df: pd.DataFrame, n_folds: int = 5, val_fraction: float = 0.1, seed: int = 0) -> list[Fold]:
    """``n_folds`` folds of random utterances, stratified by label: each utterance is tested once, and each
    speaker is in training and test (the split behind most 90 %+ RAVDESS claims, kept to show the gap).
    ``val_fraction`` of each fold's training utterances (random, stratified) is its validation part (0: none)."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    if len(df) < 2 * n_folds:
        raise SplitError(f"{len(df)} utterances cannot make {n_folds} random-utterance folds")
    labels = df["label"].to_numpy()
    if pd.Series(labels).value_counts().min() < n_folds:
        raise SplitError(f"random_utterance: every label needs at least split.utterance_folds={n_folds} utterances")
    folds = []
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (train_idx, test_idx) in enumerate(splitter.split(np.zeros(len(df)), labels)):
        val_idx = np.array([], dtype=int)
        if val_fraction > 0:  # at least one validation utterance per class
            n_classes = len(set(labels[train_idx]))
            n_val = max(int(round(val_fraction * len(train_idx))), n_classes)
            if n_val > len(train_idx) - n_classes:
                raise SplitError(f"random_utterance fold {k}: {len(train_idx)} training utterances cannot spare a "
                                 f"validation part (set split.val_speakers=0 for fixed epochs)")
            train_idx, val_idx = train_test_split(train_idx, test_size=n_val, random_state=seed + k,
                                                  stratify=labels[train_idx])
        ids = df["utt_id"].to_numpy()
        folds.append(Fold(f"utt{k}", tuple(ids[np.sort(train_idx)]), tuple(ids[np.sort(val_idx)]),
                          tuple(ids[np.sort(test_idx)]), tuple(sorted(df["speaker"].iloc[test_idx].unique())),
                          tuple(sorted(df["speaker"].iloc[val_idx].unique())), speaker_dependent=True))
    return folds


def holdout_validation(df: pd.DataFrame, val_speakers: int = 2, seed: int = 0) -> Fold:
    """Train on every speaker but ``val_speakers`` whole speakers held out for model selection (no test part)."""
    speakers = sorted(df["speaker"].unique())
    if val_speakers >= len(speakers):
        raise SplitError(f"{len(speakers)} speaker(s) cannot give {val_speakers} validation speaker(s) and still train")
    rng = np.random.default_rng(seed)
    val = sorted(rng.choice(speakers, size=val_speakers, replace=False).tolist()) if val_speakers else []
    part = df["speaker"].isin(val)
    fold = Fold("all", tuple(df.loc[~part, "utt_id"]), tuple(df.loc[part, "utt_id"]), (), (), tuple(val))
    assert_speaker_disjoint(df, fold)
    return fold


def build_folds(df: pd.DataFrame, protocol: str, speakers_per_fold: int = 3, val_speakers: int = 2, seed: int = 0,
                shuffle: bool = False, folds_file: str | None = None, utterance_folds: int = 5) -> list[Fold]:
    """Folds of the configured ``protocol`` (``split.*`` config keys); ``random_utterance`` is speaker-dependent
    (its validation part is 10 % of the training utterances, none when ``val_speakers`` is 0)."""
    if protocol == "leave_one_session_out":
        return leave_one_session_out(df, val_speakers, seed)
    if protocol == "leave_speakers_out":
        return leave_speakers_out(df, speakers_per_fold, val_speakers, seed, shuffle)
    if protocol == "file":
        if not folds_file:
            raise SplitError("split.protocol=file needs split.folds_file")
        return folds_from_file(df, folds_file, val_speakers, seed)
    if protocol == "random_utterance":
        return random_utterance_folds(df, utterance_folds, 0.1 if val_speakers else 0.0, seed)
    raise SplitError(f"unknown split.protocol {protocol!r} (leave_one_session_out | leave_speakers_out | file | "
                     "random_utterance)")


def describe_folds(df: pd.DataFrame, folds: list[Fold]) -> str:
    """One line per fold: sizes and held-out speakers."""
    lines = []
    for f in folds:
        if f.speaker_dependent:
            lines.append(f"{f.name}: train {len(f.train)} / val {len(f.val)} / test {len(f.test)} utterances; "
                         f"{SPEAKER_DEPENDENT_NOTE}")
        else:
            lines.append(f"{f.name}: train {len(f.train)} / val {len(f.val)} / test {len(f.test)} utterances; "
                         f"test speakers {list(f.test_speakers)}; val speakers {list(f.val_speakers)}")
    return "\n".join(lines)
