"""Train one model on one fold's training side, with model selection on its validation speakers only."""

from __future__ import annotations

import copy
import logging
import warnings

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping
from torch.utils.data import DataLoader, DistributedSampler

from mmser.errors import MmserError
from mmser.features.batching import FeatureDataset, collate
from mmser.labels import NUM_CLASSES
from mmser.training.frame_augment import FrameAugment
from mmser.training.length_buckets import LengthBucketSampler, evaluation_order
from mmser.training.lit_module import EmotionLitModule
from mmser.training.metrics import paired_bootstrap_p, unweighted_accuracy


for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda"):
    logging.getLogger(_name).setLevel(logging.WARNING)  # no "GPU available: False" banner per fold


class KeepBestWeights(Callback):
    """Keeps (in memory) the weights of the epoch with the best validation UA; no pickled checkpoint files."""

    def __init__(self):
        self.best_score, self.best_state, self.best_epoch = -1.0, None, -1

    def consider(self, score: float, model: torch.nn.Module, epoch: int) -> None:
        """Keep ``model``'s weights when ``score`` beats the best so far (ties keep the earlier one)."""
        if score > self.best_score:
            self.best_score, self.best_epoch = score, epoch
            self.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or "val_ua" not in trainer.callback_metrics:
            return
        self.consider(float(trainer.callback_metrics["val_ua"]), pl_module.model, int(trainer.current_epoch))


def class_weights(targets: list[int], mask: tuple[bool, ...]) -> torch.Tensor:
    """Inverse-frequency weights over the protocol's classes (mean 1 over classes present)."""
    counts = np.bincount(np.asarray(targets), minlength=NUM_CLASSES).astype(float)
    weights = np.zeros(NUM_CLASSES)
    present = (counts > 0) & np.asarray(mask)
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    weights[np.asarray(mask) & ~present] = 1.0
    return torch.tensor(weights, dtype=torch.float32)


def on_gpu(trainer_cfg) -> bool:
    """Whether Lightning will train on a GPU (``trainer.accelerator``, ``auto`` when CUDA is there)."""
    return trainer_cfg.accelerator in ("gpu", "cuda") or (trainer_cfg.accelerator == "auto" and torch.cuda.is_available())


def resolve_precision(trainer_cfg) -> str:
    if trainer_cfg.precision != "auto":
        return trainer_cfg.precision
    if not on_gpu(trainer_cfg):
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "16-mixed"


def fit(model: torch.nn.Module, train: FeatureDataset, val: FeatureDataset | None, train_cfg, trainer_cfg,
        seed: int, start_is_candidate: bool = False, finetune_cfg=None, augment_cfg=None) -> tuple[torch.nn.Module, dict]:
    """Train ``model``; returns it with the best-validation weights and a summary (epochs, history).

    ``start_is_candidate``: the model arrives trained (a fused model started from an audio-only one); its
    validation UA before any step is scored as epoch -1, and training must beat it to replace it; with
    ``train_cfg.replace_start_p`` the best epoch must beat it significantly (paired bootstrap over the
    validation utterances, the level divided by the number of epochs it was the best of), else the start
    is kept. ``finetune_cfg`` (``cfg.model.finetune``): learning rate and warm-up of the encoder blocks a
    fine-tuning model trains. ``augment_cfg`` (``cfg.features.augment``): its feature-level augmentation of
    training batches.
    """
    L.seed_everything(seed, workers=True, verbose=False)
    weights = class_weights(train.targets, model.dims.class_mask) if train_cfg.class_weighted else torch.ones(NUM_CLASSES)
    encoder_lr = (float(finetune_cfg.lr), float(finetune_cfg.warmup_ratio)) if finetune_cfg is not None else None
    module = EmotionLitModule(model, weights, train_cfg.lr, train_cfg.weight_decay, train_cfg.warmup_ratio,
                              train_cfg.label_smoothing, encoder_lr,
                              FrameAugment.from_config(augment_cfg) if augment_cfg is not None else None)
    has_val = val is not None and len(val) > 0
    keep = KeepBestWeights()
    start_scored = start_is_candidate and has_val
    if start_scored:  # the start's weights, validation predictions and UA, kept for the significance check
        start_pred = predict_proba(model, val).argmax(axis=1)
        keep.consider(unweighted_accuracy(np.asarray(val.targets), start_pred), model, -1)
        start_state, start_ua = keep.best_state, keep.best_score
        model.train()  # predict_proba left it in eval mode (dropout off); Lightning keeps the mode it is given
    callbacks: list[Callback] = [keep]
    if has_val:
        callbacks.append(EarlyStopping(monitor="val_ua", mode="max", patience=train_cfg.patience))
    trainer = L.Trainer(
        max_epochs=train_cfg.max_epochs, accelerator=trainer_cfg.accelerator, devices=trainer_cfg.devices,
        strategy=trainer_cfg.strategy, precision=resolve_precision(trainer_cfg),
        accumulate_grad_batches=train_cfg.accumulate_grad_batches, callbacks=callbacks, logger=False,
        enable_checkpointing=False, enable_progress_bar=trainer_cfg.enable_progress_bar, enable_model_summary=False,
        num_sanity_val_steps=0, deterministic=False, use_distributed_sampler=False,  # samplers below, per rank
    )
    train_loader, val_loader = fold_loaders(train, val if has_val else None, train_cfg, trainer_cfg, seed,
                                            trainer.world_size, trainer.global_rank)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*number of training batches.*")
        warnings.filterwarnings("ignore", ".*no `val_dataloader`.*")  # no validation speakers: max_epochs, by design
        trainer.fit(module, train_loader, val_loader)
    if trainer.world_size > 1:
        agree_across_ranks(keep.best_epoch, int(trainer.current_epoch))
    if keep.best_state is not None:
        model.load_state_dict(keep.best_state)
    summary = {"epochs_run": int(trainer.current_epoch), "best_epoch": keep.best_epoch,
               "best_val_ua": keep.best_score if keep.best_state is not None else None, "history": module.history}
    alpha = getattr(train_cfg, "replace_start_p", None)
    if start_scored and keep.best_epoch != -1 and alpha is not None:
        best_pred = predict_proba(model, val).argmax(axis=1)
        p = paired_bootstrap_p(np.asarray(val.targets), start_pred, best_pred, seed=seed)
        # the best epoch is the maximum over every scored epoch: Bonferroni-correct for that many comparisons
        corrected = alpha / max(1, len(module.history))
        summary.update(replace_start_p=p, replace_start_alpha=corrected)
        if p >= corrected:  # the gain over the start is within validation noise: keep the start
            model.load_state_dict(start_state)
            summary.update(best_epoch=-1, best_val_ua=start_ua, trained_best_epoch=keep.best_epoch,
                           trained_best_val_ua=keep.best_score)
    return model.cpu().eval(), summary


def fold_loaders(train: FeatureDataset, val: FeatureDataset | None, train_cfg, trainer_cfg, seed: int,
                 world_size: int = 1, rank: int = 0) -> tuple[DataLoader, DataLoader | None]:
    """The training and validation loaders of process ``rank`` of ``world_size``.

    One process: the training set shuffled by a generator seeded with ``seed``. Several (DDP): each rank
    trains on its share of a seeded shuffle (``DistributedSampler``), and validates on every
    ``world_size``-th utterance from ``rank`` on, with no padding, so that every validation utterance is
    scored exactly once when the ranks gather their predictions. With ``train_cfg.length_buckets`` the
    training batches hold clips of similar duration (:class:`LengthBucketSampler`, the same share per rank)
    and validation runs longest clip first.
    """
    loading = {"collate_fn": collate, "num_workers": train_cfg.num_workers, "pin_memory": on_gpu(trainer_cfg),
               "persistent_workers": train_cfg.num_workers > 0}  # workers read lazy rows in parallel
    drop_last = len(train) > train_cfg.batch_size * world_size
    bucketed = train_cfg.length_buckets > 0
    if bucketed:
        sampling = {"sampler": LengthBucketSampler(known_durations(train), train_cfg.batch_size,
                                                   train_cfg.length_buckets, seed, world_size, rank, drop_last)}
    elif world_size > 1:
        sampling = {"sampler": DistributedSampler(train, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)}
    else:
        sampling = {"shuffle": True, "generator": torch.Generator().manual_seed(seed)}
    train_loader = DataLoader(train, batch_size=train_cfg.batch_size, drop_last=drop_last, **sampling, **loading)
    if val is None:
        return train_loader, None
    if len(val) < world_size:
        raise MmserError(f"{len(val)} validation utterance(s) cannot be shared by {world_size} training processes")
    order = evaluation_order(known_durations(val)) if bucketed else list(range(len(val)))
    share = order[rank::world_size] if world_size > 1 or bucketed else None
    return train_loader, DataLoader(val, batch_size=train_cfg.batch_size, sampler=share, **loading)


def known_durations(data: FeatureDataset) -> np.ndarray:
    """``data``'s clip durations (s), or an error naming the clips the manifest gives none for."""
    durations = data.durations if data.durations is not None else np.full(len(data), np.nan)
    unknown = [u for u, d in zip(data.utt_ids, durations) if not d > 0]
    if unknown:
        raise MmserError(f"train.length_buckets: the manifest has no duration_s for {len(unknown)} clip(s), e.g. "
                         f"{unknown[:5]} (mmser prepare writes it; or set train.length_buckets=0)")
    return durations


def agree_across_ranks(best_epoch: int, epochs_run: int) -> None:
    """Check that every training process chose the same best epoch and stopped at the same epoch."""
    import torch.distributed as dist

    decisions: list = [None] * dist.get_world_size()
    dist.all_gather_object(decisions, (best_epoch, epochs_run))
    if len(set(decisions)) > 1:
        raise RuntimeError(f"training processes disagree on (best epoch, epochs run): {decisions}")


@torch.inference_mode()
def predict_proba(model: torch.nn.Module, data: FeatureDataset, batch_size: int = 64) -> np.ndarray:
    """Class probabilities ``(N, 8)`` (masked classes get 0)."""
    model.eval()
    out = np.zeros((len(data), NUM_CLASSES), dtype=np.float32)
    for batch in DataLoader(data, batch_size=batch_size, collate_fn=collate):
        probs = torch.softmax(model.forward_batch(batch).float(), dim=-1)
        out[batch["index"].numpy()] = probs.numpy()
    return out
