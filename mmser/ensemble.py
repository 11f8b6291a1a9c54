"""Prediction with several checkpoints: the equal-weight mean of their probabilities.

``mmser predict CLIP --checkpoint A B C`` (and ``mmser serve``) predict what ``mmser average`` scores from the
same recipes' cross-validation: each checkpoint's members averaged first, then the checkpoints. Checkpoints may
differ in how their inputs are made (e.g. Whisper's 30 s window beside the clip window): each distinct
:class:`~mmser.features.spec.FeatureSpec` gets one :class:`~mmser.inference.Predictor`, and checkpoints with the
same spec share one (their members weighted), so a clip and its enrolment clips are encoded once per spec. All
must standardise frames per speaker the same way (``features.speaker_norm``), since a speaker is given once.
"""

from __future__ import annotations

import json
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np

from mmser.checkpoint import Checkpoint, CheckpointError, load_checkpoints
from mmser.errors import MmserError
from mmser.features.spec import FeatureSpec
from mmser.inference import DEFAULT_WINDOW_S, Predictor, RunningSpeaker, Speaker, SpeakerMoments, frame_memo_bytes


def checkpoint_paths(paths: list[str | Path]) -> list[Path]:
    """``paths`` as Paths; refuses none and a checkpoint named twice (it would count twice in the mean)."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise MmserError("no checkpoint given")
    if len(set(paths)) != len(paths):
        raise MmserError(f"a checkpoint is named twice: {[str(p) for p in paths]}")
    return paths


def named_checkpoints(paths: list[Path]) -> list[tuple[str, Checkpoint]]:
    """Every checkpoint the files ``paths`` hold, named: a file's own path, or ``path[part k]`` for each part of an
    averaged file (:func:`mmser.checkpoint.save_average`), which counts as that many checkpoints in the mean."""
    named = []
    for path in paths:
        checkpoints = load_checkpoints(path)
        named += ([(str(path), checkpoints[0])] if len(checkpoints) == 1
                  else [(f"{path}[part {k}]", c) for k, c in enumerate(checkpoints)])
    first_named: dict[str, str] = {}
    for name, ckpt in named:  # one checkpoint twice (a part and its source file, or a copy) would count twice
        twice = first_named.setdefault(json.dumps(ckpt.meta, sort_keys=True), name)
        if twice != name:
            raise MmserError(f"{twice} and {name} are the same checkpoint (identical weights and document); name it once")
    return named


def check_one_speaker_norm(named: list[tuple[str, FeatureSpec]]) -> None:
    """Several checkpoints (name, features) are averaged only when they standardise frames per speaker the same
    way (``features.speaker_norm`` mode, clips, labels), since a speaker's clips or enrolment are given once."""
    by_rule: dict[tuple, list[str]] = {}
    for name, features in named:
        norm = features.speaker_norm
        by_rule.setdefault((norm.mode, norm.clips, norm.labels), []).append(name)
    if len(by_rule) > 1:
        rules = "; ".join(f"{', '.join(names)}: {rule}" for rule, names in by_rule.items())
        raise MmserError("the checkpoints standardise frames per speaker differently (features.speaker_norm mode, "
                         f"clips, labels): {rules}; use each on its own")


def same_inputs(a: Checkpoint, b: Checkpoint) -> bool:
    """Whether ``a``'s and ``b``'s members take the very same inputs: one spec, text encoder and population
    prior (so one predictor encodes for both)."""
    if a.features != b.features or a.text_fingerprint != b.text_fingerprint or a.speaker_prior.keys() != b.speaker_prior.keys():
        return False
    return all(np.array_equal(a.speaker_prior[k].total, b.speaker_prior[k].total)
               and np.array_equal(a.speaker_prior[k].total_sq, b.speaker_prior[k].total_sq)
               and a.speaker_prior[k].count == b.speaker_prior[k].count for k in a.speaker_prior)


def merged(group: list[Checkpoint]) -> tuple[Checkpoint, list[float]]:
    """One checkpoint holding the members of ``group`` (checkpoints with :func:`same_inputs`), and the member
    weights that average each checkpoint's members first, then the checkpoints."""
    first = group[0]
    members = [m for ckpt in group for m in ckpt.members]
    weights = [1.0 / len(ckpt.members) for ckpt in group for _ in ckpt.members]
    return Checkpoint(members, first.features, first.text_fingerprint, first.meta, first.speaker_prior), weights


class EnsembleSpeaker(RunningSpeaker):
    """One speaker's statistics so far for an ensemble whose checkpoints were trained with ``mode: running``:
    a :class:`RunningSpeaker` per part (each part's frames differ), passed wherever one is taken."""

    def __init__(self, parts: list[RunningSpeaker]):
        super().__init__()
        self.parts = parts

    def add(self, encoder: str, pooled: np.ndarray):
        raise TypeError("an ensemble's parts each add their own frames")


class EnsemblePredictor(Predictor):
    """The probability mean of several :class:`Predictor` parts, weighted by how many checkpoints each holds.

    It predicts, enrols and cuts timelines through :class:`Predictor`'s own methods; only turning windows into
    probabilities, enrolment moments and running speakers go part by part. Enrolment moments are keyed
    ``(part index, audio encoder)``."""

    def __init__(self, parts: list[Predictor], weights: list[float], window_s: float = DEFAULT_WINDOW_S, asr=None):
        check_one_speaker_norm([(f"part {k}", p.features) for k, p in enumerate(parts)])
        self._init_shared(parts[0].features, parts[0].device, window_s, asr)  # speaker_norm: the same in every part
        self.parts, self.part_weights = parts, list(np.asarray(weights, float) / np.sum(weights))
        self.text_encoder = next((p.text_encoder for p in parts if p.text_encoder is not None), None)
        self.ckpt = None  # several: see parts
        for part in parts:
            part.window_s = window_s
            part._lock = self._lock  # one request at a time through every part's encoders, as in one Predictor

    @property
    def member_count(self) -> int:
        return sum(p.member_count for p in self.parts)

    def new_speaker(self) -> EnsembleSpeaker:
        return EnsembleSpeaker([p.new_speaker() for p in self.parts])

    def _part_speaker(self, k: int, speaker: Speaker):
        """Part ``k``'s share of ``speaker`` (an :class:`EnsembleSpeaker`, or moments keyed (part, encoder),
        or a list of those, one per window)."""
        if isinstance(speaker, EnsembleSpeaker):
            return speaker.parts[k]
        if speaker is None:
            return None
        if isinstance(speaker, list):
            return [self._part_speaker(k, s) for s in speaker]
        return {encoder: m for (part, encoder), m in speaker.items() if part == k}

    def clip_moments(self, clips, batch_size: int = 8, sample_rate: int = 16_000) -> list[SpeakerMoments]:
        wavs = [self._load(clip, sample_rate)[0] for clip in clips]  # each clip decoded once, for every part
        per_part = [p.clip_moments(wavs, batch_size) for p in self.parts]  # [part][clip] -> moments
        return [{(k, encoder): m for k, part in enumerate(per_part) for encoder, m in part[i].items()}
                for i in range(len(clips))]

    @contextmanager
    def keeping_frames(self, max_bytes: int | None = None):
        """:meth:`Predictor.keeping_frames` in every part, each part holding up to ``max_bytes`` (by default
        :func:`~mmser.inference.frame_memo_bytes`, shared among the parts)."""
        each = frame_memo_bytes(len(self.parts)) if max_bytes is None else max_bytes
        with ExitStack() as stack:
            for part in self.parts:
                stack.enter_context(part.keeping_frames(each))
            yield self

    def window_probabilities(self, wavs: list[np.ndarray], transcripts: list[str | None],
                             speaker: Speaker = None) -> np.ndarray:
        """Part-weighted probabilities ``(B, 8)`` of a batch of 16 kHz windows."""
        speaker = self._speaker_state(speaker)
        probs = [p.window_probabilities(wavs, transcripts, self._part_speaker(k, speaker))
                 for k, p in enumerate(self.parts)]  # each (B, 8)
        return np.average(probs, axis=0, weights=self.part_weights)


def open_predictor(paths: list[str | Path], device: str = "cpu", window_s: float = DEFAULT_WINDOW_S,
                   **kwargs) -> Predictor:
    """A :class:`Predictor` for one checkpoint, an :class:`EnsemblePredictor` for several (the mean of their
    probabilities; an averaged file counts as its parts). Every checkpoint is loaded and checked before any
    encoder is opened."""
    named = named_checkpoints(checkpoint_paths(paths))
    if len(named) == 1:
        return Predictor(named[0][1], device=device, window_s=window_s, **kwargs)
    check_one_speaker_norm([(name, c.features) for name, c in named])
    groups: list[list[tuple[str, Checkpoint]]] = []
    for name, ckpt in named:
        group = next((g for g in groups if same_inputs(g[0][1], ckpt)), None)
        group.append((name, ckpt)) if group is not None else groups.append([(name, ckpt)])
    parts = []
    for group in groups:
        ckpt, weights = merged([c for _, c in group])
        try:
            parts.append(Predictor(ckpt, device=device, window_s=window_s, member_weights=weights, **kwargs))
        except CheckpointError as err:
            raise CheckpointError(f"{', '.join(name for name, _ in group)}: {err}") from None
    return EnsemblePredictor(parts, [len(g) for g in groups], window_s, kwargs.get("asr"))
