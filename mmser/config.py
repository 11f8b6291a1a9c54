"""Configuration: dataclass schema + YAML files + ``key=value`` overrides (OmegaConf).

``load_config(files, overrides)`` merges, in order: the structured schema below, ``configs/local.yaml``
(git-ignored machine paths) when present, each YAML file (a file may list others under ``includes:``,
relative to itself, merged before it), then the command-line overrides. Unknown keys and wrong types
are errors; required values are ``???`` and :func:`require` fails fast naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "configs"
LOCAL_CONFIG = CONFIG_DIR / "local.yaml"


class ConfigError(ValueError):
    """A configuration that cannot be used, with the file or key at fault."""


@dataclass
class DataConfig:
    name: str = "unnamed"  # run name used in output paths
    manifest: str = MISSING  # manifest CSV/Parquet written by `mmser prepare`
    test_manifest: Optional[str] = None  # cross-corpus: train on `manifest`, test on this one (shared labels only)
    classes: Optional[List[str]] = None  # classes the head may predict (logits of others masked); None = all 8
    text_source: str = "gold"  # "gold" (the `transcript` column) or an ASR column written by `mmser transcribe`
    improvised_only: bool = False  # IEMOCAP: keep improvised dialogs only (scripted sentences repeat)


@dataclass
class PrepareConfig:
    label_map: Dict[str, str] = field(default_factory=dict)  # raw label -> shared label, on top of the corpus map
    exclude_labels: Optional[List[str]] = None  # raw labels left out (None = corpus default, e.g. IEMOCAP fru/oth/xxx)
    skip_bad: bool = False  # write the manifest without bad files (+ a report) instead of stopping
    min_duration_s: float = 0.1  # s, shorter clips are bad files


@dataclass
class SplitConfig:
    protocol: str = "leave_speakers_out"  # leave_one_session_out | leave_speakers_out | file
    speakers_per_fold: int = 3  # leave_speakers_out: speakers held out per fold
    val_speakers: int = 2  # whole training speakers held out for early stopping (0 = none, fixed epochs)
    folds_file: Optional[str] = None  # protocol=file: CSV with columns speaker,fold
    shuffle: bool = False  # shuffle speakers before grouping (seeded); False keeps sorted order
    seed: int = 0


@dataclass
class FeaturesConfig:
    cache_dir: str = "cache/features"  # feature cache root (shared by all runs)
    audio_encoders: List[str] = field(default_factory=lambda: ["faster-whisper:tiny.en"])  # encoder specs
    text_encoder: str = "bert:minilm"  # encoder spec for token embeddings
    whisper_window: str = "30s"  # "30s": pad to Whisper's 30 s input (as trained); "clip": encode the clip only (faster)
    frame_stride: int = 1  # average every N encoder frames before the model (4: 50 Hz -> 12.5 Hz), cache unchanged
    audio_layers: str = "all"  # "all" hidden states, "last", or comma-separated indices
    text_layers: str = "last"
    device: str = "cpu"  # cpu | cuda | cuda:N
    num_threads: int = 0  # torch intra-op threads (0 = leave torch's default)
    batch_size: int = 8  # clips per encoder batch (bucketed by length)
    shard_size: int = 256  # clips per cache shard
    max_text_tokens: int = 64  # text tokens kept per utterance
    # standardise each clip's acoustic frames with the mean and std of frames of its speaker's clips
    # (labels unused); see mmser/speaker_norm.py
    speaker_norm: bool = False
    # None: statistics over all the speaker's clips (transductive: cross-validation only, `mmser train`
    # refuses it); k: over k other clips of the speaker, as `mmser predict --enrol` gets from k enrolment clips
    speaker_norm_enrol_clips: Optional[int] = None
    # None: enrolment clips drawn among all the speaker's other clips; [neutral, calm]: only among those
    # labels (enrolment with emotionally neutral speech); the label of the clip standardised is never used
    speaker_norm_enrol_labels: Optional[List[str]] = None
    # cross-validation only: the same for the test speakers' enrolment clips, when they differ from training
    # (a model trained with enrolment of any emotion, then enrolled with [neutral, calm] speech); None: as training
    speaker_norm_test_enrol_labels: Optional[List[str]] = None


@dataclass
class ASRConfig:
    models: List[str] = field(default_factory=lambda: ["faster-whisper:tiny.en"])  # transcript sources for ablations
    language: Optional[str] = "en"  # None = detect (multilingual models)
    beam_size: int = 5
    batch_size: int = 8  # clips decoded together (faster-whisper); 1 = one clip at a time
    device: str = "cpu"


@dataclass
class FusionConfig:
    num_heads: int = 4  # attention heads of the cross-modal aligner
    dropout: float = 0.1
    num_layers: int = 1  # stacked aligner blocks


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
    precision: str = "auto"  # auto: 16-mixed on GPU, 32-true on CPU
    enable_progress_bar: bool = True


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
    output_dir: str = "runs/${data.name}/${model.kind}"
    ablation: List[str] = field(default_factory=lambda: ["audio_only", "text_only", "concat", "cross_attn"])
    text_sources: List[str] = field(default_factory=lambda: ["gold"])  # ablation: each transcript source


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> list[DictConfig]:
    """The YAML at ``path`` preceded by its ``includes:`` (recursively)."""
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: includes itself through {' -> '.join(map(str, seen))}")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        node = OmegaConf.load(path)
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(node, DictConfig):
        raise ConfigError(f"{path}: top level must be a mapping")
    layers: list[DictConfig] = []
    for inc in node.pop("includes", []) or []:
        layers += _read_yaml(path.parent / inc, seen + (path,))
    return layers + [node]


def load_config(
    files: list[str | Path] | None = None, overrides: list[str] | None = None, use_local: bool = True
) -> DictConfig:
    """Merge schema, local.yaml, ``files`` and ``overrides`` into a validated config."""
    schema = OmegaConf.structured(Config)
    layers: list[DictConfig] = []
    if use_local and LOCAL_CONFIG.is_file():
        layers += _read_yaml(LOCAL_CONFIG)
    for file in files or []:
        layers += _read_yaml(Path(file))
    try:
        for layer in layers:
            schema = OmegaConf.merge(schema, layer)
        if overrides:
            bad = [o for o in overrides if "=" not in o]
            if bad:
                raise ConfigError(f"overrides must be key=value, got {bad}")
            schema = OmegaConf.merge(schema, OmegaConf.from_dotlist(list(overrides)))
    except OmegaConfBaseException as err:
        raise ConfigError(f"invalid config: {_describe(err)}") from None
    return schema


def _describe(err: OmegaConfBaseException) -> str:
    key = getattr(err, "full_key", None)
    msg = str(err).splitlines()[0]
    return f"key {key!r}: {msg}" if key else msg


def require(cfg: DictConfig, *keys: str) -> None:
    """Fail fast if any of ``keys`` (dotted) is still ``???``."""
    missing = []
    for key in keys:
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        if node is None or OmegaConf.is_missing(node, leaf):
            missing.append(key)
    if missing:
        raise ConfigError(
            "required config value(s) not set: " + ", ".join(missing)
            + " (set them in a YAML, in configs/local.yaml, or as key=value on the command line)"
        )


def to_yaml(cfg: DictConfig) -> str:
    """Resolved YAML of ``cfg`` (what each run stores beside its results)."""
    return OmegaConf.to_yaml(cfg, resolve=True)
