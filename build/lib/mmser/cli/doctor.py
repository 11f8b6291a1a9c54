"""``mmser doctor``: one screen on what this machine can run."""

from __future__ import annotations

import argparse


def cmd_doctor(args: argparse.Namespace) -> None:
    from mmser.config import load_config
    from mmser.doctor import diagnose, report

    cfg = load_config(args.config, args.overrides)
    print(report(diagnose(cfg.features.cache_dir)))


def register(add) -> None:
    p = add("doctor", cmd_doctor, "what this machine can run: encoders offline, ASR, espeak-ng, GPU, versions, caches")
    p.add_argument("--config", action="append", default=[], help="YAML whose features.cache_dir to report")
    p.add_argument("overrides", nargs="*")
