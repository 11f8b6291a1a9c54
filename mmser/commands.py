"""Subcommands beyond data preparation (demo, transcribe, extract, train, cv, ablate, table, predict)."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_demo(args: argparse.Namespace) -> None:
    """The embedded default: SYNTHETIC corpus -> manifest -> Whisper transcripts -> features -> ablation table."""
    from mmser.cli import main as cli
    from mmser.config import CONFIG_DIR

    out = Path(args.out)
    manifest = out / "manifest.csv"
    experiment = CONFIG_DIR / "experiment" / "synthetic_ablation.yaml"
    steps: list[list[str]] = []
    if not (out / "corpus" / "IEMOCAP_full_release" / "SYNTHETIC").exists():
        steps.append(["synth", str(out / "corpus"), "--seed", str(args.seed)])
    if not manifest.exists():
        steps.append(["prepare", "iemocap", str(out / "corpus"), "--out", str(manifest)])
    steps.append(["folds", str(manifest), "--config", str(experiment)])
    steps.append(["transcribe", str(manifest), "--asr", "faster-whisper:tiny.en"])
    steps.append(["ablate", str(experiment), f"data.manifest={manifest}", f"features.cache_dir={out / 'cache'}",
                  "--out", str(out / "ablation"), *args.overrides])
    for step in steps:
        print(f"\n$ mmser {' '.join(step)}", flush=True)
        if cli(step) != 0:
            raise SystemExit(2)


def cmd_extract(args: argparse.Namespace) -> None:
    import time

    from mmser.config import load_config
    from mmser.data.manifest import read_manifest
    from mmser.encoders.extract import extract

    cfg = load_config(args.config, args.overrides)
    df = read_manifest(args.manifest)
    specs = args.encoder or list(cfg.features.audio_encoders) + [cfg.features.text_encoder]
    for spec in specs:
        start = time.perf_counter()
        result = extract(df, spec, cfg.features, args.text_source)
        took = time.perf_counter() - start
        hits = len(set(result.keys)) - result.computed
        print(f"{spec}: {result.computed} encoded, {hits} cache hits, {took:.1f} s -> {result.cache.dir}")


def cmd_transcribe(args: argparse.Namespace) -> None:
    from mmser.config import load_config
    from mmser.encoders.asr import asr_column
    from mmser.encoders.transcribe import transcribe_manifest

    cfg = load_config(args.config, args.overrides)
    for spec in args.asr or list(cfg.asr.models):
        report = transcribe_manifest(args.manifest, spec, cfg.asr, force=args.force)
        print(f"wrote column {asr_column(spec)} to {args.manifest}")
        if report:
            print(f"WER {report['wer']:.3f} over {report['utterances']} utterances with gold transcripts")
            for spk, wer in report.get("per_speaker", {}).items():
                print(f"  {spk}: {wer:.3f}")


def _experiment_config(args: argparse.Namespace):
    from mmser.config import load_config

    return load_config([args.config_file] + list(args.config), args.overrides)


def cmd_cv(args: argparse.Namespace) -> None:
    from mmser.evaluation.crossval import run_cv

    cfg = _experiment_config(args)
    out = args.out or cfg.output_dir
    summary = run_cv(cfg, out)
    print(f"{summary['model']}: UA {100 * summary['UA_mean']:.1f} ± {100 * summary['UA_std']:.1f} %, "
          f"WA {100 * summary['WA_mean']:.1f} % over {summary['folds']} folds -> {out}")


def cmd_ablate(args: argparse.Namespace) -> None:
    from mmser.evaluation.ablation import run_ablation
    from mmser.evaluation.tables import to_markdown

    cfg = _experiment_config(args)
    out = Path(args.out or cfg.output_dir)
    table = run_ablation(cfg, out)
    print("\n" + to_markdown(table))
    print(f"tables: {out / 'results.md'}, {out / 'results.csv'}")


def cmd_table(args: argparse.Namespace) -> None:
    from mmser.evaluation.tables import to_markdown, write_tables

    table = write_tables(args.results_dir)
    print(to_markdown(table))


def register(add) -> None:
    """Add this module's subcommands to the CLI parser (``add(name, func, help)``)."""
    p = add("demo", cmd_demo, "the main job on the embedded SYNTHETIC default (generate, prepare, evaluate)")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("overrides", nargs="*", help="key=value overrides for the ablation")

    p = add("transcribe", cmd_transcribe, "add Whisper transcripts to a manifest (resumable) and print the WER")
    p.add_argument("manifest")
    p.add_argument("--asr", action="append", help="BACKEND:MODEL, e.g. faster-whisper:tiny.en (repeatable)")
    p.add_argument("--force", action="store_true", help="transcribe again even where a transcript exists")
    p.add_argument("--config", action="append", default=[])
    p.add_argument("overrides", nargs="*")

    for name, func, text in (("cv", cmd_cv, "cross-validate one model over the configured speaker-independent folds"),
                             ("ablate", cmd_ablate, "audio / text / concat / cross-attention x transcript sources, with a table")):
        p = add(name, func, text)
        p.add_argument("config_file", help="experiment YAML (configs/experiment/*.yaml)")
        p.add_argument("--out", help="results folder (default: the config's output_dir)")
        p.add_argument("--config", action="append", default=[], help="more YAMLs merged on top")
        p.add_argument("overrides", nargs="*", help="key=value overrides")

    p = add("table", cmd_table, "rebuild results.csv / results.md from stored per-utterance predictions")
    p.add_argument("results_dir")

    p = add("extract", cmd_extract, "encode a manifest once into the feature cache (resumable)")
    p.add_argument("manifest")
    p.add_argument("--encoder", action="append", help="encoder spec (repeatable); default: the config's encoders")
    p.add_argument("--text-source", default="gold", help="gold or an asr_* column (text encoders)")
    p.add_argument("--config", action="append", default=[])
    p.add_argument("overrides", nargs="*")
