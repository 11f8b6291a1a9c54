"""The feature store: a manifest's cached features as model inputs, shared by every fold and ablation cell.

Each row's input is read from the feature cache's memory-mapped safetensors shards and turned into a model
input exactly as :class:`~mmser.inference.Predictor` makes it, through the run's
:class:`~mmser.features.spec.FeatureSpec` (pooling, then per-speaker standardisation). ``features.store``
chooses how: ``lazy`` reads a row when a batch needs it (memory stays flat as the corpus grows, and
DataLoader workers read in parallel), ``memory`` reads every row once up front (faster on small corpora),
``auto`` takes ``memory`` while the cached features fit in ``features.memory_budget_gb`` and in half the
memory available (:func:`holds_in_memory`). Both modes are the same :class:`CachedRows` sequence; ``memory``
just materialises it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from mmser.config import WHOLE_ENCODER, finetune_depth
from mmser.errors import MmserError
from mmser.features.batching import FeatureDataset
from mmser.features.cache import GIGABYTE
from mmser.features.extract import extract
from mmser.features.speaker_norm import FrameMoments, population_prior, running_moments_of, speaker_moments_of
from mmser.features.spec import FeatureSpec
from mmser.features.waveform_rows import WaveformRows
from mmser.memory import available_bytes

MEMORY_SHARE = 0.5  # of the memory available now: the most features.store=auto loads up front


class ShardReader:
    """Reads single tensors of one safetensors shard with positioned reads (``os.pread``).

    A memory map would leave every page a run has touched resident in the process (and counted in its
    RSS) for as long as the shard stays open; positioned reads go through the page cache, which the kernel
    reclaims, so a lazy store's memory stays flat however large the cache. The header is parsed once.
    """

    DTYPES = {"F16": np.float16, "F32": np.float32}  # what the feature cache writes

    def __init__(self, path: str):
        try:
            self.fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise MmserError(f"{path}: this feature cache shard is gone (removed by `mmser cache prune` or by hand "
                             "while a run was using it); run again: whatever is missing is encoded again") from None
        (size,) = np.frombuffer(os.pread(self.fd, 8, 0), dtype="<u8")
        self.header = json.loads(os.pread(self.fd, int(size), 8))
        self.base = 8 + int(size)

    def get(self, key: str) -> np.ndarray:
        """The tensor ``key`` as a new, writable array (one copy, straight from the file)."""
        info = self.header[key]
        start, end = info["data_offsets"]
        buffer = np.empty(end - start, dtype=np.uint8)
        if os.preadv(self.fd, [buffer], self.base + start) != end - start:
            raise OSError(f"short read of {key} from a feature cache shard")
        return buffer.view(self.DTYPES[info["dtype"]]).reshape(info["shape"])

    def __del__(self):
        try:
            os.close(self.fd)
        except (OSError, AttributeError):
            pass


class CachedRows(Sequence):
    """Rows of one encoder's cache as model inputs, read on demand (picklable for DataLoader workers).

    ``locations[i]`` is (shard file, key) of row ``i``; audio rows are pooled by ``spec`` and, when
    ``moments`` is given, standardised with ``moments[i]``; text rows (``spec`` None) are returned as stored.
    Each process opens a shard once (:class:`ShardReader`).
    """

    def __init__(self, locations: list[tuple[str, str]], spec: FeatureSpec | None = None,
                 moments: list[FrameMoments] | None = None):
        self.locations, self.spec, self.moments = locations, spec, moments
        self._handles: dict[str, object] = {}
        self._pid = os.getpid()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_handles": {}}  # shard handles stay in the process that opened them

    def __len__(self) -> int:
        return len(self.locations)

    def raw(self, i: int) -> np.ndarray:
        """Row ``i`` as stored in the cache: ``(L, T, D)`` float16."""
        if self._pid != os.getpid():  # a forked worker: open its own handles
            self._handles, self._pid = {}, os.getpid()
        shard, key = self.locations[i]
        handle = self._handles.get(shard)
        if handle is None:
            handle = self._handles[shard] = ShardReader(shard)
        return handle.get(key)

    def __getitem__(self, i: int) -> np.ndarray:
        frames = self.raw(i)
        if self.spec is None:
            return frames
        pooled = self.spec.pooled(frames)
        return self.spec.standardised(pooled, None if self.moments is None else self.moments[i])


@dataclass
class FeatureStore:
    """Per-row model inputs of each audio encoder and each text source, for one manifest's rows."""

    spec: FeatureSpec
    utt_ids: list[str] = field(default_factory=list)  # row order of every sequence below
    labels: list[str] = field(default_factory=list)
    audio: dict[str, Sequence[np.ndarray]] = field(default_factory=dict)  # encoder spec -> (L, T, D) per row
    # encoder spec -> (L, T, D) per row, standardised with the test speakers' enrolment draw where it differs
    # (features.speaker_norm.test_labels, test_clips); used for test rows only
    test_audio: dict[str, Sequence[np.ndarray]] = field(default_factory=dict)
    text: dict[str, Sequence[np.ndarray]] = field(default_factory=dict)  # text source -> (L, N, D) per row
    encode_seconds: float = 0.0  # time spent encoding (0 when everything was cached)
    fingerprints: dict[str, str] = field(default_factory=dict)  # encoder spec -> weights fingerprint
    in_memory: bool = True  # whether the rows were loaded up front (features.store)
    # encoder spec -> (arch, pretrained state) of its top spec.finetune_top_layers blocks, or of the whole
    # encoder (WHOLE_ENCODER); fine-tuning only
    encoder_blocks: dict[str, tuple[dict, dict]] = field(default_factory=dict)
    # encoder spec -> (layers, dim) of the hidden states of an encoder whose rows are waveforms (WHOLE_ENCODER)
    waveform_shapes: dict[str, tuple[int, int]] = field(default_factory=dict)
    # what augmented variants of training clips are made with (mmser.features.variants)
    rows: pd.DataFrame | None = None  # the manifest rows, in utt_ids order
    extracted: dict[str, object] = field(default_factory=dict)  # encoder spec -> its ExtractResult (cache, keys, encoder)
    moments: dict[str, list[FrameMoments]] = field(default_factory=dict)  # encoder spec -> each row's speaker moments
    # features.speaker_norm.prior_clips: encoder spec -> each row's own (pooled) frame moments, and where its
    # rows are cached, to standardise them again from a fold's population (with_population_prior)
    own_moments: dict[str, list[FrameMoments]] = field(default_factory=dict)
    locations: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    # encoder spec -> the population statistics each speaker's running statistics start from (a checkpoint
    # carries them); empty until with_population_prior
    speaker_prior: dict[str, FrameMoments] = field(default_factory=dict)

    def with_population_prior(self, train_ids: Sequence[str]) -> "FeatureStore":
        """Under ``features.speaker_norm.prior_clips``: this store with every row's running statistics started
        from the population statistics of the clips ``train_ids`` (a fold's training rows, never its validation
        or test speakers'), which it keeps in :attr:`speaker_prior`. Itself otherwise."""
        sn = self.spec.speaker_norm
        if sn.prior_clips is None:
            return self
        position = {u: i for i, u in enumerate(self.utt_ids)}
        rows = [position[u] for u in train_ids]
        speakers = self.rows["speaker"].astype(str).tolist()
        audio, moments, prior = dict(self.audio), dict(self.moments), {}
        for name, own in self.own_moments.items():
            prior[name] = population_prior([own[i] for i in rows], sn.prior_clips)
            moments[name] = running_moments_of(own, speakers, prior=prior[name])
            audio[name] = _held(CachedRows(self.locations[name], self.spec, moments[name]), self.in_memory)
        return replace(self, audio=audio, moments=moments, speaker_prior=prior)

    def clip_durations(self) -> np.ndarray:
        """(N,) each row's duration in seconds from the manifest's ``duration_s`` (NaN where it has none)."""
        if self.rows is None or "duration_s" not in self.rows:
            return np.full(len(self.utt_ids), np.nan)
        return pd.to_numeric(self.rows["duration_s"], errors="coerce").to_numpy(dtype=np.float64)

    def audio_shape(self, encoder: str) -> tuple[int, int]:
        """(layers, dim) of ``encoder``'s frames."""
        if encoder in self.waveform_shapes:
            return self.waveform_shapes[encoder]
        first = self.audio[encoder][0]
        return int(first.shape[0]), int(first.shape[2])

    def text_shape(self, text_source: str) -> tuple[int, int]:
        """(layers, dim) of the text encoder's tokens."""
        first = self.text[text_source][0]
        return int(first.shape[0]), int(first.shape[2])

    def dataset(self, ids: tuple[str, ...] | list[str], encoder: str | None, text_source: str | None,
                test: bool = False, audio: Sequence[np.ndarray] | None = None) -> FeatureDataset:
        """The rows ``ids`` as a dataset of ``encoder`` frames and/or ``text_source`` tokens; ``test``: frames
        standardised under the test speakers' enrolment pool; ``audio``: the rows' frames read otherwise (one
        per id, e.g. with augmented variants)."""
        if encoder in self.own_moments and encoder not in self.speaker_prior:
            raise RuntimeError(f"{encoder}: features.speaker_norm.prior_clips is set; read the rows through "
                               "FeatureStore.with_population_prior(training rows)")
        index = pd.Series(range(len(self.utt_ids)), index=self.utt_ids)
        pos = index[list(ids)].values
        frames = self.test_audio.get(encoder, self.audio.get(encoder)) if test else self.audio.get(encoder)
        if audio is None and encoder:
            audio = RowSubset(frames, pos)
        text = RowSubset(self.text[text_source], pos) if text_source else None
        return FeatureDataset(list(ids), [self.labels[i] for i in pos], audio, text, self.clip_durations()[pos])


class RowSubset(Sequence):
    """``rows[positions[i]]`` for each ``i``, without copying the rows."""

    def __init__(self, rows: Sequence[np.ndarray], positions: np.ndarray):
        self.rows, self.positions = rows, positions

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.rows[int(self.positions[i])]


def enrolment_rows(df: pd.DataFrame, labels: tuple[str, ...] | None) -> list[bool] | None:
    """Which rows may serve as enrolment clips when only ``labels`` may (None: all rows)."""
    return None if labels is None else df["label"].isin(list(labels)).tolist()


def cache_bytes(locations: list[tuple[str, str]]) -> int:
    """Bytes of the cache shards that hold ``locations`` (an upper bound of their rows' size in memory)."""
    return sum(Path(shard).stat().st_size for shard in {shard for shard, _ in locations})


def load_store(df: pd.DataFrame, features_cfg, audio_specs: list[str], text_sources: list[str],
               progress: bool = True, finetune_top_layers: int = 0) -> FeatureStore:
    """Extract what is missing, then make every row's features available as model inputs (for models that
    fine-tune ``finetune_top_layers`` encoder blocks: unpooled, with those blocks' pretrained weights)."""
    from mmser.models.finetune import encoder_top_blocks

    spec = FeatureSpec.from_config(features_cfg, finetune_top_layers)
    sn = spec.speaker_norm
    store = FeatureStore(spec, df["utt_id"].tolist(), df["label"].tolist(), rows=df.reset_index(drop=True))
    located: dict[str, tuple[list[tuple[str, str]], FeatureSpec | None, str]] = {}  # name -> (locations, spec, kind)
    if finetune_top_layers == WHOLE_ENCODER:  # models that run the whole encoder read waveforms: nothing to extract
        for encoder_spec in audio_specs:
            add_waveform_rows(store, encoder_spec)
        audio_specs = []
    for encoder_spec in audio_specs:
        start = time.perf_counter()
        result = extract(df, encoder_spec, features_cfg, progress=progress)
        if result.computed:
            store.encode_seconds += time.perf_counter() - start
        store.fingerprints[encoder_spec] = result.encoder.fingerprint
        store.extracted[encoder_spec] = result
        if finetune_top_layers > 0:
            store.encoder_blocks[encoder_spec] = encoder_top_blocks(result.encoder, finetune_top_layers)
        located[encoder_spec] = (result.cache.locate(result.keys), spec, "audio")
    encoder = None
    for source in text_sources:
        start = time.perf_counter()
        result = extract(df, spec.text_encoder, features_cfg, text_source=source, progress=progress, encoder=encoder)
        encoder = result.encoder
        store.fingerprints[spec.text_encoder] = encoder.fingerprint
        if result.computed:
            store.encode_seconds += time.perf_counter() - start
        located[source] = (result.cache.locate(result.keys), None, "text")
    total = sum(cache_bytes(locations) for locations, _, _ in located.values())
    store.in_memory = holds_in_memory(features_cfg.store, total, features_cfg.memory_budget_gb)
    for name, (locations, row_spec, kind) in located.items():
        if kind == "text":
            store.text[name] = _held(CachedRows(locations), store.in_memory)
            continue
        rows = CachedRows(locations, row_spec)
        if not sn.per_speaker:  # off, or instance (each clip's own statistics, applied as rows are read)
            store.audio[name] = _held(rows, store.in_memory)
            continue
        own = [FrameMoments.of(row_spec.pooled(rows.raw(i))) for i in range(len(rows))]  # each clip's own moments
        if sn.prior_clips is not None:  # the statistics start from a fold's population: with_population_prior
            store.own_moments[name], store.locations[name] = own, locations
            store.audio[name] = rows  # unstandardised, for shapes only (dataset() refuses them)
            continue
        speakers = df["speaker"].astype(str).tolist()
        if sn.mode == "running":
            moments = running_moments_of(own, speakers)
        else:
            moments = speaker_moments_of(own, speakers, sn.clips, may_enrol=enrolment_rows(df, sn.labels))
        store.moments[name] = moments
        store.audio[name] = _held(CachedRows(locations, row_spec, moments), store.in_memory)
        if sn.test_differs:  # test speakers enrolled otherwise (features.speaker_norm.test_labels / test_clips)
            moments = speaker_moments_of(own, speakers, sn.test_enrolment_clips,
                                         may_enrol=enrolment_rows(df, sn.test_enrolment_labels))
            store.test_audio[name] = _held(CachedRows(locations, row_spec, moments), store.in_memory)
    return store


def add_waveform_rows(store: FeatureStore, encoder_spec: str) -> None:
    """The store's rows as waveforms for models that train the whole ``encoder_spec`` (nothing is encoded:
    the encoder is opened for its pretrained weights only)."""
    from mmser.models.whole_encoder import max_samples, whole_encoder_weights

    encoder = store.spec.open_audio_encoder(encoder_spec)
    arch, state = whole_encoder_weights(encoder)
    store.encoder_blocks[encoder_spec] = (arch, state)
    store.fingerprints[encoder_spec] = encoder.fingerprint
    store.waveform_shapes[encoder_spec] = (int(encoder.num_layers), int(encoder.dim))
    store.audio[encoder_spec] = WaveformRows(store.rows["path"].tolist(), max_samples(arch))


def holds_in_memory(mode: str, cache_bytes: int, budget_gb: float) -> bool:
    """Whether a run loads its rows up front (``features.store``): ``memory`` always, ``lazy`` never, ``auto``
    while the cache's ``cache_bytes`` fit both ``budget_gb`` and :data:`MEMORY_SHARE` of the memory available
    now (:func:`~mmser.memory.available_bytes`, container limits included), so a large budget on a small
    or busy machine (several ranks loading at once) falls back to lazy reads instead of running out of memory."""
    if mode != "auto":
        return mode == "memory"
    available = available_bytes()
    room = budget_gb * GIGABYTE if available is None else min(budget_gb * GIGABYTE, available * MEMORY_SHARE)
    return cache_bytes <= room


def _held(rows: CachedRows, in_memory: bool) -> Sequence[np.ndarray]:
    """``rows`` read once into a list (memory mode), or left to be read on demand (lazy mode)."""
    return [rows[i] for i in range(len(rows))] if in_memory else rows


def store_for(rows: pd.DataFrame, cfg, kinds: list[str], text_sources: list[str], progress: bool = True) -> FeatureStore:
    """The store that models of ``kinds`` read under the run config ``cfg`` (its ``features``, and the encoder
    blocks ``model.finetune.top_layers`` trains): the audio encoders unless all are text-only, the text
    sources unless all are audio-only."""
    audio_specs = list(cfg.features.audio_encoders) if any(k != "text_only" for k in kinds) else []
    texts = list(text_sources) if any(k != "audio_only" for k in kinds) else []
    depth = finetune_depth(cfg.model.finetune) if audio_specs else 0
    return load_store(rows, cfg.features, audio_specs, texts, progress, depth)
