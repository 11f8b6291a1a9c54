"""Training time per epoch and padding with batches of similar duration (train.length_buckets) vs random batches,
side by side in one run.

    python bench/length_buckets.py configs/experiment/ravdess_finetune.yaml data.manifest=runs/ravdess/manifest.csv \\
        model.finetune.top_layers=2 --pool 50 --epochs 1 --json results/bench/length_buckets_ravdess_base_top2.json

On the first fold of the config's protocol, the same model trains ``--epochs`` epochs (training + validation
pass, no early stop) with ``train.length_buckets=0`` (random batches) and ``=--pool``, from the same store.
Padding is measured on the training loader's batches of one epoch: padded frames (or samples) over real ones.
The store is built before timing; the threads are torch's default.
"""

from __future__ import annotations

import argparse
import copy
import time

from mmser.features.store import store_for
from mmser.features.variants import training_dataset
from mmser.training.fit import fold_loaders
from mmser.training.member import member_dims, train_member

from report import first_fold, machine, report  # bench/report.py (scripts run as `python bench/<name>.py`)


def padding_ratio(loader) -> float:
    """Padded time steps over real ones, summed over one epoch of ``loader``'s batches."""
    padded = real = 0
    for batch in loader:
        mask = batch["audio_mask"]
        padded += mask.numel() - int(mask.sum())
        real += int(mask.sum())
    return padded / real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--pool", type=int, default=50, help="train.length_buckets of the bucketed run")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--json")
    args = parser.parse_args()
    cfg, protocol, fold = first_fold(args.config, args.overrides)
    encoder = cfg.features.audio_encoders[0]
    store = store_for(protocol.rows, cfg, ["audio_only"], [], False)
    train = training_dataset(store, fold.train, encoder, None, cfg.features, False)
    val = store.dataset(fold.val, encoder, None)
    dims = member_dims(store, cfg.model, encoder, None, protocol.class_mask)
    figures: dict = {"config": args.config, "overrides": args.overrides, "encoder": encoder, "fold": fold.name,
                     "finetune_top_layers": str(cfg.model.finetune.top_layers), "batch_size": cfg.train.batch_size,
                     "train_clips": len(fold.train), "val_clips": len(fold.val), "epochs": args.epochs,
                     **machine()}
    per_epoch = {}
    for pool in (0, args.pool):
        point = copy.deepcopy(cfg)
        point.train.length_buckets = pool
        point.train.max_epochs, point.train.patience = args.epochs, args.epochs
        loader, _ = fold_loaders(train, None, point.train, point.trainer, point.train.seed)
        name = "random" if pool == 0 else f"length_buckets={pool}"
        figures[f"{name} padded/real time steps"] = round(padding_ratio(loader), 4)
        start = time.perf_counter()
        _, summary = train_member(dims, train, val, point.train, point.trainer, 0, store=store, encoder=encoder,
                                  finetune_cfg=point.model.finetune, augment_cfg=point.features.augment)
        per_epoch[name] = (time.perf_counter() - start) / args.epochs
        figures[f"{name} s/epoch"] = round(per_epoch[name], 2)
        figures[f"{name} val UA after {args.epochs} epochs"] = round(summary["best_val_ua"], 4)
        print(f"{name}: {per_epoch[name]:.1f} s/epoch, padding {figures[f'{name} padded/real time steps']}", flush=True)
    figures["ratio bucketed / random s/epoch"] = round(per_epoch[f"length_buckets={args.pool}"] / per_epoch["random"], 3)
    report(figures, args.json)


if __name__ == "__main__":
    main()
