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


def cmd_train(args: argparse.Namespace) -> None:
    from mmser.training.train_final import train_checkpoint

    cfg = _experiment_config(args)
    out = Path(args.out or Path(cfg.output_dir) / "model.safetensors")
    path, _ = train_checkpoint(cfg, out)
    print(f"wrote checkpoint {path}")


AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def _clip_inputs(inputs: list[str]) -> list[tuple[str, str | None]]:
    """(path, transcript or None) for files, folders (searched recursively) and manifest CSVs."""
    import pandas as pd

    from mmser.errors import MmserError

    out: list[tuple[str, str | None]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            out += [(str(p), None) for p in sorted(path.rglob("*")) if p.suffix.lower() in AUDIO_SUFFIXES]
        elif path.suffix.lower() == ".csv":
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
            if "path" not in table.columns:
                raise MmserError(f"{path}: a clip list needs a 'path' column")
            for _, row in table.iterrows():
                clip = Path(row["path"]) if Path(row["path"]).is_absolute() else path.parent / row["path"]
                out.append((str(clip), row.get("transcript") or None))
        else:
            out.append((str(path), None))
    if not out:
        raise MmserError(f"no audio clips found in {inputs}")
    return out


def cmd_predict(args: argparse.Namespace) -> None:
    import json

    import pandas as pd
    from tqdm import tqdm

    from mmser.errors import MmserError
    from mmser.inference import Predictor
    from mmser.labels import EMOTIONS

    predictor = Predictor.from_checkpoint(args.checkpoint, window_s=args.window)
    clips = _clip_inputs(args.clips)
    speaker = predictor.enrol([c for c, _ in _clip_inputs(args.enrol)], args.batch_size) if args.enrol else None
    rows, failed = [], []
    batches = range(0, len(clips), args.batch_size)
    for start in tqdm(batches, desc="predict", unit="batch", disable=len(clips) <= args.batch_size or args.json):
        chunk = clips[start:start + args.batch_size]
        pairs = [(clip, args.transcript if args.transcript is not None else text) for clip, text in chunk]
        for (clip, _), result in zip(chunk, predictor.predict_many(pairs, args.batch_size, transcribe=args.transcribe,
                                                                       speaker=speaker)):
            if isinstance(result, Exception):
                failed.append(str(result))
            else:
                rows.append({"path": clip, **result.to_dict()})
    if args.json:
        print(json.dumps(rows if len(rows) != 1 else rows[0], indent=2))
    else:
        for row in rows:
            probs = "  ".join(f"{e} {row['probabilities'][e]:.3f}" for e in EMOTIONS)
            print(f"{row['path']}: {row['label']}\n  {probs}")
    if args.out:
        table = pd.DataFrame([{"path": r["path"], "label": r["label"],
                               **{f"prob_{e}": r["probabilities"][e] for e in EMOTIONS}} for r in rows])
        from mmser.data.manifest import write_table

        write_table(table, args.out)
    if failed:
        raise MmserError(f"{len(failed)} of {len(clips)} clip(s) failed:\n  " + "\n  ".join(failed))


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from mmser.inference import Predictor
    from mmser.serve import create_app

    app = create_app(Predictor.from_checkpoint(args.checkpoint), args.max_upload_mb * 1024 * 1024, args.max_duration)
    uvicorn.run(app, host=args.host, port=args.port, workers=1)


def cmd_baseline(args: argparse.Namespace) -> None:
    from mmser.evaluation.classical import run_classical

    cfg = _experiment_config(args)
    out = Path(args.out or Path(cfg.output_dir) / "classical_egemaps_mfcc")
    summary = run_classical(cfg, out)
    print(f"classical eGeMAPS + MFCC logistic regression: UA {100 * summary['UA_mean']:.1f} % over "
          f"{summary['folds']} folds -> {out}")


def cmd_export(args: argparse.Namespace) -> None:
    import warnings

    from mmser.export_onnx import export

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reports = export(args.checkpoint, args.out)
    for r in reports:
        print(f"{Path(args.out) / r['file']}: inputs {r['inputs']}, ONNX Runtime vs PyTorch max |dp| "
              f"{r['max_abs_prob_diff']:.1e} (tolerance {r['tolerance']:.0e})")


def cmd_curve(args: argparse.Namespace) -> None:
    from mmser.evaluation.curve import run_curve

    cfg = _experiment_config(args)
    out = Path(args.out or Path(cfg.output_dir) / "curve")
    table = run_curve(cfg, out, [int(n) for n in args.per_class.split(",")])
    print(table.to_string(index=False))
    print(f"-> {out / 'curve.png'}")


def _experiment_parser(add, name: str, func, text: str, out_help: str) -> argparse.ArgumentParser:
    """A subcommand run on an experiment YAML: CONFIG_FILE [--out] [--config ...] [key=value ...]."""
    p = add(name, func, text)
    p.add_argument("config_file", help="experiment YAML (configs/experiment/*.yaml)")
    p.add_argument("--out", help=out_help)
    p.add_argument("--config", action="append", default=[], help="more YAMLs merged on top")
    p.add_argument("overrides", nargs="*", help="key=value overrides")
    return p


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
        _experiment_parser(add, name, func, text, "results folder (default: the config's output_dir)")

    _experiment_parser(add, "train", cmd_train, "train one model on a whole manifest (validation speakers held out) -> checkpoint",
                       "checkpoint path (.safetensors); default <output_dir>/model.safetensors")

    p = add("predict", cmd_predict, "label + 8 probabilities for clips, folders or a clip-list CSV")
    p.add_argument("clips", nargs="+", help="audio files, folders, or a CSV with path[,transcript]")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--transcript", help="transcript of the clip (fused / text models)")
    p.add_argument("--transcribe", action="store_true", help="transcribe with Whisper when no transcript is given")
    p.add_argument("--enrol", nargs="+", metavar="CLIP",
                   help="other clips (files, folders or a clip-list CSV) of the one speaker of CLIPS, for checkpoints "
                        "trained with per-speaker standardisation (features.speaker_norm_enrol_clips); they should "
                        "span emotions as the training's enrolment clips did (calm speech only: train with "
                        "features.speaker_norm_enrol_labels=[neutral,calm])")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--out", help="also write predictions to this CSV")
    p.add_argument("--window", type=float, default=30.0, help="seconds per window for long clips")
    p.add_argument("--batch-size", type=int, default=8, help="windows per encoder / model call")

    p = add("serve", cmd_serve, "HTTP service: POST /predict, GET /health, GET /labels")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-upload-mb", type=int, default=20)
    p.add_argument("--max-duration", type=float, default=120.0, help="longest clip accepted, seconds")

    _experiment_parser(add, "baseline", cmd_baseline, "classical eGeMAPS + MFCC logistic-regression baseline on the same folds",
                       "results folder (default: <output_dir>/classical_egemaps_mfcc)")

    p = add("export", cmd_export, "export a checkpoint's models (fusion + head over encoder outputs) to ONNX, checked")
    p.add_argument("format", choices=["onnx"])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="output folder")

    p = _experiment_parser(add, "curve", cmd_curve, "data-efficiency curve: UA against training examples per class",
                           "results folder (default: <output_dir>/curve)")
    p.add_argument("--per-class", default="5,10,20,40", help="comma-separated N (all data is added)")

    p = add("table", cmd_table, "rebuild results.csv / results.md from stored per-utterance predictions")
    p.add_argument("results_dir")

    p = add("extract", cmd_extract, "encode a manifest once into the feature cache (resumable)")
    p.add_argument("manifest")
    p.add_argument("--encoder", action="append", help="encoder spec (repeatable); default: the config's encoders")
    p.add_argument("--text-source", default="gold", help="gold or an asr_* column (text encoders)")
    p.add_argument("--config", action="append", default=[])
    p.add_argument("overrides", nargs="*")
