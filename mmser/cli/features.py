"""Feature commands: ``extract`` (encoders -> cache) and ``transcribe`` (Whisper -> an asr_* column)."""

from __future__ import annotations

import argparse


def cmd_extract(args: argparse.Namespace) -> None:
    import time

    from mmser.config import AUDIO_ENCODER_KINDS, TEXT_ENCODER_KINDS, ConfigError, encoder_spec_problem, load_config
    from mmser.data.manifest import read_manifest
    from mmser.features.extract import extract

    cfg = load_config(args.config, args.overrides)
    specs = args.encoder or list(cfg.features.audio_encoders) + [cfg.features.text_encoder]
    bad = [p for p in (encoder_spec_problem(s, AUDIO_ENCODER_KINDS + TEXT_ENCODER_KINDS) for s in specs) if p]
    if bad:
        raise ConfigError("--encoder: " + "; ".join(bad))
    df = read_manifest(args.manifest)
    for spec in specs:
        start = time.perf_counter()
        result = extract(df, spec, cfg.features, args.text_source)
        took = time.perf_counter() - start
        hits = len(set(result.keys)) - result.computed
        print(f"{spec}: {result.computed} encoded, {hits} cache hits, {took:.1f} s -> {result.cache.dir}")


def cmd_transcribe(args: argparse.Namespace) -> None:
    from mmser.config import ASR_KINDS, ConfigError, encoder_spec_problem, load_config
    from mmser.features.transcribe import describe_wer, transcribe_manifest

    cfg = load_config(args.config, args.overrides)
    specs = args.asr or list(cfg.asr.models)
    bad = [p for p in (encoder_spec_problem(s, ASR_KINDS) for s in specs) if p]
    if bad:
        raise ConfigError("--asr: " + "; ".join(bad))
    for spec in specs:
        report = transcribe_manifest(args.manifest, spec, cfg.asr, force=args.force)
        print(describe_wer(args.manifest, spec, report))


def register(add) -> None:
    p = add("transcribe", cmd_transcribe, "add Whisper transcripts to a manifest (resumable) and print the WER")
    p.add_argument("manifest")
    p.add_argument("--asr", action="append", help="BACKEND:MODEL, e.g. faster-whisper:tiny.en (repeatable)")
    p.add_argument("--force", action="store_true", help="transcribe again even where a transcript exists")
    p.add_argument("--config", action="append", default=[])
    p.add_argument("overrides", nargs="*")

    p = add("extract", cmd_extract, "encode a manifest once into the feature cache (resumable)")
    p.add_argument("manifest")
    p.add_argument("--encoder", action="append", help="encoder spec (repeatable); default: the config's encoders")
    p.add_argument("--text-source", default="gold", help="gold or an asr_* column (text encoders)")
    p.add_argument("--config", action="append", default=[])
    p.add_argument("overrides", nargs="*")
