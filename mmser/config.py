"""Configuration: dataclass schema + YAML files + ``key=value`` overrides (OmegaConf), validated once.

``load_config(files, overrides)`` merges, in order: the structured schema below, ``configs/local.yaml``
(git-ignored machine paths) when present, each YAML file (an experiment lists ``includes:`` — base,
data, model — relative to itself, merged before it; included files include nothing), then the
command-line overrides. Unknown keys and wrong types are errors, and :func:`validate` then checks the
whole tree (enums, ranges, cross-field rules, label names, encoder specs) before any work starts:
every problem is reported at once, each naming its key. Required values are ``???``;
:func:`require` and :func:`check_paths` fail fast naming the key.

Each default is stated once, here; YAMLs state only what they change.
"""

from __future__ import annotations

import copy
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mmser.errors import MmserError
from mmser.labels import EMOTIONS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "configs"
LOCAL_CONFIG = CONFIG_DIR / "local.yaml"

# The closed sets a config value must come from (the library's registries use the same names).
MODEL_KINDS = ("audio_only", "text_only", "concat", "cross_attn")
# random_utterance is speaker-dependent (every speaker in train and test): allowed only to show how much it
# overstates, and flagged wherever its results appear
PROTOCOLS = ("leave_one_session_out", "leave_speakers_out", "file", "random_utterance")
WHISPER_WINDOWS = ("30s", "clip")
STORE_MODES = ("auto", "memory", "lazy")
DEVICE_SPEC = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")  # resolved by mmser.devices.resolve_device
SPEAKER_NORM_MODES = ("off", "instance", "running", "transductive", "enrol")
# speaker_norm modes whose statistics come from other clips of the speaker (not the clip alone)
PER_SPEAKER_MODES = ("running", "transductive", "enrol")
# ... of which those predicting only with enrolment clips (running accumulates the clips it is given)
ENROLMENT_MODES = ("transductive", "enrol")
# features.augment.noise (mmser.features.augment draws them); telephone: the clip band-limited as an 8 kHz line
# carries it, with white noise in that band; telephone_g711: a digital line (300-3400 Hz, noise in it, 8-bit mu-law)
NOISE_KINDS = ("white", "pink", "babble", "telephone", "telephone_g711")
AUDIO_ENCODER_KINDS = ("hf", "whisper", "whisper-ct2", "faster-whisper", "mfcc")
TEXT_ENCODER_KINDS = ("bert",)
ASR_KINDS = ("faster-whisper", "openai-whisper")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
PRECISIONS = ("auto", "32-true", "32", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true")
CLASSICAL_MODELS = ("logreg", "svm_rbf", "random_forest")  # mmser.recipes.baseline
CLASSICAL_FEATURES = ("egemaps_mfcc", "librosa")  # mmser.features.classical
CELL_KEYS = ("train.", "trainer.", "model.")  # what ablation_overrides may change per cell
SHARED_MODEL_KEYS = ("model.kind=", "model.finetune.top_layers=")  # ... except these (they shape the shared features)
LAYER_SELECTION = re.compile(r"^(all|last|-?\d+(\s*,\s*-?\d+)*)$")
# model.finetune.top_layers=all as FeatureSpec and ModelDims hold it: the whole encoder trains, from the waveform
WHOLE_ENCODER = -1


# ${project_root:} in a YAML: the repository folder, so that files shipped in configs/ (e.g. folds files) are
# found from any working directory
if not OmegaConf.has_resolver("project_root"):
    with warnings.catch_warnings():  # omegaconf 2.4 renames the registration call; 2.3 has only this one
        warnings.simplefilter("ignore", UserWarning)
        OmegaConf.register_new_resolver("project_root", lambda: PROJECT_ROOT.as_posix())


class ConfigError(MmserError):
    """A configuration that cannot be used, with the file or key at fault."""


@dataclass
class DataConfig:
    name: str = "unnamed"  # run name used in output paths
    manifest: str = MISSING  # manifest CSV/Parquet written by `mmser prepare`
    # several corpora in one run, instead of `manifest`: their rows together, speaker ids qualified by corpus
    # ("<corpus>:<speaker>"), folds speaker-disjoint across all of them, tables with a row per corpus
    manifests: Optional[List[str]] = None
    test_manifest: Optional[str] = None  # cross-corpus: train on `manifest`, test on this one (shared labels only)
    classes: Optional[List[str]] = None  # classes the head may predict (logits of others masked); None = those present
    text_source: str = "gold"  # "gold" (the `transcript` column) or an ASR column written by `mmser transcribe`
    improvised_only: bool = False  # IEMOCAP: keep improvised dialogs only (scripted sentences repeat)


@dataclass
class PrepareConfig:
    label_map: Dict[str, str] = field(default_factory=dict)  # raw label -> shared label, on top of the corpus map
    exclude_labels: Optional[List[str]] = None  # raw labels left out (None = corpus default, e.g. IEMOCAP fru/oth/xxx)
    skip_bad: bool = False  # write the manifest without bad files (+ a report) instead of stopping
    workers: int = 0  # processes decoding the audio (0: one per available core, at most 8)


@dataclass
class SplitConfig:
    # leave_one_session_out | leave_speakers_out | file | random_utterance (SPEAKER-DEPENDENT: random utterance
    # folds, each speaker in train and test; flagged in the fold printout, metrics.json and every table row)
    protocol: str = "leave_speakers_out"
    speakers_per_fold: int = 3  # leave_speakers_out: speakers held out per fold
    val_speakers: int = 2  # whole training speakers held out for early stopping (0 = none, fixed epochs)
    folds_file: Optional[str] = None  # protocol=file: CSV with columns speaker,fold
    shuffle: bool = False  # shuffle speakers before grouping (seeded); False keeps sorted order
    seed: int = 0
    utterance_folds: int = 5  # random_utterance: folds (5 = 80 % train / 20 % test)


@dataclass
class SpeakerNormConfig:
    """Per-speaker standardisation of acoustic frames (mmser/features/speaker_norm.py); labels never used."""

    # off: frames as encoded; instance: each clip (each prediction window) standardised with its own frames'
    # statistics, so no other clip of the speaker is needed (`mmser train` and predict as usual);
    # running: statistics of the speaker's clips so far (this one included) as they arrive, no enrolment
    # (`mmser predict` on several clips of one speaker standardises each with the clips before it);
    # transductive: statistics over all the speaker's clips, the clip itself included
    # (cross-validation only: `mmser train` refuses it); enrol: statistics of `clips` *other* clips of the
    # speaker, as `mmser predict --enrol` gets from enrolment clips
    mode: str = "off"
    clips: Optional[int] = None  # enrol: enrolment clips per speaker (K)
    # enrol: draw the enrolment clips only among these labels (e.g. [neutral, calm]); None: any of the
    # speaker's other clips. The label of the clip being standardised is never used.
    labels: Optional[List[str]] = None
    # cross-validation only: the test speakers' enrolment pool when it differs from training's (a model
    # trained with enrolment of any emotion, enrolled with [neutral, calm] speech); None: as training
    test_labels: Optional[List[str]] = None
    # cross-validation only: the test speakers' enrolment clips per speaker when it differs from training's `clips`
    # (how a model trained with 59 does with 10 at test time); None: as training
    test_clips: Optional[int] = None
    # running: each speaker's statistics start from the training speakers' (the population's), counted as this
    # many clips, so a speaker's first clips are standardised mostly as the population is (Kaldi's online CMVN
    # with global statistics); None: a speaker's first clip gets its own statistics alone
    prior_clips: Optional[float] = None


@dataclass
class AugmentConfig:
    """Training-side augmentation (mmser/features/augment.py, mmser/training/frame_augment.py). Validation and
    test clips are never augmented."""

    # waveform: augmented copies per training clip (0 = off), encoded once and cached under (clip hash, recipe);
    # in each epoch a training clip is read as itself or as one of its copies, drawn at random
    variants: int = 0
    noise: List[str] = field(default_factory=lambda: ["white", "pink", "babble"])  # kinds drawn from (babble: other
    # training speakers' clips of the same fold; telephone: the clip band-limited to 4 kHz, white noise in that band;
    # telephone_g711: a digital line, the 300-3400 Hz voice band and 8-bit mu-law)
    snr_db: List[float] = field(default_factory=lambda: [5.0, 20.0])  # dB, [low, high] of the noise's SNR
    speed: List[float] = field(default_factory=lambda: [0.9, 1.0, 1.1])  # speed factors drawn from
    pitch_semitones: float = 0.0  # pitch shift drawn from [-x, x] semitones (0 = none)
    gain_db: float = 6.0  # gain drawn from [-x, x] dB
    seed: int = 0  # recipe draws
    # feature level, on the cached frames of each training batch
    time_mask: float = 0.0  # fraction of each clip's frames zeroed, in spans of up to 10 frames
    channel_mask: float = 0.0  # fraction of feature channels zeroed (the same channels over the clip)
    mixup: float = 0.0  # alpha of Beta(alpha, alpha): each clip mixed with another clip of its class (0 = off)


@dataclass
class FeaturesConfig:
    cache_dir: str = "cache/features"  # feature cache root (shared by all runs)
    audio_encoders: List[str] = field(default_factory=lambda: ["faster-whisper:tiny.en"])  # encoder specs
    text_encoder: str = "bert:minilm"  # encoder spec for token embeddings
    whisper_window: str = "30s"  # "30s": pad to Whisper's 30 s input (as trained); "clip": encode the clip only (faster)
    frame_stride: int = 1  # average every N encoder frames before the model (4: 50 Hz -> 12.5 Hz), cache unchanged
    audio_layers: str = "all"  # which hidden states: "all", "last", or comma-separated indices (negative allowed)
    text_layers: str = "last"
    device: str = "cpu"  # encoders: cpu | cuda | cuda:N | auto (CUDA when there is one)
    num_threads: int = 0  # torch intra-op threads (0 = leave torch's default)
    batch_size: int = 8  # clips per encoder batch (bucketed by length)
    shard_size: int = 256  # clips per cache shard
    max_text_tokens: int = 64  # text tokens kept per utterance
    # how a run holds its features: "memory" loads every row's model input once (fastest for small corpora),
    # "lazy" reads each row from the memory-mapped cache shards when a batch needs it (memory does not grow
    # with the corpus), "auto" picks memory while the cached features fit in memory_budget_gb and in half the
    # memory available when the run starts
    store: str = "auto"
    memory_budget_gb: float = 2.0  # GB, auto: the largest cache a run loads into memory
    speaker_norm: SpeakerNormConfig = field(default_factory=SpeakerNormConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # test-time augmentation: each predicted clip (cross-validation's validation and test clips, and every clip
    # `mmser predict`, serve and the robustness runs see) is also played at these speeds (e.g. [0.9, 1.1]),
    # each copy encoded, standardised with the clip's own speaker statistics, and the probabilities of the clip
    # and its copies averaged; [] = the clip alone. Training and early stopping read the clips as they are.
    test_time_speeds: List[float] = field(default_factory=list)


@dataclass
class ASRConfig:
    models: List[str] = field(default_factory=lambda: ["faster-whisper:tiny.en"])  # transcript sources for ablations
    language: Optional[str] = "en"  # None = detect (multilingual models)
    beam_size: int = 5
    batch_size: int = 8  # clips decoded together (faster-whisper); 1 = one clip at a time
    device: str = "cpu"  # cpu | cuda | cuda:N | auto


@dataclass
class FusionConfig:
    num_heads: int = 4  # attention heads of the cross-modal aligner (must divide model.hidden_dim)
    dropout: float = 0.1
    num_layers: int = 1  # stacked aligner blocks


@dataclass
class FinetuneConfig:
    """Training the audio encoder's top blocks with the head (mmser/models/finetune.py)."""

    # K top transformer blocks trained (0: frozen encoder). The frozen bottom's output is read from the
    # feature cache, so an epoch runs only the top K blocks; needs features.audio_layers=all, whisper
    # encoders with features.whisper_window=clip (the cache holds each clip's real frames only) and
    # features.speaker_norm.mode=off. "all": the whole encoder trains from the waveform (no feature cache;
    # batches of audio, the encoder's weights in the checkpoint; for GPUs), same requirements
    top_layers: Any = 0
    lr: float = 5e-5  # learning rate of the encoder blocks (the head uses train.lr)
    warmup_ratio: float = 0.1  # fraction of steps with linear warm-up of the blocks' learning rate


@dataclass
class ModelConfig:
    kind: str = "cross_attn"  # audio_only | text_only | concat | cross_attn
    hidden_dim: int = 256  # projection size of each modality
    dropout: float = 0.2
    fusion: FusionConfig = field(default_factory=FusionConfig)
    init_from_audio_only: bool = False  # fused models: start head + audio projection from the fold's audio-only run
    # fused models started from an audio-only one: keep its audio branch and head fixed and train only the
    # text branch and the fusion (the starting model stays a model-selection candidate either way)
    freeze_audio_branch: bool = False
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    # a 1D-CNN front end over the audio frames (two conv layers, kernel 5) before the projection, with this many
    # channels (0 = none): seed 000's baseline on 40 MFCC frames (features.audio_encoders: [mfcc:40])
    audio_cnn_channels: int = 0


@dataclass
class TrainConfig:
    max_epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup_ratio: float = 0.1  # fraction of steps with linear warm-up before the cosine decay
    patience: int = 8  # early stopping on validation UA (training speakers only)
    accumulate_grad_batches: int = 1
    class_weighted: bool = True  # cross-entropy weighted by inverse class frequency of the training side
    label_smoothing: float = 0.0
    seed: int = 0
    num_workers: int = 0
    # > 0: each batch holds clips of similar duration, sorted within pools of this many batches (less padding:
    # less compute per epoch, most on GPUs and on corpora of mixed durations; mmser/training/length_buckets.py);
    # 0: batches drawn at random
    length_buckets: int = 0
    ensemble_seeds: int = 1  # models trained per fold with different seeds, probabilities averaged
    max_per_class: Optional[int] = None  # keep at most N training examples per class (data-efficiency curves)
    # models that start trained (fused from audio-only): the best trained epoch replaces the start only when
    # its validation UA beats the start's with a one-sided paired bootstrap p-value below this divided by
    # the number of epochs it was chosen from (Bonferroni); None: any gain replaces it
    replace_start_p: Optional[float] = None


@dataclass
class TrainerConfig:
    accelerator: str = "auto"  # cpu | gpu | auto
    devices: Any = 1  # int or "auto"; >1 with strategy=ddp for multi-GPU
    strategy: str = "auto"
    precision: str = "auto"  # auto: bf16/16-mixed on GPU, 32-true on CPU
    enable_progress_bar: bool = True


@dataclass
class ClassicalConfig:
    """``mmser baseline``: a classical model on one feature vector per clip, its setting chosen per fold on the
    validation speakers (mmser/recipes/baseline.py)."""

    model: str = "logreg"  # logreg | svm_rbf | random_forest
    features: str = "egemaps_mfcc"  # egemaps_mfcc (openSMILE + MFCC statistics) | librosa (MFCC, chroma, contrast, tonnetz)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    asr: ASRConfig = field(default_factory=ASRConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    classical: ClassicalConfig = field(default_factory=ClassicalConfig)
    output_dir: str = "runs/${data.name}/${model.kind}"
    ablation: List[str] = field(default_factory=lambda: list(MODEL_KINDS))  # model kinds of `mmser ablate`
    # per model kind, key=value overrides for that kind's ablation cells (e.g. fewer epochs for fused cells
    # that start from the audio-only model): the whole ablation stays one YAML
    ablation_overrides: Dict[str, List[str]] = field(default_factory=dict)
    text_sources: List[str] = field(default_factory=lambda: ["gold"])  # ablation: each transcript source


# ----------------------------------------------------------------------------------------------- loading
def _read_yaml(path: Path, included_from: Path | None = None) -> list[tuple[Path, DictConfig]]:
    """The YAML at ``path`` preceded by its ``includes:`` (one level: an included file includes nothing), each
    with its file."""
    path = path.resolve()
    if not path.is_file():
        where = f" (included from {included_from})" if included_from else ""
        raise ConfigError(f"config file not found: {path}{where}")
    try:
        node = OmegaConf.load(path)
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(node, DictConfig):
        raise ConfigError(f"{path}: top level must be a mapping")
    includes = node.pop("includes", []) or []
    if includes and included_from is not None:
        raise ConfigError(f"{path}: included from {included_from}, so it may not include others "
                          "(configs compose one level deep: base + data + model + experiment)")
    layers: list[tuple[Path, DictConfig]] = []
    for inc in includes:
        layers += _read_yaml(path.parent / inc, path)
    return layers + [(path, node)]


def merge_overrides(cfg: DictConfig, overrides: list[str] | None) -> DictConfig:
    """``cfg`` with ``key=value`` overrides merged in (types checked against the schema)."""
    if not overrides:
        return cfg
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"overrides must be key=value, got {bad}")
    return _merged(cfg, OmegaConf.from_dotlist(list(overrides)), "overrides")


def load_config(
    files: list[str | Path] | None = None, overrides: list[str] | None = None, use_local: bool = True
) -> DictConfig:
    """Merge schema, local.yaml, ``files`` and ``overrides`` into one config, validated (:func:`validate`)."""
    schema = OmegaConf.structured(Config)
    layers: list[tuple[Path, DictConfig]] = []
    if use_local and LOCAL_CONFIG.is_file():
        layers += _read_yaml(LOCAL_CONFIG)
    for file in files or []:
        layers += _read_yaml(Path(file))
    for file, layer in layers:
        schema = _merged(schema, layer, str(file))
    cfg = merge_overrides(schema, overrides)
    if cfg.features.speaker_norm.mode == "False":  # YAML 1.1 reads a bare `off` (file or override) as false
        cfg.features.speaker_norm.mode = "off"
    validate(cfg)
    return cfg


def _merged(cfg: DictConfig, layer: DictConfig, where: str) -> DictConfig:
    """``layer`` (from ``where``: a file or the overrides) merged over ``cfg``; a ConfigError naming the key for
    anything the schema refuses, including a mapping or list given where the other (or a single value) belongs."""
    try:
        return OmegaConf.merge(cfg, layer)
    except (OmegaConfBaseException, TypeError) as err:  # omegaconf raises a bare TypeError for list <-> mapping
        mismatch = _shape_mismatch(OmegaConf.to_container(cfg, resolve=False),
                                   OmegaConf.to_container(layer, resolve=False))
        if mismatch:
            key, want, value = mismatch
            raise ConfigError(f"invalid config ({where}): key {key!r}: {want} expected, got {value!r}") from None
        if isinstance(err, TypeError):
            raise
        raise ConfigError(f"invalid config ({where}): {_describe(err)}") from None


def _shape_mismatch(base: dict, layer: dict, prefix: str = "") -> tuple[str, str, Any] | None:
    """The first key of ``layer`` whose value is a mapping, a list or a single value where ``base``'s is another
    of the three: (dotted key, the shape expected, the value given); None when there is none."""
    def shape(value: Any) -> str:
        return "a mapping" if isinstance(value, dict) else "a list" if isinstance(value, list) else "a single value"

    for key, value in layer.items():
        if not isinstance(base, dict) or base.get(key) is None or isinstance(base[key], str) and base[key] == "???":
            continue  # unknown, optional or unset: the schema's own check names it
        want = base[key]
        if shape(want) != shape(value):
            return f"{prefix}{key}", shape(want), value
        if isinstance(value, dict):
            found = _shape_mismatch(want, value, f"{prefix}{key}.")
            if found:
                return found
    return None


def _describe(err: OmegaConfBaseException) -> str:
    key = getattr(err, "full_key", None)
    msg = str(err).splitlines()[0]
    return f"key {key!r}: {msg}" if key else msg


# ----------------------------------------------------------------------------------------------- validation
def encoder_spec_problem(spec: Any, kinds: tuple[str, ...]) -> str | None:
    """Why ``spec`` is not ``KIND:NAME`` with KIND in ``kinds`` (None when it is)."""
    kind, colon, name = str(spec).partition(":")
    if not colon or not name.strip():
        return f"{spec!r} is not KIND:NAME (e.g. {kinds[0]}:...)"
    if kind not in kinds:
        return f"{spec!r}: unknown kind {kind!r}; use one of {list(kinds)}"
    return None


def _labels_problem(labels: Any) -> str | None:
    unknown = [x for x in (labels or []) if x not in EMOTIONS]
    return f"unknown label(s) {unknown}; the labels are {list(EMOTIONS)}" if unknown else None


def _is_set(cfg: DictConfig, key: str) -> bool:
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return node is not None and not OmegaConf.is_missing(node, leaf) and node[leaf] is not None


def config_problems(cfg: DictConfig) -> list[str]:
    """Every value of ``cfg`` that cannot work, as ``key: reason`` lines (empty when the config is usable)."""
    problems: list[str] = []

    def check(ok: bool, key: str, reason: str) -> None:
        if not ok:
            problems.append(f"{key}: {reason}")

    def one_of(key: str, value: Any, allowed: tuple[str, ...]) -> None:
        check(value in allowed, key, f"{value!r} is not one of {list(allowed)}")

    d, s, f, m, t = cfg.data, cfg.split, cfg.features, cfg.model, cfg.train
    # data
    if d.manifests is not None:
        check(len(d.manifests) >= 1, "data.manifests", "name at least one manifest (or use data.manifest)")
        check(not _is_set(cfg, "data.manifest"), "data.manifests",
              "give data.manifest (one corpus) or data.manifests (several), not both")
        check(d.test_manifest is None, "data.test_manifest", "not with data.manifests (cross-corpus takes one "
              "training manifest)")
    if d.classes is not None:
        check(_labels_problem(d.classes) is None, "data.classes", str(_labels_problem(d.classes)))
        check(len(d.classes) >= 2, "data.classes", "a classifier needs at least 2 classes")
    check(d.text_source == "gold" or str(d.text_source).startswith("asr_"), "data.text_source",
          f"{d.text_source!r}: use gold or an asr_* column written by `mmser transcribe`")
    for src in cfg.text_sources:
        check(src == "gold" or str(src).startswith("asr_"), "text_sources",
              f"{src!r}: use gold or an asr_* column written by `mmser transcribe`")
    # prepare
    bad_targets = {raw: name for raw, name in cfg.prepare.label_map.items() if name not in EMOTIONS}
    check(not bad_targets, "prepare.label_map", f"targets {bad_targets} are not labels; use {list(EMOTIONS)}")
    check(cfg.prepare.workers >= 0, "prepare.workers", f"{cfg.prepare.workers} must be >= 0 (0: one per core)")
    # split
    one_of("split.protocol", s.protocol, PROTOCOLS)
    check(s.speakers_per_fold >= 1, "split.speakers_per_fold", f"{s.speakers_per_fold} must be >= 1")
    check(s.val_speakers >= 0, "split.val_speakers", f"{s.val_speakers} must be >= 0 (0 = fixed epochs)")
    check(s.utterance_folds >= 2, "split.utterance_folds", f"{s.utterance_folds} must be >= 2")
    # features
    check(len(f.audio_encoders) >= 1, "features.audio_encoders", "name at least one audio encoder")
    for spec in f.audio_encoders:
        problem = encoder_spec_problem(spec, AUDIO_ENCODER_KINDS)
        check(problem is None, "features.audio_encoders", str(problem))
    problem = encoder_spec_problem(f.text_encoder, TEXT_ENCODER_KINDS)
    check(problem is None, "features.text_encoder", str(problem))
    one_of("features.whisper_window", f.whisper_window, WHISPER_WINDOWS)
    check(f.frame_stride >= 1, "features.frame_stride", f"{f.frame_stride} must be >= 1")
    for key in ("audio_layers", "text_layers"):
        value = str(f[key]).strip().lower()
        check(bool(LAYER_SELECTION.match(value)), f"features.{key}",
              f"{f[key]!r}: use all, last or comma-separated integers")
    for key in ("batch_size", "shard_size", "max_text_tokens"):
        check(f[key] >= 1, f"features.{key}", f"{f[key]} must be >= 1")
    check(f.num_threads >= 0, "features.num_threads", f"{f.num_threads} must be >= 0 (0 = torch's default)")
    one_of("features.store", f.store, STORE_MODES)
    for key, value in (("features.device", f.device), ("asr.device", cfg.asr.device)):
        check(bool(DEVICE_SPEC.match(str(value))), key, f"{value!r}: use cpu, cuda, cuda:N or auto")
    check(f.memory_budget_gb >= 0, "features.memory_budget_gb", f"{f.memory_budget_gb} must be >= 0")
    problems += speaker_norm_problems(f.speaker_norm)
    problems += augment_problems(f.augment)
    problems += test_time_problems(f)
    # asr
    for spec in cfg.asr.models:
        problem = encoder_spec_problem(spec, ASR_KINDS)
        check(problem is None, "asr.models", str(problem))
    check(cfg.asr.beam_size >= 1, "asr.beam_size", f"{cfg.asr.beam_size} must be >= 1")
    check(cfg.asr.batch_size >= 1, "asr.batch_size", f"{cfg.asr.batch_size} must be >= 1")
    # model
    one_of("model.kind", m.kind, MODEL_KINDS)
    check(m.hidden_dim >= 1, "model.hidden_dim", f"{m.hidden_dim} must be >= 1")
    check(m.audio_cnn_channels >= 0, "model.audio_cnn_channels", f"{m.audio_cnn_channels} must be >= 0 (0 = none)")
    check(m.fusion.num_heads >= 1 and m.hidden_dim % max(m.fusion.num_heads, 1) == 0, "model.fusion.num_heads",
          f"{m.fusion.num_heads} heads must divide model.hidden_dim={m.hidden_dim}")
    check(m.fusion.num_layers >= 1, "model.fusion.num_layers", f"{m.fusion.num_layers} must be >= 1")
    for key, value in (("model.dropout", m.dropout), ("model.fusion.dropout", m.fusion.dropout)):
        check(0.0 <= value < 1.0, key, f"{value} must be in [0, 1)")
    problems += finetune_problems(cfg)
    # train
    for key in ("max_epochs", "batch_size", "ensemble_seeds", "accumulate_grad_batches"):
        check(t[key] >= 1, f"train.{key}", f"{t[key]} must be >= 1")
    check(t.lr > 0, "train.lr", f"{t.lr} must be > 0")
    check(t.weight_decay >= 0, "train.weight_decay", f"{t.weight_decay} must be >= 0")
    check(0.0 <= t.warmup_ratio < 1.0, "train.warmup_ratio", f"{t.warmup_ratio} must be in [0, 1)")
    check(t.patience >= 0, "train.patience", f"{t.patience} must be >= 0")
    check(0.0 <= t.label_smoothing < 1.0, "train.label_smoothing", f"{t.label_smoothing} must be in [0, 1)")
    check(t.num_workers >= 0, "train.num_workers", f"{t.num_workers} must be >= 0")
    check(t.length_buckets >= 0, "train.length_buckets", f"{t.length_buckets} must be >= 0 (0 = random batches)")
    if t.max_per_class is not None:
        check(t.max_per_class >= 1, "train.max_per_class", f"{t.max_per_class} must be >= 1")
    if t.replace_start_p is not None:
        check(0.0 < t.replace_start_p < 1.0, "train.replace_start_p", f"{t.replace_start_p} must be in (0, 1)")
    # classical baselines
    one_of("classical.model", cfg.classical.model, CLASSICAL_MODELS)
    one_of("classical.features", cfg.classical.features, CLASSICAL_FEATURES)
    # trainer
    one_of("trainer.accelerator", cfg.trainer.accelerator, ACCELERATORS)
    one_of("trainer.precision", cfg.trainer.precision, PRECISIONS)
    # ablation
    for kind in cfg.ablation:
        one_of("ablation", kind, MODEL_KINDS)
    for kind, overrides in cfg.ablation_overrides.items():
        one_of("ablation_overrides", kind, MODEL_KINDS)
        shared = [o for o in overrides if not str(o).startswith(CELL_KEYS) or str(o).startswith(SHARED_MODEL_KEYS)]
        check(not shared, f"ablation_overrides.{kind}",
              f"{shared}: a cell may change only {list(CELL_KEYS)} keys, not model.kind or "
              "model.finetune.top_layers (the cells share features and folds)")
        try:
            cell = merge_overrides(cfg, list(overrides))
        except ConfigError as err:
            problems.append(f"ablation_overrides.{kind}: {err}")
            continue
        problems += [f"ablation_overrides.{kind}: {p}" for p in config_problems(_without_cell_overrides(cell))]
    return problems


def _without_cell_overrides(cfg: DictConfig) -> DictConfig:
    cell = copy.deepcopy(cfg)
    cell.ablation_overrides = {}
    return cell


def _names_whole_encoder(top_layers: Any) -> bool:
    return str(top_layers).strip().lower() == "all"


def finetune_depth(finetune_cfg) -> int:
    """``model.finetune.top_layers`` (validated) as FeatureSpec and ModelDims hold it: the number of top blocks
    trained, 0 for a frozen encoder, :data:`WHOLE_ENCODER` for ``all``."""
    value = finetune_cfg.top_layers
    return WHOLE_ENCODER if _names_whole_encoder(value) else int(value)


def finetune_problems(cfg: DictConfig) -> list[str]:
    """What is wrong with ``model.finetune`` given the features it would fine-tune on."""
    ft, f, key = cfg.model.finetune, cfg.features, "model.finetune"
    problems = []
    whole = _names_whole_encoder(ft.top_layers)
    if not whole and (isinstance(ft.top_layers, bool) or not isinstance(ft.top_layers, int) or ft.top_layers < 0):
        problems.append(f"{key}.top_layers: {ft.top_layers!r}: use a number of top blocks >= 0 (0 = frozen "
                        "encoder) or all (the whole encoder, from the waveform)")
        return problems
    if ft.lr <= 0:
        problems.append(f"{key}.lr: {ft.lr} must be > 0")
    if not 0.0 <= ft.warmup_ratio < 1.0:
        problems.append(f"{key}.warmup_ratio: {ft.warmup_ratio} must be in [0, 1)")
    if not whole and ft.top_layers == 0:
        return problems
    if whole:
        framewise = [k for k in ("time_mask", "channel_mask", "mixup") if f.augment[k] > 0]
        if framewise:
            problems.append(f"{key}.top_layers=all: features.augment.{framewise[0]} works on cached frames, and "
                            "the whole encoder reads waveforms (use features.augment.variants: waveform "
                            "augmentation, drawn as clips are read)")
        mfcc = [s for s in f.audio_encoders if str(s).startswith("mfcc:")]
        if mfcc:
            problems.append(f"{key}.top_layers=all: {mfcc} has no trainable encoder")
    if str(f.audio_layers).strip().lower() != "all":
        problems.append(f"{key}.top_layers: needs features.audio_layers=all (got {f.audio_layers!r}): the model "
                        "recomputes the top hidden states from the one below them")
    ct2 = [s for s in f.audio_encoders if str(s).startswith("faster-whisper:")]
    if ct2:
        problems.append(f"{key}.top_layers: {ct2} run in CTranslate2 and give only their last layer; use "
                        "whisper-ct2:NAME (the same weights in PyTorch)")
    if any(str(s).startswith(("whisper:", "whisper-ct2:")) for s in f.audio_encoders) and f.whisper_window != "clip":
        problems.append(f"{key}.top_layers: Whisper encoders need features.whisper_window=clip (the cache keeps "
                        "each clip's real frames, not the 30 s window's padding the blocks would attend to)")
    if f.speaker_norm.mode != "off":
        problems.append(f"{key}.top_layers: not with features.speaker_norm.mode={f.speaker_norm.mode} (the "
                        "fine-tuned states have no cached speaker statistics)")
    return problems


def augment_problems(aug: DictConfig) -> list[str]:
    """What is wrong with a ``features.augment`` setting."""
    key, problems = "features.augment", []
    if aug.variants < 0:
        problems.append(f"{key}.variants: {aug.variants} must be >= 0 (0 = no waveform augmentation)")
    unknown = [n for n in aug.noise if n not in NOISE_KINDS]
    if unknown:
        problems.append(f"{key}.noise: {unknown} not among {list(NOISE_KINDS)}")
    if len(aug.snr_db) != 2 or aug.snr_db[0] > aug.snr_db[1]:
        problems.append(f"{key}.snr_db: {list(aug.snr_db)} must be [low, high] in dB")
    if not aug.speed or any(not 0.5 <= x <= 2.0 for x in aug.speed):
        problems.append(f"{key}.speed: {list(aug.speed)} must be factors in [0.5, 2]")
    if not 0.0 <= aug.pitch_semitones <= 12.0:
        problems.append(f"{key}.pitch_semitones: {aug.pitch_semitones} must be in [0, 12]")
    if aug.gain_db < 0:
        problems.append(f"{key}.gain_db: {aug.gain_db} must be >= 0")
    for sub in ("time_mask", "channel_mask"):
        if not 0.0 <= aug[sub] < 1.0:
            problems.append(f"{key}.{sub}: {aug[sub]} must be in [0, 1)")
    if aug.mixup < 0:
        problems.append(f"{key}.mixup: {aug.mixup} must be >= 0 (0 = off)")
    return problems


def test_time_problems(f: DictConfig) -> list[str]:
    """What is wrong with ``features.test_time_speeds``."""
    key, speeds, problems = "features.test_time_speeds", list(f.test_time_speeds), []
    if any(not 0.5 <= x <= 2.0 or x == 1.0 for x in speeds) or len(set(speeds)) != len(speeds):
        problems.append(f"{key}: {speeds} must be distinct factors in [0.5, 2] other than 1 (the clip itself is "
                        "always predicted)")
    for other in ("test_labels", "test_clips"):
        if speeds and f.speaker_norm.get(other) is not None:
            problems.append(f"{key}: not with features.speaker_norm.{other} (the copies are standardised with the "
                            "training draw's enrolment statistics)")
    return problems


def speaker_norm_problems(sn: DictConfig) -> list[str]:
    """What is wrong with a ``features.speaker_norm`` setting."""
    key = "features.speaker_norm"
    if sn.mode not in SPEAKER_NORM_MODES:
        return [f"{key}.mode: {sn.mode!r} is not one of {list(SPEAKER_NORM_MODES)}"]
    problems = []
    if sn.mode == "enrol":
        if sn.clips is None or sn.clips < 1:
            problems.append(f"{key}.clips: mode=enrol standardises with K enrolment clips; set clips >= 1 (got {sn.clips})")
        if sn.get("test_clips") is not None and sn.test_clips < 1:
            problems.append(f"{key}.test_clips: {sn.test_clips} must be >= 1 (leave it unset for training's clips)")
    else:
        for sub in ("clips", "labels", "test_labels", "test_clips"):
            if sn.get(sub) is not None:
                problems.append(f"{key}.{sub}: only for mode=enrol (mode is {sn.mode})")
    if sn.prior_clips is not None:
        if sn.mode != "running":
            problems.append(f"{key}.prior_clips: only for mode=running (mode is {sn.mode})")
        elif not sn.prior_clips > 0:
            problems.append(f"{key}.prior_clips: {sn.prior_clips} must be > 0 (the population's weight in clips; "
                            "leave it unset for none)")
    for sub in ("labels", "test_labels"):
        problem = _labels_problem(sn[sub])
        if problem:
            problems.append(f"{key}.{sub}: {problem}")
    return problems


def validate(cfg: DictConfig) -> None:
    """Raise one ConfigError listing every unusable value of ``cfg`` (see :func:`config_problems`)."""
    problems = config_problems(cfg)
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


def cell_config(cfg: DictConfig, kind: str) -> DictConfig:
    """The config of one ablation cell: ``model.kind`` set and that kind's ``ablation_overrides`` applied."""
    cell = merge_overrides(copy.deepcopy(cfg), list(cfg.ablation_overrides.get(kind, [])))
    cell.model.kind = kind
    return cell


def require(cfg: DictConfig, *keys: str) -> None:
    """Fail fast if any of ``keys`` (dotted) is still ``???``."""
    missing = [key for key in keys if _is_missing(cfg, key)]
    if missing:
        raise ConfigError(
            "required config value(s) not set: " + ", ".join(missing)
            + " (set them in a YAML, in configs/local.yaml, or as key=value on the command line)"
        )


def _is_missing(cfg: DictConfig, key: str) -> bool:
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return node is None or OmegaConf.is_missing(node, leaf)


EXPERIMENT_PATHS = ("data.manifest", "data.test_manifest", "split.folds_file")


def check_paths(cfg: DictConfig, keys: tuple[str, ...] = EXPERIMENT_PATHS) -> None:
    """Fail fast, naming the key, when a path of ``keys`` is still ``???`` or names no file."""
    if cfg.data.manifests is not None and "data.manifest" in keys:  # several corpora: each manifest instead
        keys = tuple(k for k in keys if k != "data.manifest")
        absent = [f"data.manifests: {m} not found" for m in cfg.data.manifests if not Path(str(m)).exists()]
        if absent:
            raise ConfigError("missing file(s):\n  " + "\n  ".join(absent))
    if cfg.split.protocol != "file":
        keys = tuple(k for k in keys if k != "split.folds_file")  # not read by the other protocols
    elif "split.folds_file" in keys and cfg.split.folds_file is None:  # a YAML's ??? merges as None here
        raise ConfigError("split.folds_file: split.protocol=file needs a folds file (CSV with columns speaker,fold)")
    require(cfg, *keys)
    absent = [f"{key}: {OmegaConf.select(cfg, key)} not found" for key in keys
              if _is_set(cfg, key) and not Path(str(OmegaConf.select(cfg, key))).exists()]
    if absent:
        raise ConfigError("missing file(s):\n  " + "\n  ".join(absent))


def to_yaml(cfg: DictConfig) -> str:
    """Resolved YAML of ``cfg`` (what each run stores beside its results)."""
    return OmegaConf.to_yaml(cfg, resolve=True)


def stored_yaml_under_schema(text: str) -> str | None:
    """A run's stored config YAML as this schema reads it (keys added since it was stored take their defaults),
    in :func:`to_yaml`'s form; None when it does not read under this schema."""
    try:
        return to_yaml(OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.create(text)))
    except (OmegaConfBaseException, TypeError):  # TypeError: a list where a mapping belongs, or the reverse
        return None
