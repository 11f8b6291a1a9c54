"""One ensemble member: its encoder and seed (the ensemble policy), and the one function that trains it."""

from __future__ import annotations

import torch

from mmser.features.batching import FeatureDataset
from mmser.features.store import FeatureStore
from mmser.models.builders import EmotionModel, ModelDims, build_model, dims_from_config
from mmser.training.fit import fit


def ensemble_members(audio_encoders: list[str], kind: str, seed: int, ensemble_seeds: int) -> list[tuple[str | None, int]]:
    """(audio encoder, seed) of each member: every audio encoder x ``ensemble_seeds`` seeds (text-only: no
    audio encoder). Member seeds are ``seed + 1000 j``."""
    seeds = [int(seed) + 1000 * j for j in range(int(ensemble_seeds))]
    encoders: list[str | None] = list(audio_encoders) if kind != "text_only" else [None]
    return [(enc, s) for enc in encoders for s in seeds]


def member_dims(store: FeatureStore, model_cfg, encoder: str | None, text_source: str | None,
                class_mask: tuple[bool, ...]) -> ModelDims:
    """The ``ModelDims`` of a member reading ``encoder`` frames and/or ``text_source`` tokens of ``store``."""
    blocks = store.encoder_blocks[encoder][0] if encoder in store.encoder_blocks else None
    return dims_from_config(model_cfg, store.audio_shape(encoder) if encoder else None,
                            store.text_shape(text_source) if text_source else None, class_mask, blocks,
                            store.spec.frame_stride)


def train_member(dims: ModelDims, train: FeatureDataset, val: FeatureDataset | None, train_cfg, trainer_cfg,
                 seed: int, init: dict[str, torch.Tensor] | None = None,
                 freeze_audio_branch: bool = False, store: FeatureStore | None = None, encoder: str | None = None,
                 finetune_cfg=None, augment_cfg=None) -> tuple[EmotionModel, dict]:
    """Build and train one member; returns it with its best-validation weights and a training summary.

    ``init``: the state of a trained audio-only model a fused member starts from (the start then stays a
    model-selection candidate); ``freeze_audio_branch`` keeps that start's audio branch and head fixed.
    Members that fine-tune encoder blocks (``dims.finetune_layers``: the top K, or the whole encoder) start
    them from ``encoder``'s pretrained weights held by ``store`` and train them at ``finetune_cfg``'s learning rate. ``augment_cfg``
    (``cfg.features.augment``): feature-level augmentation of the training batches.
    Seeded before the model is built, so a member's initial weights do not depend on what ran before it
    in the process (a resumed run reproduces an uninterrupted one).
    """
    torch.manual_seed(seed)
    model = build_model(dims)
    if dims.finetune_layers != 0:
        if store is None or encoder not in store.encoder_blocks:
            raise ValueError("a fine-tuning member needs its encoder's pretrained weights (store, encoder)")
        trained = model.audio_encoder if dims.reads_waveforms else model.top_blocks
        trained.load_state_dict(store.encoder_blocks[encoder][1])
    if init is not None:
        model.init_from_audio_only(init)
        if freeze_audio_branch:
            model.freeze_audio_branch()
    return fit(model, train, val, train_cfg, trainer_cfg, seed, start_is_candidate=init is not None,
               finetune_cfg=finetune_cfg, augment_cfg=augment_cfg)
