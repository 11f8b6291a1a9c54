"""Prediction on new clips: ``Predictor.from_checkpoint(path).predict(audio_or_path, transcript=None)``.

The checkpoint alone says which encoders, layers, Whisper window and frame stride the models were
trained on (its :class:`~mmser.features.spec.FeatureSpec`); the predictor opens those encoders once
through that spec (checking their weight fingerprints; a member that trained the whole encoder carries it
and reads waveforms), turns frames into model inputs the way training
did (``FeatureSpec.pooled``, then ``FeatureSpec.standardised``), and averages the members' probabilities.
Audio is read by the one loader of :mod:`mmser.audio` whether it comes as a path or as a waveform. No training code (Lightning)
is imported on this path. Clips longer than ``window_s`` are
cut into windows: each window gets a prediction and the overall one is their duration-weighted mean.

A checkpoint trained with ``features.speaker_norm.mode: enrol`` standardises frames per speaker: it needs
enrolment clips of the speaker (``Predictor.enrol(clips)``, ``mmser predict --enrol``), whose frame
statistics stand in for the speaker's statistics in training. One trained with ``mode: running`` needs
none: it standardises each clip with the statistics of its speaker's clips so far, itself included
(a :class:`RunningSpeaker`, ``Predictor.new_speaker()``), so the clips of one ``predict_many`` call are
taken as one speaker's, in the order given.
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mmser.audio import SAMPLE_RATE, AudioError, load_audio, to_waveform
from mmser.checkpoint import CheckpointError, load_checkpoint, read_document
from mmser.errors import MmserError
from mmser.features.batching import collate
from mmser.features.speaker_norm import FrameMoments
from mmser.labels import EMOTIONS
from mmser.memory import available_bytes

SpeakerMoments = dict[str, FrameMoments]  # audio encoder spec -> frame moments of one speaker's enrolment clips

NO_ENROLMENT = "this checkpoint does not standardise frames per speaker: it takes no enrolment clips"
NOT_RUNNING = "this checkpoint does not accumulate a speaker's statistics (features.speaker_norm.mode is not running)"
RUNNING_NO_ENROLMENT = ("this checkpoint standardises each clip with its speaker's clips so far "
                        "(features.speaker_norm.mode=running): it takes no enrolment clips")
DEFAULT_WINDOW_S = 30.0  # s, longer clips are predicted window by window
ONLY_SELF_ENROLLED = ("the only enrolment clip given is the clip itself, and a clip never counts in its own "
                      "statistics: give other clips of the speaker")
FRAME_MEMO_SHARE = 0.25  # of the memory available when Predictor.keeping_frames starts: what it may hold
FRAME_MEMO_BYTES = 2 * 2**30  # bytes it holds where the available memory cannot be read


def frame_memo_bytes(parts: int = 1) -> int:
    """Bytes each of ``parts`` predictors' :meth:`Predictor.keeping_frames` may hold by default:
    ``FRAME_MEMO_SHARE`` of the memory available now (container limits included), shared among them;
    ``FRAME_MEMO_BYTES`` each where that cannot be read."""
    available = available_bytes()
    return FRAME_MEMO_BYTES if available is None else int(available * FRAME_MEMO_SHARE) // max(parts, 1)


def combine_speaker(parts: list[SpeakerMoments]) -> SpeakerMoments:
    """One speaker's moments per audio encoder from those of some of the speaker's clips."""
    if not parts:
        raise MmserError("no enrolment clips left to standardise with")
    return {spec: FrameMoments.combine([p[spec] for p in parts]) for spec in parts[0]}


def without_clip(total: SpeakerMoments, own: SpeakerMoments) -> SpeakerMoments:
    """A speaker's moments (``total``, :func:`combine_speaker` of its clips) with one of those clips (``own``, its
    own moments) left out: the statistics training standardises that clip with, at the cost of one subtraction."""
    return {spec: moments.without(own[spec]) for spec, moments in total.items()}


class RunningSpeaker:
    """One speaker's frame moments so far, per audio encoder, for checkpoints trained with
    ``features.speaker_norm.mode: running``: each window predicted first adds its own frames' moments, then
    is standardised with the total (so a speaker's first window gets its own statistics, or, from a checkpoint
    trained with ``prior_clips``, those blended with the training population's: ``prior``)."""

    def __init__(self, prior: SpeakerMoments | None = None):
        self.moments: SpeakerMoments = dict(prior or {})

    def add(self, encoder: str, pooled: np.ndarray) -> FrameMoments:
        """Add one window's pooled frames ``(L, T, D)`` of ``encoder``; returns the moments so far."""
        own = FrameMoments.of(pooled)
        so_far = self.moments.get(encoder)
        self.moments[encoder] = own if so_far is None else FrameMoments.combine([so_far, own])
        return self.moments[encoder]


# what predict_many's ``speaker`` takes: one speaker's moments (from enrol), the moments of each clip's own
# speaker (a list, one per clip), a running speaker, or nothing
Speaker = SpeakerMoments | list[SpeakerMoments] | RunningSpeaker | None


@dataclass
class Prediction:
    label: str
    probabilities: dict[str, float]
    duration_s: float
    windows: list[dict] = field(default_factory=list)  # per-window label/probabilities for long clips

    def to_dict(self) -> dict:
        out = {"label": self.label, "probabilities": self.probabilities, "duration_s": round(self.duration_s, 3)}
        if self.windows:
            out["windows"] = self.windows
        return out


class Predictor:
    def __init__(self, checkpoint, device: str = "cpu", window_s: float = DEFAULT_WINDOW_S, asr=None,
                 strict_fingerprints: bool = True, member_weights: list[float] | None = None):
        """``member_weights``: one weight per member of ``checkpoint`` in the average of their probabilities
        (None: equal; :func:`mmser.ensemble.open_predictor` weighs the members of merged checkpoints)."""
        if member_weights is not None and (len(member_weights) != len(checkpoint.members) or min(member_weights) <= 0):
            raise ValueError(f"{len(member_weights)} member weights for {len(checkpoint.members)} members; each > 0")
        self._init_shared(checkpoint.features, device, window_s, asr)
        self.ckpt, self.member_weights = checkpoint, member_weights
        self.audio_encoders = {}
        for member in checkpoint.members:
            spec = member.audio_encoder
            if spec and spec not in self.audio_encoders and not member.model.dims.reads_waveforms:
                enc = self.features.open_audio_encoder(spec, device, batch_size=1)
                if strict_fingerprints and member.audio_fingerprint and enc.fingerprint != member.audio_fingerprint:
                    raise CheckpointError(f"encoder {spec}: its weights (fingerprint {enc.fingerprint}) differ from those "
                                          f"the checkpoint was trained on ({member.audio_fingerprint})")
                self.audio_encoders[spec] = enc
        if checkpoint.uses_text:
            self.text_encoder = self.features.open_text_encoder(device, batch_size=1)
            expected = checkpoint.text_fingerprint
            if strict_fingerprints and expected and self.text_encoder.fingerprint != expected:
                raise CheckpointError(f"text encoder {self.features.text_encoder}: weights differ from those the "
                                      "checkpoint was trained on")
        for member in checkpoint.members:
            member.model.to(device).eval()

    def _init_shared(self, features, device: str, window_s: float, asr) -> None:
        """The state :meth:`predict`, :meth:`predict_many`, :meth:`timeline` and the speaker rules read, set alike
        by every kind of predictor (:class:`mmser.ensemble.EnsemblePredictor` too): the ``FeatureSpec``
        (encoders, layers, window, stride, speaker norm), device, window length (s), the ASR for transcribing,
        no text encoder yet, and the lock that lets one request at a time through the shared encoders and models."""
        self.features, self.device, self.window_s, self.asr = features, device, window_s, asr
        self.text_encoder = None
        self._lock = threading.Lock()
        self._frame_memo: dict[tuple[str, bytes], np.ndarray] | None = None  # see keeping_frames
        self._frame_memo_room = 0  # bytes it may still take

    @classmethod
    def from_checkpoint(cls, path: str | Path, **kwargs) -> "Predictor":
        """The predictor of one checkpoint file; for an averaged file (several parts), the
        :class:`~mmser.ensemble.EnsemblePredictor` of its parts."""
        if "parts" in read_document(path):  # the header alone says so: the file is read once, by the reader
            from mmser.ensemble import open_predictor  # it builds on this module

            return open_predictor([path], **kwargs)
        return cls(load_checkpoint(path), **kwargs)

    @property
    def needs_text(self) -> bool:
        return self.text_encoder is not None

    @property
    def member_count(self) -> int:
        """The models whose probabilities are averaged."""
        return len(self.ckpt.members)

    @property
    def needs_enrolment(self) -> bool:
        return self.features.speaker_norm.needs_enrolment

    @property
    def accumulates_speaker(self) -> bool:
        """Frames are standardised with the statistics of the speaker's clips so far (``mode: running``)."""
        return self.features.speaker_norm.mode == "running"

    def new_speaker(self) -> RunningSpeaker:
        """A new :class:`RunningSpeaker` (holding the checkpoint's population prior, if it was trained with
        ``prior_clips``, and nothing of any speaker) to pass as ``speaker`` for one speaker's clips, in order."""
        if not self.accumulates_speaker:
            raise MmserError(NOT_RUNNING)
        return RunningSpeaker(self.ckpt.speaker_prior)

    def _speaker_state(self, speaker: Speaker) -> Speaker:
        """``speaker`` checked against the checkpoint's standardisation; a new :class:`RunningSpeaker` when
        the checkpoint accumulates one and none is given. Raises MmserError on a mismatch."""
        sn = self.features.speaker_norm
        if self.accumulates_speaker:
            if speaker is None:
                return self.new_speaker()
            if not isinstance(speaker, RunningSpeaker):
                raise MmserError(RUNNING_NO_ENROLMENT)
            return speaker
        if isinstance(speaker, RunningSpeaker):
            raise MmserError(NOT_RUNNING)
        if isinstance(speaker, list) and (not self.needs_enrolment or any(s is None for s in speaker)):
            raise MmserError(NO_ENROLMENT if not self.needs_enrolment else "enrolment moments are missing for a clip")
        if self.needs_enrolment and speaker is None:
            kind = f" {'/'.join(sn.labels)}" if sn.labels else ""
            count = sn.clips if sn.mode == "enrol" else "all the speaker's"
            raise MmserError(f"this checkpoint standardises frames per speaker (trained with statistics of "
                             f"{count}{kind} clips per speaker): give{kind} enrolment clips of the same "
                             "speaker (mmser predict --enrol CLIPS, or Predictor.enrol)")
        if speaker is not None and not self.needs_enrolment:
            raise MmserError(NO_ENROLMENT)
        return speaker

    @contextmanager
    def keeping_frames(self, max_bytes: int | None = None):
        """Within the block, the pooled frames of each window encoded for its moments (:meth:`clip_moments`,
        :meth:`enrol`) are kept by the window's content, up to ``max_bytes`` (windows past that are encoded
        again), so a clip that is both an enrolment clip and predicted is encoded once. Predicted windows are
        not kept. They are dropped when the block ends; a block inside another keeps its own (the outer
        block's come back when it ends). ``max_bytes`` defaults to :func:`frame_memo_bytes`."""
        outer = self._frame_memo, self._frame_memo_room  # a block inside another keeps its own frames
        self._frame_memo, self._frame_memo_room = {}, frame_memo_bytes() if max_bytes is None else max_bytes
        try:
            yield self
        finally:
            self._frame_memo, self._frame_memo_room = outer

    def _pooled(self, wavs: list[np.ndarray], keep: bool = False) -> dict[str, list[np.ndarray]]:
        """Each audio encoder's pooled frames ``(L, T', D)`` (:meth:`FeatureSpec.pooled`) of a batch of 16 kHz
        windows, those :meth:`keeping_frames` holds taken from it; ``keep``: the others join it (while it has
        room)."""
        memo = self._frame_memo if self._frame_memo is not None and (keep or self._frame_memo) else None
        keys = [hashlib.blake2b(np.ascontiguousarray(w, np.float32).tobytes(), digest_size=16).digest()
                for w in wavs] if memo is not None else []  # windows hashed only when a memo can serve or take them
        out = {}
        for spec, enc in self.audio_encoders.items():
            todo = [i for i in range(len(wavs)) if memo is None or (spec, keys[i]) not in memo]
            encoded = enc.encode([wavs[i] for i in todo]) if todo else []
            fresh = dict(zip(todo, map(self.features.pooled, encoded)))
            out[spec] = [fresh[i] if i in fresh else memo[(spec, keys[i])] for i in range(len(wavs))]
            for i, pooled in fresh.items():
                if keep and memo is not None and pooled.nbytes <= self._frame_memo_room:
                    memo[(spec, keys[i])] = pooled
                    self._frame_memo_room -= pooled.nbytes
        return out

    def enrol(self, clips: list[str | Path | np.ndarray], batch_size: int = 8,
              sample_rate: int = SAMPLE_RATE) -> SpeakerMoments:
        """Frame statistics of one speaker from enrolment clips (paths or waveforms; other clips than those
        predicted). An unusable clip raises its error, naming the file."""
        return combine_speaker(self.enrol_parts(clips, batch_size, sample_rate))

    @torch.inference_mode()
    def enrol_parts(self, clips: list[str | Path | np.ndarray], batch_size: int = 8,
                    sample_rate: int = SAMPLE_RATE) -> list[SpeakerMoments]:
        """:meth:`enrol`'s checks, then each enrolment clip's own moments (combine them with
        :func:`combine_speaker`, leaving out a clip that is also predicted, as training does)."""
        if not self.needs_enrolment:
            raise MmserError(RUNNING_NO_ENROLMENT if self.accumulates_speaker else NO_ENROLMENT)
        if not clips:
            raise MmserError("no enrolment clips given")
        wanted = self.features.speaker_norm.clips
        if wanted is not None and len(clips) < wanted:
            warnings.warn(f"{len(clips)} enrolment clip(s) given; the checkpoint was trained with statistics of "
                          f"{wanted} clips per speaker, so fewer make noisier statistics",
                          stacklevel=3)  # the caller's line, past inference_mode's wrapper
        return self.clip_moments(clips, batch_size, sample_rate)

    @torch.inference_mode()
    def clip_moments(self, clips: list[str | Path | np.ndarray], batch_size: int = 8,
                     sample_rate: int = SAMPLE_RATE) -> list[SpeakerMoments]:
        """Each clip's own frame moments per audio encoder (its windows' pooled frames), the parts
        :meth:`enrol` combines; ``batch_size`` windows per encoder call."""
        step = int(self.window_s * SAMPLE_RATE)
        windows = [(i, w) for i, clip in enumerate(clips) for w in self._windows(self._load(clip, sample_rate)[0], step)]
        parts: list[dict[str, list[FrameMoments]]] = [{spec: [] for spec in self.audio_encoders} for _ in clips]
        with self._lock:
            for start in range(0, len(windows), batch_size):
                chunk = windows[start:start + batch_size]
                for spec, frames in self._pooled([w for _, w in chunk], keep=True).items():
                    for (i, _), f in zip(chunk, frames):
                        parts[i][spec].append(FrameMoments.of(f))
        return [{spec: FrameMoments.combine(p) for spec, p in clip.items()} for clip in parts]

    @staticmethod
    def _windows(wav: np.ndarray, step: int) -> list[np.ndarray]:
        """``wav`` cut into windows of ``step`` samples, a tail shorter than 0.5 s dropped (unless it is all)."""
        pieces = [wav[j:j + step] for j in range(0, len(wav), step)]
        return [p for p in pieces if len(p) >= 0.5 * SAMPLE_RATE] or pieces[:1]

    @torch.inference_mode()
    def window_probabilities(self, wavs: list[np.ndarray], transcripts: list[str | None],
                             speaker: Speaker = None) -> np.ndarray:
        """Member-averaged probabilities ``(B, 8)`` of a batch of 16 kHz windows: the bare encoder(s) + model
        forward; frames standardised with ``speaker`` (from :meth:`enrol`; a list: one per window) when given,
        or, for a :class:`RunningSpeaker`, window by window in order with the statistics so far. A member that trained
        the whole encoder takes the windows themselves (its encoder is part of it). A checkpoint trained with
        ``features.test_time_speeds`` also predicts each window played at those speeds, standardised with the
        window's own statistics (a copy never joins a running speaker's), and averages the probabilities."""
        speaker = self._speaker_state(speaker)
        encoded = self._pooled(wavs)
        if isinstance(speaker, RunningSpeaker):  # arrival order: each window's own moments join before it is standardised
            moments = {spec: [speaker.add(spec, f) for f in fs] for spec, fs in encoded.items()}
        elif isinstance(speaker, list):
            moments = {spec: [s[spec] for s in speaker] for spec in encoded}
        else:
            moments = {spec: [speaker[spec] if speaker else None] * len(wavs) for spec in encoded}
        tokens = self.text_encoder.encode([t or "" for t in transcripts]) if self.text_encoder else None
        probs = [self._member_probabilities(wavs, encoded, moments, tokens)]
        if self.features.test_time_speeds:
            from mmser.features.augment import apply_recipe, test_view_recipes  # torchaudio: only when used

            for recipe in test_view_recipes(self.features.test_time_speeds):
                copies = [apply_recipe(w, recipe) for w in wavs]
                probs.append(self._member_probabilities(copies, self._pooled(copies), moments, tokens))
        return np.mean(probs, axis=0)

    def _member_probabilities(self, wavs: list[np.ndarray], encoded: dict[str, list[np.ndarray]],
                              moments: dict[str, list[FrameMoments | None]], tokens) -> np.ndarray:
        """Member-averaged probabilities ``(B, 8)`` of windows ``wavs`` whose pooled encoder frames are
        ``encoded``, each window standardised with ``moments[encoder][i]``."""
        frames = {spec: [self.features.standardised(f, m) for f, m in zip(fs, moments[spec])]
                  for spec, fs in encoded.items()}
        probs = []
        for member in self.ckpt.members:
            audio = wavs if member.model.dims.reads_waveforms else frames.get(member.audio_encoder)
            items = [{"index": i, "target": 0, "audio": audio[i] if member.audio_encoder else None,
                      "text": tokens[i] if member.text_source else None} for i in range(len(wavs))]
            batch = {k: (v.to(self.device) if torch.is_tensor(v) else v) for k, v in collate(items).items()}
            probs.append(torch.softmax(member.model.forward_batch(batch).float(), -1).cpu().numpy())
        return np.average(probs, axis=0, weights=self.member_weights)

    @staticmethod
    def _load(audio: str | Path | np.ndarray, sample_rate: int) -> tuple[np.ndarray, str]:
        """A path or a waveform at ``sample_rate`` -> 16 kHz mono float32 by the one loader's rules."""
        if isinstance(audio, (str, Path)):
            return load_audio(audio), str(audio)
        return to_waveform(audio, sample_rate), "<waveform>"

    def predict(self, audio: str | Path | np.ndarray, transcript: str | None = None, sample_rate: int = SAMPLE_RATE,
                transcribe: bool = False, enrolment: list[str | Path | np.ndarray] | None = None,
                speaker: RunningSpeaker | None = None) -> Prediction:
        """Label and 8 probabilities for a clip (path, or waveform at ``sample_rate``: float in [-1, 1] or integer
        PCM, mono ``(n,)`` or ``(n, channels)``);
        ``enrolment``: other clips of the same speaker, for checkpoints that need them; ``speaker``: the
        speaker's statistics so far, for checkpoints trained with ``mode: running`` (a clip alone otherwise)."""
        if enrolment:
            if speaker is not None:
                raise MmserError("give enrolment clips or a running speaker, not both")
            audio, name = self._load(audio, sample_rate)  # each clip decoded once, to 16 kHz
            enrolled = [self._load(clip, sample_rate)[0] for clip in enrolment]
            sample_rate = SAMPLE_RATE
            # an enrolment clip that is the clip itself is left out, as training draws *other* clips
            others = [wav for wav in enrolled if not np.array_equal(wav, audio)]
            if not others:
                raise MmserError(f"{name}: {ONLY_SELF_ENROLLED}")
            speaker = self.enrol(others, sample_rate=sample_rate)
        result = self.predict_many([(audio, transcript)], sample_rate=sample_rate, transcribe=transcribe,
                                   speaker=speaker)[0]
        if isinstance(result, Exception):
            raise result
        return result

    def predict_many(self, clips: list[tuple[str | Path | np.ndarray, str | None]], batch_size: int = 8,
                     sample_rate: int = SAMPLE_RATE, transcribe: bool = False,
                     speaker: Speaker = None) -> list[Prediction | Exception]:
        """Predict many (clip, transcript) pairs, ``batch_size`` windows per encoder call; ``speaker``: the
        statistics from :meth:`enrol` of the one speaker of all these clips, or a list of them, one per clip
        (each clip's own speaker), required by checkpoints trained with enrolment and refused by others. A
        checkpoint trained with ``mode: running`` takes the clips as one speaker's, in order, continuing
        ``speaker`` (a :class:`RunningSpeaker`) when given, a new one otherwise.

        A clip that cannot be used yields its error (AudioError / MmserError) in its place; the others are
        still predicted.
        """
        if isinstance(speaker, list) and len(speaker) != len(clips):
            raise MmserError(f"{len(speaker)} speakers' moments were given for {len(clips)} clips: give one per clip")
        speaker = self._speaker_state(speaker)
        step = int(self.window_s * SAMPLE_RATE)
        results: list[Prediction | Exception | None] = [None] * len(clips)
        windows: list[tuple[int, np.ndarray, str | None]] = []  # (clip index, window, transcript)
        lengths: dict[int, int] = {}
        for i, (audio, transcript) in enumerate(clips):
            try:
                wav, source = self._load(audio, sample_rate)
                if self.needs_text and transcript is None:
                    if not transcribe:
                        raise MmserError(f"{source}: this is a fused/text model and needs a transcript "
                                         "(give --transcript TEXT, or --transcribe to use Whisper)")
                    transcript = self.transcribe(wav)
            except (AudioError, MmserError) as err:
                results[i] = err
                continue
            windows += [(i, p, transcript) for p in self._windows(wav, step)]
            lengths[i] = len(wav)
        window_probs: list[np.ndarray] = []
        with self._lock:
            for start in range(0, len(windows), batch_size):
                chunk = windows[start:start + batch_size]
                moments = [speaker[i] for i, _, _ in chunk] if isinstance(speaker, list) else speaker
                window_probs += list(self.window_probabilities([w for _, w, _ in chunk], [t for _, _, t in chunk],
                                                               moments))
        by_clip: dict[int, list[tuple[np.ndarray, int]]] = {}
        for (i, piece, _), probs in zip(windows, window_probs):
            by_clip.setdefault(i, []).append((probs, len(piece)))
        for i, parts in by_clip.items():
            probs = np.array([p for p, _ in parts])
            weights = np.array([n for _, n in parts], dtype=float)
            overall = (probs * weights[:, None]).sum(0) / weights.sum()
            details = []
            if len(parts) > 1:
                details = [{"start_s": round(k * self.window_s, 2), "label": EMOTIONS[int(np.argmax(p))],
                            "probabilities": {e: round(float(x), 6) for e, x in zip(EMOTIONS, p)}}
                           for k, p in enumerate(probs)]
            results[i] = Prediction(EMOTIONS[int(np.argmax(overall))],
                                    {e: round(float(x), 6) for e, x in zip(EMOTIONS, overall)},
                                    lengths[i] / SAMPLE_RATE, details)
        return results  # type: ignore[return-value]

    def timeline(self, audio: str | Path | np.ndarray, sample_rate: int = SAMPLE_RATE, transcribe: bool = False,
                 options=None, speaker: SpeakerMoments | RunningSpeaker | None = None, batch_size: int = 8):
        """Emotion per speech segment of a long recording (:mod:`mmser.timeline`): the recording cut by voice
        activity, each speech segment classified on its own audio and, for fused/text models, its own words
        (``transcribe``: Whisper's word timestamps; a single transcript cannot be split by time, so it is not
        accepted). Returns a :class:`~mmser.timeline.Timeline` covering the whole recording."""
        from mmser.timeline import TimelineOptions, Timeline, segments_of, words_in

        options = options or TimelineOptions()
        options.check()
        if self.needs_text and not transcribe:
            raise MmserError("a timeline of a fused/text model needs transcribe=True (--transcribe): each segment "
                             "gets the words Whisper times inside it; one transcript cannot be split by time")
        speaker = self._speaker_state(speaker)
        wav, _ = self._load(audio, sample_rate)
        segments = segments_of(wav, options)
        if self.needs_text:
            words_in(segments, self._asr_backend().words(wav))
        speech = [s for s in segments if s.status == "speech"]
        with self._lock:
            for start in range(0, len(speech), batch_size):
                chunk = speech[start:start + batch_size]
                pieces = [wav[int(s.start_s * SAMPLE_RATE):int(s.end_s * SAMPLE_RATE)] for s in chunk]
                probs = self.window_probabilities(pieces, [s.words for s in chunk], speaker)
                for s, p in zip(chunk, probs):
                    s.label = EMOTIONS[int(np.argmax(p))]
                    s.probabilities = {e: round(float(x), 6) for e, x in zip(EMOTIONS, p)}
        return Timeline(len(wav) / SAMPLE_RATE, segments)

    def _asr_backend(self):
        """The ASR given to the predictor, else Whisper tiny.en (loaded on first use)."""
        if self.asr is None:
            from mmser.features.asr import DEFAULT_ASR, build_asr

            self.asr = build_asr(DEFAULT_ASR)
        return self.asr

    def transcribe(self, wav: np.ndarray) -> str:
        """The words of ``wav`` (n,) at 16 kHz, by the predictor's ASR (Whisper tiny.en unless one was given)."""
        return self._asr_backend().transcribe(wav)
