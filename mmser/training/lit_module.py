"""The LightningModule: receives a built ``nn.Module``; one ``model_step`` serves train/val/test."""

from __future__ import annotations

import math

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from mmser.labels import EMOTIONS
from mmser.training.metrics import unweighted_accuracy


class EmotionLitModule(L.LightningModule):
    """AdamW, linear warm-up + cosine decay, class-weighted cross-entropy over the protocol's classes.

    ``encoder_lr``: (learning rate, warm-up ratio) of the fine-tuned encoder (parameters under ``top_blocks.``
    or, for the whole encoder, ``audio_encoder.``), which train in their own parameter group; the rest uses ``lr`` and ``warmup_ratio``.
    ``frame_augment`` (:class:`~mmser.training.frame_augment.FrameAugment`) augments training batches.
    """

    ENCODER_PREFIX = ("top_blocks.", "audio_encoder.")

    def __init__(self, model: torch.nn.Module, class_weights: torch.Tensor, lr: float = 1e-3,
                 weight_decay: float = 1e-2, warmup_ratio: float = 0.1, label_smoothing: float = 0.0,
                 encoder_lr: tuple[float, float] | None = None, frame_augment=None):
        super().__init__()
        self.model = model
        mask = model.dims.class_mask
        self.valid = [i for i, m in enumerate(mask) if m]  # indices of the classes this protocol uses
        remap = torch.full((len(EMOTIONS),), -100, dtype=torch.long)
        remap[self.valid] = torch.arange(len(self.valid))
        self.register_buffer("remap", remap, persistent=False)
        self.register_buffer("class_weights", class_weights[self.valid].float(), persistent=False)
        self.lr, self.weight_decay, self.warmup_ratio, self.label_smoothing = lr, weight_decay, warmup_ratio, label_smoothing
        self.encoder_lr = encoder_lr
        self.frame_augment = frame_augment  # FrameAugment applied to training batches only (None: off)
        self._val_preds: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []
        self._train_loss = torch.zeros(2)  # this epoch's (sum of loss x clips, clips) on this rank, kept on device
        self.history: list[dict] = []  # per epoch: epoch, val_ua (None: no validation), that epoch's mean training loss

    def model_step(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model.forward_batch(batch)[:, self.valid]  # (B, C_valid)
        target = self.remap[batch["target"]]  # (B,)
        loss = F.cross_entropy(logits, target, weight=self.class_weights, label_smoothing=self.label_smoothing)
        return loss, logits.argmax(dim=-1)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, _ = self.model_step(self.frame_augment(batch) if self.frame_augment else batch)
        n = len(batch["target"])
        self.log("train_loss", loss, prog_bar=True, on_epoch=True, on_step=False, sync_dist=True,  # mean over ranks
                 batch_size=n)
        self._train_loss = self._train_loss.to(loss.device) + torch.stack([loss.detach().float() * n,
                                                                           loss.new_tensor(float(n))])
        return loss

    def on_train_epoch_end(self) -> None:
        """This epoch's mean training loss over every rank's clips, into its history entry (validation runs
        before this hook, so the entry of a validated epoch is already there; without validation speakers the
        entry is made here, ``val_ua`` None)."""
        total = self.trainer.strategy.reduce(self._train_loss.to(self.device), reduce_op="sum")  # (2,)
        self._train_loss = torch.zeros(2)
        epoch = int(self.current_epoch)
        if not self.history or self.history[-1]["epoch"] != epoch:
            self.history.append({"epoch": epoch, "val_ua": None, "train_loss": float("nan")})
        if float(total[1]) > 0:
            self.history[-1]["train_loss"] = float(total[0] / total[1])

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        loss, pred = self.model_step(batch)
        self.log("val_loss", loss, on_epoch=True, sync_dist=True, batch_size=len(batch["target"]))
        self._val_preds.append(pred)
        self._val_targets.append(self.remap[batch["target"]])

    def on_validation_epoch_end(self) -> None:
        if not self._val_preds and self.trainer.world_size == 1:
            return
        preds, targets = self.gather_exactly(self._val_preds), self.gather_exactly(self._val_targets)
        self._val_preds.clear()
        self._val_targets.clear()
        ua = unweighted_accuracy(targets, preds)
        # every rank holds the same UA (of the gathered predictions): the max over ranks is that value, exactly
        self.log("val_ua", ua, prog_bar=True, sync_dist=True, reduce_fx="max")
        if not self.trainer.sanity_checking:  # train_loss: filled in at on_train_epoch_end
            self.history.append({"epoch": int(self.current_epoch), "val_ua": float(ua), "train_loss": float("nan")})

    def gather_exactly(self, parts: list[torch.Tensor]) -> np.ndarray:
        """This rank's 1-D tensors concatenated, then gathered from every rank with nothing repeated: each rank
        holds a share of different lengths (no padded samples), so shares are padded here for the gather and
        the padding is dropped."""
        local = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long, device=self.device)
        if self.trainer.world_size == 1:
            return local.cpu().numpy()
        counts = self.all_gather(torch.tensor(len(local), device=self.device)).reshape(-1)  # (world,)
        size = int(counts.max())
        padded = torch.zeros(size, dtype=local.dtype, device=self.device)
        padded[: len(local)] = local
        gathered = self.all_gather(padded).reshape(len(counts), size)  # (world, size)
        return torch.cat([gathered[r, : int(n)] for r, n in enumerate(counts)]).cpu().numpy()

    def configure_optimizers(self):
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        head = [p for n, p in named if not n.startswith(self.ENCODER_PREFIX)]
        blocks = [p for n, p in named if n.startswith(self.ENCODER_PREFIX)]
        groups, schedules = [{"params": head, "lr": self.lr}], [self.warmup_ratio]
        if blocks:
            lr, warmup_ratio = self.encoder_lr or (self.lr, self.warmup_ratio)
            groups.append({"params": blocks, "lr": lr})
            schedules.append(warmup_ratio)
        optimizer = torch.optim.AdamW(groups, lr=self.lr, weight_decay=self.weight_decay)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        factors = [warmup_cosine(int(ratio * total), total) for ratio in schedules]
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factors)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def warmup_cosine(warmup: int, total: int):
    """Learning-rate factor of step ``step``: linear warm-up over ``warmup`` steps, then cosine decay to 0."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(warmup, 1)
        progress = (step - warmup) / max(total - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor
