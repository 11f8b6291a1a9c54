"""Per-speaker standardisation of acoustic frames (``features.speaker_norm``: mode, clips, labels).

Each clip's ``(L, T, D)`` frames are standardised per layer and dimension with the mean and std of
frames from clips of the same speaker (or of the clip itself). The labels of the clips are not used (``labels``
below may name which clips are eligible for enrolment). Four ways to get those statistics:

- instance (``mode: instance``): the clip's own frames (each prediction window's, for a long recording), so
  nothing but the clip is needed, in training and at prediction alike
  (:meth:`mmser.features.spec.FeatureSpec.standardised`).
- transductive (``mode: transductive``): all of the speaker's clips, the clip itself
  included. Cross-validation only: a checkpoint cannot be fed that way.
- enrolment (``mode: enrol``, ``clips: k``): ``k`` *other* clips of the same speaker, drawn
  at random (seeded), so a clip never contributes to its own statistics. This is what prediction does
  with ``k`` enrolment clips of the speaker (``mmser predict --enrol``), and training and cross-validation
  use the same rule for every speaker, so the models see statistics as noisy as they get at prediction.
  ``features.speaker_norm.labels`` (e.g. ``[neutral, calm]``) limits the clips that may be drawn to
  those labels, for a recipe whose enrolment clips are emotionally neutral speech and to measure how a
  model fares with such enrolment. The label of the clip being standardised is never looked at.
- running (``mode: running``): the speaker's clips *so far*, the clip itself included, as they arrive: the
  first clip of a speaker is standardised with its own statistics (as ``instance``), the n-th with those of
  the speaker's first n clips. No enrolment is asked for: a checkpoint predicts a speaker's clips in the
  order they come (``mmser predict`` on several clips of one speaker, ``Predictor.new_speaker``), and later
  clips get better statistics. Training and cross-validation give each speaker's clips a random arrival
  order (seeded), so the models see every stage of that accumulation. With ``prior_clips: c`` a speaker's
  statistics start from the training speakers' (the population's), counted as ``c`` clips, as Kaldi's online
  CMVN starts from global statistics: a speaker's first clips are standardised mostly as the population is,
  later ones mostly with the speaker's own (:func:`population_prior`). The population is that of the training
  rows of each fold (never validation or test speakers), and a checkpoint carries it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmser.errors import MmserError

EPS = 1e-5  # added to the std


@dataclass
class FrameMoments:
    """Sufficient statistics of a set of frames: per-layer, per-dimension sums, in float64."""

    total: np.ndarray  # (L, D) sum of frames
    total_sq: np.ndarray  # (L, D) sum of squared frames
    count: float  # frames (a population prior counts as a fraction of its frames: see population_prior)

    @classmethod
    def of(cls, frames: np.ndarray) -> "FrameMoments":
        """Moments of one clip's ``(L, T, D)`` frames."""
        x = frames.astype(np.float64)
        return cls(x.sum(axis=1), (x * x).sum(axis=1), int(frames.shape[1]))

    @classmethod
    def combine(cls, parts: list["FrameMoments"]) -> "FrameMoments":
        return cls(sum(p.total for p in parts), sum(p.total_sq for p in parts), sum(p.count for p in parts))

    def without(self, part: "FrameMoments") -> "FrameMoments":
        """These moments with ``part`` (one of the parts they were combined from) taken out."""
        return FrameMoments(self.total - part.total, self.total_sq - part.total_sq, self.count - part.count)

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        """``(L, 1, D)`` float32 mean and std (+EPS) for broadcasting over a clip's frames."""
        mean = self.total / self.count
        var = np.maximum(self.total_sq / self.count - mean * mean, 0.0)
        return mean[:, None].astype(np.float32), (np.sqrt(var) + EPS)[:, None].astype(np.float32)


def standardise(frames: np.ndarray, moments: FrameMoments) -> np.ndarray:
    """``(L, T, D)`` frames standardised with ``moments`` -> fp16 ``(L, T, D)``."""
    mean, std = moments.mean_std()
    return ((frames.astype(np.float32) - mean) / std).astype(np.float16)


def rows_by_speaker(speakers: list[str]) -> dict[str, list[int]]:
    """Each speaker's row indices, speakers in order of first appearance."""
    rows: dict[str, list[int]] = {}
    for i, speaker in enumerate(speakers):
        rows.setdefault(speaker, []).append(i)
    return rows


def speaker_moments(arrays: list[np.ndarray], speakers: list[str], enrol_clips: int | None = None,
                    seed: int = 0, may_enrol: list[bool] | None = None) -> list[FrameMoments]:
    """The moments each row's ``(L, T, D)`` frames are standardised with (see :func:`speaker_moments_of`)."""
    return speaker_moments_of([FrameMoments.of(a) for a in arrays], speakers, enrol_clips, seed, may_enrol)


def speaker_moments_of(moments: list[FrameMoments], speakers: list[str], enrol_clips: int | None = None,
                       seed: int = 0, may_enrol: list[bool] | None = None) -> list[FrameMoments]:
    """From each row's own frame moments, the moments it is standardised with: its speaker's clips' statistics.

    ``enrol_clips=None``: all the speaker's clips (the row itself included). ``enrol_clips=k``: ``k`` other
    clips of the speaker drawn with ``seed`` (all the others when it has fewer), only among rows whose
    ``may_enrol`` is true when it is given (:func:`enrolment_draws`). Returns one :class:`FrameMoments` per row,
    in order.
    """
    combined: dict[int, FrameMoments] = {}  # a speaker's rows, shared by all its rows when every clip counts
    out = []
    for rows in enrolment_draws(speakers, enrol_clips, seed, may_enrol):
        if id(rows) not in combined:
            combined[id(rows)] = FrameMoments.combine([moments[j] for j in rows])
        out.append(combined[id(rows)])
    return out


def enrolment_draws(speakers: list[str], enrol_clips: int | None = None, seed: int = 0,
                    may_enrol: list[bool] | None = None) -> list[list[int]]:
    """For each row, the rows whose moments :func:`speaker_moments_of` combines for it: all its speaker's rows
    (``enrol_clips=None``: one list shared by them), or ``enrol_clips`` other rows of its speaker drawn with
    ``seed``. The draw depends on the speakers, ``may_enrol`` and the seed only, never on the clips' frames, so
    the draws can be taken before any clip is encoded."""
    if enrol_clips is not None and enrol_clips < 1:
        raise MmserError(f"features.speaker_norm.clips must be >= 1 (got {enrol_clips})")
    if may_enrol is not None and enrol_clips is None:
        raise MmserError("features.speaker_norm.labels limits the enrolment clips: it needs mode=enrol with clips")
    may_enrol = may_enrol if may_enrol is not None else [True] * len(speakers)
    rng = np.random.default_rng(seed)
    out: list[list[int]] = [[] for _ in speakers]
    for speaker, rows in rows_by_speaker(speakers).items():
        if enrol_clips is None:
            for i in rows:
                out[i] = rows
            continue
        if len(rows) < 2:
            raise MmserError(f"speaker {speaker!r} has a single clip: features.speaker_norm.mode=enrol standardises a "
                             "clip with other clips of its speaker, so every speaker needs at least 2")
        for i in rows:
            others = [j for j in rows if j != i and may_enrol[j]]
            if not others:
                raise MmserError(f"speaker {speaker!r} has no other clip that may be an enrolment clip "
                                 "(features.speaker_norm.labels)")
            out[i] = [int(j) for j in rng.choice(others, size=min(enrol_clips, len(others)), replace=False)]
    return out


def arrival_order(speakers: list[str], seed: int = 0) -> dict[str, list[int]]:
    """Each speaker's rows (indices into ``speakers``) in the random order they arrive under ``mode: running``,
    drawn with ``seed`` speaker after speaker in order of first appearance."""
    rng = np.random.default_rng(seed)
    return {speaker: [int(i) for i in rng.permutation(rows)] for speaker, rows in rows_by_speaker(speakers).items()}


def population_prior(moments: list[FrameMoments], clips: float) -> FrameMoments:
    """The population's frame statistics (of the rows whose own ``moments`` are given, e.g. a fold's training
    clips) weighted as ``clips`` average clips: the same mean and variance, ``clips`` times the mean frame
    count of a clip. What ``mode: running`` with ``prior_clips`` starts each speaker's statistics from."""
    if not moments:
        raise MmserError("features.speaker_norm.prior_clips: no training clips to take the population's statistics from")
    if clips <= 0:
        raise MmserError(f"features.speaker_norm.prior_clips must be > 0 (got {clips})")
    population = FrameMoments.combine(moments)
    scale = clips / len(moments)  # (clips * frames per clip) / frames
    return FrameMoments(population.total * scale, population.total_sq * scale, population.count * scale)


def running_moments_of(moments: list[FrameMoments], speakers: list[str], seed: int = 0,
                       prior: FrameMoments | None = None) -> list[FrameMoments]:
    """From each row's own frame moments, the moments it is standardised with under ``mode: running``.

    A row gets the combined moments of its speaker's rows up to and including itself in their
    :func:`arrival_order`, and of ``prior`` when given (:func:`population_prior`). Returns one
    :class:`FrameMoments` per row, in order.
    """
    out: list[FrameMoments | None] = [None] * len(moments)
    for order in arrival_order(speakers, seed).values():
        so_far: FrameMoments | None = prior
        for i in order:
            so_far = moments[i] if so_far is None else FrameMoments.combine([so_far, moments[i]])
            out[i] = so_far
    return out  # type: ignore[return-value]


def normalize_per_speaker(arrays: list[np.ndarray], speakers: list[str], enrol_clips: int | None = None,
                          seed: int = 0, may_enrol: list[bool] | None = None) -> list[np.ndarray]:
    """Each row's ``(L, T, D)`` frames standardised with :func:`speaker_moments` -> new fp16 arrays, in order."""
    return [standardise(a, m) for a, m in zip(arrays, speaker_moments(arrays, speakers, enrol_clips, seed, may_enrol))]
