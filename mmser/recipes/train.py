"""``mmser train``: one model (or ensemble) on a whole manifest, validation speakers held out -> checkpoint."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mmser.audio import file_sha256
from mmser.checkpoint import CheckpointError, Member, load_checkpoint, save_average, save_checkpoint
from mmser.config import Config, ConfigError
from mmser.data.protocol import load_protocol
from mmser.data.splits import holdout_validation, speakers_of
from mmser.distributed import is_main, say
from mmser.evaluation.crossval import FUSED_KINDS, run_config
from mmser.features.store import store_for
from mmser.features.variants import training_dataset
from mmser.training.member import ensemble_members, member_dims, train_member


def check_trainable(cfg: DictConfig) -> None:
    """Refuse settings a deployable checkpoint cannot have (before any work)."""
    sn = cfg.features.speaker_norm
    if sn.mode == "transductive":
        raise ConfigError("features.speaker_norm.mode=transductive (statistics over all of a speaker's clips) is for "
                          "cross-validation only; set features.speaker_norm.mode=enrol with clips=K to train a "
                          "checkpoint that standardises with K enrolment clips of the speaker (`mmser predict "
                          "--enrol`), mode=running (the speaker's clips so far, as they arrive), or mode=instance (each clip's "
                          "own statistics) or off")
    if sn.test_labels is not None or sn.get("test_clips") is not None:
        raise ConfigError("features.speaker_norm.test_labels and test_clips set the test speakers' enrolment clips "
                          "in cross-validation only; a checkpoint is trained with features.speaker_norm.labels and "
                          "clips (`mmser predict` enrols with the clips it is given)")


def train_checkpoint(cfg: DictConfig, out: str | Path, progress: bool = True,
                     extra: dict | None = None) -> tuple[Path, list[dict]]:
    """Train ``cfg.model`` on every speaker of the protocol but the validation speakers; write one checkpoint.

    With ``model.init_from_audio_only`` each fused member starts from an audio-only member trained first
    on the same split. ``extra``: more facts for the checkpoint's document. Returns the checkpoint path and each
    member's training summary.
    """
    check_trainable(cfg)
    kind = cfg.model.kind
    text_source = cfg.data.text_source if kind != "audio_only" else None
    protocol = load_protocol(cfg.data, [text_source] if text_source else [])
    split = holdout_validation(protocol.rows, cfg.split.val_speakers, cfg.split.seed)
    store = store_for(protocol.rows, cfg, [kind], [text_source] if text_source else [], progress)
    store = store.with_population_prior(split.train)  # features.speaker_norm.prior_clips: the training clips

    members, summaries = [], []
    for encoder, seed in ensemble_members(list(cfg.features.audio_encoders), kind, cfg.train.seed,
                                          cfg.train.ensemble_seeds):
        train = training_dataset(store, split.train, encoder, text_source, cfg.features, progress)
        val = store.dataset(split.val, encoder, text_source) if split.val else None
        init = None
        if cfg.model.init_from_audio_only and kind in FUSED_KINDS:
            audio_model = OmegaConf.merge(cfg.model, {"kind": "audio_only"})
            start, summary = train_member(member_dims(store, audio_model, encoder, None, protocol.class_mask),
                                          training_dataset(store, split.train, encoder, None, cfg.features, progress),
                                          store.dataset(split.val, encoder, None) if split.val else None,
                                          cfg.train, cfg.trainer, seed, store=store, encoder=encoder,
                                          finetune_cfg=cfg.model.finetune, augment_cfg=cfg.features.augment)
            say(f"  audio-only start for {encoder} seed {seed}: {validation_text(summary)}", flush=True)
            init = start.state_dict()
        model, summary = train_member(member_dims(store, cfg.model, encoder, text_source, protocol.class_mask), train,
                                      val, cfg.train, cfg.trainer, seed, init, cfg.model.freeze_audio_branch, store,
                                      encoder, cfg.model.finetune, cfg.features.augment)
        members.append(Member(model, encoder, store.fingerprints.get(encoder) if encoder else None, text_source))
        summaries.append({"audio_encoder": encoder, "seed": seed, "val_speakers": list(split.val_speakers), **summary})
        say(f"  member {encoder or 'text'} seed {seed}: {validation_text(summary)}", flush=True)
    text_fingerprint = store.fingerprints.get(store.spec.text_encoder) if text_source else None
    if is_main():  # several training processes: one writes
        save_checkpoint(out, members, store.spec, text_fingerprint,
                        OmegaConf.to_container(run_config(cfg, protocol), resolve=True),
                        {"val_speakers": list(split.val_speakers),
                         "train_speakers": speakers_of(protocol.rows, split.train), **(extra or {})}, store.speaker_prior)
    return Path(out), summaries


def parts_folder(out: str | Path) -> Path:
    """Where :func:`train_average` keeps the part checkpoints of ``out``: ``<out>.parts/``."""
    out = Path(out)
    return out.with_name(out.name + ".parts")


# keys that say where the work runs or where its files go, not what is trained: a part trained under other values
# of these is reused (as the feature cache reuses frames whatever the encoding device and batch); the trainer's
# accelerator and precision change the arithmetic of training, and stay in the key
WHERE_IT_RUNS = ("output_dir", "features.cache_dir", "features.device", "features.num_threads", "features.batch_size",
                 "features.shard_size", "features.store", "features.memory_budget_gb", "train.num_workers",
                 "trainer.enable_progress_bar")


def recipe_of(cfg: DictConfig) -> dict:
    """What a trained part is trained from: the resolved config but :data:`WHERE_IT_RUNS` (JSON-able)."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for key in WHERE_IT_RUNS:
        *parents, leaf = key.split(".")
        section = resolved
        for parent in parents:
            section = section.get(parent, {})
        section.pop(leaf, None)
    return resolved


def recipe_key(cfg: DictConfig) -> str:
    """What makes a trained part reusable: :func:`recipe_of` and the manifest's bytes (SHA-256, hex)."""
    return _keyed(recipe_of(cfg), file_sha256(cfg.data.manifest))


def _keyed(recipe: dict, manifest_sha256: str) -> str:
    """The SHA-256 (hex) of a recipe and its manifest's digest."""
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode())
    digest.update(manifest_sha256.encode())
    return digest.hexdigest()


def same_recipe(document: dict, cfg: DictConfig) -> bool:
    """Whether the part whose document is ``document`` was trained from ``cfg``'s recipe on the same manifest bytes:
    its ``recipe_key`` is :func:`recipe_key` of ``cfg``, or, for a part written before config keys were added to the
    schema, of ``cfg`` without the keys its stored config lacks, each of which ``cfg`` leaves at its default (a new
    key's default leaves a run as it ran)."""
    stored, key = document.get("config"), document.get("recipe_key")
    recipe, manifest = recipe_of(cfg), file_sha256(cfg.data.manifest)
    if key == _keyed(recipe, manifest):
        return True
    if not isinstance(stored, dict) or not key:
        return False
    then, added = _within(recipe, stored)
    schema = OmegaConf.structured(Config)
    if any(_value(cfg, dotted) != _value(schema, dotted) for dotted in added):
        return False  # a key the part's schema lacked, set otherwise than its default: another recipe
    return _keyed(then, manifest) == key


def _value(cfg: DictConfig, dotted: str):
    """The plain value of ``cfg`` at ``dotted`` (a section as a dict)."""
    value = OmegaConf.select(cfg, dotted)
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _within(values: dict, shape: dict, prefix: str = "") -> tuple[dict, list[str]]:
    """``values`` restricted to the (nested) keys ``shape`` has, and the dotted keys of ``values`` left out."""
    kept, left = {}, []
    for name, value in values.items():
        if name not in shape:
            left.append(prefix + name)
        elif isinstance(value, dict) and isinstance(shape[name], dict):
            kept[name], deeper = _within(value, shape[name], f"{prefix}{name}.")
            left += deeper
        else:
            kept[name] = value
    return kept, left


def train_average(configs: dict[str, DictConfig], out: str | Path, progress: bool = True) -> Path:
    """Train each of ``configs`` (name -> config) as :func:`train_checkpoint` does, then write ``out``: one file
    holding the trained checkpoints as parts, whose probabilities a predictor averages (each part's members
    first, then the parts), as ``mmser predict --checkpoint A B ...`` does with separate files.

    Each part is written to ``<out>.parts/<name>.safetensors`` as soon as it is trained and kept there; a
    part found there, trained from the same resolved config on the same manifest bytes (:func:`same_recipe`), is
    not trained again, so a stopped run resumes with the part it was training. Every config is checked
    (trainable, one way of standardising per speaker) before any is trained."""
    from mmser.ensemble import check_one_speaker_norm
    from mmser.features.spec import FeatureSpec

    if len(configs) < 2:
        raise ConfigError(f"an averaged checkpoint needs at least 2 configs, got {len(configs)}")
    for cfg in configs.values():
        check_trainable(cfg)
    check_one_speaker_norm([(name, FeatureSpec.from_config(cfg.features)) for name, cfg in configs.items()])
    folder = parts_folder(out)
    parts = []
    for k, (name, cfg) in enumerate(configs.items()):
        part = folder / f"{name}.safetensors"  # by name: another order or subset reuses it
        try:
            done = part.is_file() and same_recipe(load_checkpoint(part).meta, cfg)
        except CheckpointError:
            done = False  # unreadable: trained again
        if done:
            say(f"part {k + 1}/{len(configs)} {name}: kept {part} (trained earlier from this config and manifest)")
        else:
            say(f"part {k + 1}/{len(configs)} {name}: training", flush=True)
            train_checkpoint(cfg, part, progress, {"recipe": name, "recipe_key": recipe_key(cfg)})
        parts.append(part)
    if is_main():
        save_average(out, parts)
    return Path(out)


def validation_text(summary: dict) -> str:
    """``best validation UA 82.0 % at epoch 13 of 30`` (epochs counted from 1), for one member's training."""
    if summary.get("best_val_ua") is None:
        return f"no validation speakers (split.val_speakers: 0): the last of {summary['epochs_run']} epochs kept"
    ua = f"best validation UA {100 * summary['best_val_ua']:.1f} %"
    if summary["best_epoch"] < 0:
        return f"{ua}, the starting model's (kept: no epoch beat it)"
    return f"{ua} at epoch {summary['best_epoch'] + 1} of {summary['epochs_run']}"
