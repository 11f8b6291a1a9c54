"""Training time per epoch of fine-tuning the encoder's top K blocks vs the frozen recipe, side by side in one run.

    python bench/finetune.py configs/experiment/ravdess_finetune.yaml data.manifest=runs/ravdess/manifest.csv \\
        --k 0,1,2 --epochs 1 --json results/bench/finetune_ravdess_base.json
    python bench/finetune.py configs/experiment/ravdess_finetune.yaml data.manifest=runs/ravdess/manifest.csv \\
        --k 0,2,all --epochs 1 --json results/bench/finetune_ravdess_base_all.json

On the first fold of the config's protocol, each K trains ``--epochs`` epochs (training + validation pass, no
early stop) from the cached features (``mmser extract`` first: the cache must hold every clip); K=all trains the
whole encoder from the waveform (audio read as batches need it). The figure is wall seconds per epoch, and the
ratio to K=0 (the frozen recipe: the cached frames pooled before the model).
The store is built before timing (cache reads in memory mode); the threads are torch's default.
"""

from __future__ import annotations

import argparse
import copy
import time

from mmser.features.store import store_for
from mmser.training.member import member_dims, train_member

from report import first_fold, machine, report  # bench/report.py (scripts run as `python bench/<name>.py`)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--k", default="0,1,2,4", help="comma-separated K (0 = frozen, all = whole encoder)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()
    cfg, protocol, fold = first_fold(args.config, args.overrides)
    encoder = cfg.features.audio_encoders[0]
    figures: dict = {"config": args.config, "overrides": args.overrides, "encoder": encoder, "fold": fold.name,
                     "train_clips": len(fold.train), "val_clips": len(fold.val), "epochs": args.epochs,
                     **machine(), "trainer": f"accelerator {cfg.trainer.accelerator}, precision {cfg.trainer.precision}"}
    per_epoch = {}
    for k in [x.strip() for x in args.k.split(",")]:
        point = copy.deepcopy(cfg)
        point.model.finetune.top_layers = k if k == "all" else int(k)
        point.train.max_epochs, point.train.patience = args.epochs, args.epochs
        store = store_for(protocol.rows, point, ["audio_only"], [], False)
        train, val = store.dataset(fold.train, encoder, None), store.dataset(fold.val, encoder, None)
        dims = member_dims(store, point.model, encoder, None, protocol.class_mask)
        start = time.perf_counter()
        _, summary = train_member(dims, train, val, point.train, point.trainer, 0, store=store, encoder=encoder,
                                  finetune_cfg=point.model.finetune)
        per_epoch[k] = (time.perf_counter() - start) / args.epochs
        figures[f"K={k} s/epoch"] = round(per_epoch[k], 2)
        figures[f"K={k} val UA after {args.epochs} epochs"] = round(summary["best_val_ua"], 4)
        print(f"K={k}: {per_epoch[k]:.1f} s/epoch", flush=True)
    base = per_epoch.get("0")
    if base:
        for k, t in per_epoch.items():
            if k != "0":
                figures[f"ratio K={k} / frozen"] = round(t / base, 1)
    report(figures, args.json)


if __name__ == "__main__":
    main()
