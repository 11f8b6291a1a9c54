"""Feature commands: ``extract`` (encoders -> cache) and ``transcribe`` (Whisper -> an asr_* column)."""

from __future__ import annotations

import argparse


def cmd_extract(args: argparse.Namespace) -> None:
    import time

    from mmser.config import AUDIO_ENCODER_KINDS, TEXT_ENCODER_KINDS, ConfigError, encoder_spec_problem, load_config
    from mmser.data.manifest import read_manifest
    from mmser.features.extract import extract
    from mmser.features.sharding import parse_shard

    cfg = load_config(args.config, device_overrides(args, "features.device") + list(args.overrides))
    specs = args.encoder or list(cfg.features.audio_encoders) + [cfg.features.text_encoder]
    bad = [p for p in (encoder_spec_problem(s, AUDIO_ENCODER_KINDS + TEXT_ENCODER_KINDS) for s in specs) if p]
    if bad:
        raise ConfigError("--encoder: " + "; ".join(bad))
    shard = parse_shard(args.shard)
    df = read_manifest(args.manifest)
    for spec in specs:
        start = time.perf_counter()
        result = extract(df, spec, cfg.features, args.text_source, shard=shard)
        took = time.perf_counter() - start
        result.cache.refresh()  # what every process has written so far
        unique, missing = len(set(result.keys)), len(result.cache.missing(result.keys))
        part = f" (shard {shard[0]}/{shard[1]}: {missing} item(s) of other shards still to encode)" if shard else ""
        print(f"{spec}: {result.computed} encoded, {unique - missing - result.computed} cache hits{part}, "
              f"{took:.1f} s -> {result.cache.dir}")


def cmd_transcribe(args: argparse.Namespace) -> None:
    from mmser.config import ASR_KINDS, ConfigError, encoder_spec_problem, load_config
    from mmser.features.sharding import parse_shard
    from mmser.features.transcribe import describe_wer, transcribe_manifest

    cfg = load_config(args.config, device_overrides(args, "asr.device") + list(args.overrides))
    specs = args.asr or list(cfg.asr.models)
    bad = [p for p in (encoder_spec_problem(s, ASR_KINDS) for s in specs) if p]
    if bad:
        raise ConfigError("--asr: " + "; ".join(bad))
    shard = parse_shard(args.shard)
    for spec in specs:
        report = transcribe_manifest(args.manifest, spec, cfg.asr, force=args.force, shard=shard)
        if shard:
            print(f"{spec}: shard {shard[0]}/{shard[1]} journalled; run `mmser transcribe {args.manifest}` without "
                  "--shard once every shard is done, to write the column")
        else:
            print(describe_wer(args.manifest, spec, report))


def cmd_cache(args: argparse.Namespace) -> None:
    from mmser.config import load_config
    from mmser.errors import MmserError
    from mmser.features.cache import GIGABYTE
    from mmser.features.cache_usage import describe, prune_plan, remove, scan

    cache_dir = load_config(args.config, args.overrides).features.cache_dir
    folders = scan(cache_dir)
    if args.action == "list":
        if args.unused_days is not None or args.max_gb is not None or args.dry_run:
            raise MmserError("mmser cache list: --unused-days, --max-gb and --dry-run belong to `mmser cache prune`")
        print(describe(folders))
        return
    shards = prune_plan(folders, args.unused_days, args.max_gb, args.keep_hours)
    size = sum(s.bytes for s in shards) / GIGABYTE
    if args.dry_run:
        print(f"would remove {len(shards)} shard(s), {sum(s.items for s in shards)} items, {size:.2f} GB "
              "(dry run: nothing removed)")
        for shard in shards:
            print(f"  {shard.path}")
        return
    freed = remove(shards) / GIGABYTE
    print(f"removed {len(shards)} shard(s), {sum(s.items for s in shards)} items, {freed:.2f} GB; the next run "
          "that needs them encodes them again")
    print(describe(scan(cache_dir)))


def device_overrides(args: argparse.Namespace, key: str) -> list[str]:
    """``--device D`` as the config override ``key=D`` (checked against the machine first)."""
    if args.device is None:
        return []
    from mmser.devices import resolve_device

    resolve_device(args.device)
    return [f"{key}={args.device}"]


DEVICE_HELP = "cpu, cuda, cuda:N or auto (CUDA when there is one); default: the config's"


def manifest_command(add, name: str, func, text: str, shard_help: str):
    """A subcommand on a manifest: MANIFEST [--shard] [--device] [--config ...] [key=value ...]."""
    p = add(name, func, text)
    p.add_argument("manifest")
    p.add_argument("--shard", help=shard_help + ", or env: rank and world size from torchrun / SLURM / MPI")
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument("--config", action="append", default=[])
    p.add_argument("overrides", nargs="*")
    return p


def register(add) -> None:
    p = manifest_command(add, "transcribe", cmd_transcribe,
                         "add Whisper transcripts to a manifest (resumable) and print the WER",
                         "I/N: transcribe only shard I of N into its own journal (merged by a run without --shard)")
    p.add_argument("--asr", action="append", help="BACKEND:MODEL, e.g. faster-whisper:tiny.en (repeatable)")
    p.add_argument("--force", action="store_true", help="transcribe again even where a transcript exists")

    p = manifest_command(add, "extract", cmd_extract, "encode a manifest once into the feature cache (resumable)",
                         "I/N: encode only shard I of N (processes, GPUs or machines filling one cache)")
    p.add_argument("--encoder", action="append", help="encoder spec (repeatable); default: the config's encoders")
    p.add_argument("--text-source", default="gold", help="gold or an asr_* column (text encoders)")

    p = add("cache", cmd_cache, "what the feature cache holds per encoder (list), or remove the shards no run has "
            "used lately (prune)")
    p.add_argument("action", choices=("list", "prune"))
    p.add_argument("--unused-days", type=float, help="prune: shards no run has read or written for DAYS")
    p.add_argument("--max-gb", type=float, help="prune: then the least recently used until the cache holds GB")
    p.add_argument("--keep-hours", type=float, default=24.0,
                   help="prune: never a shard used within these hours (a run in progress keeps what it reads)")
    p.add_argument("--dry-run", action="store_true", help="prune: print what would go, remove nothing")
    p.add_argument("--config", action="append", default=[], help="YAML whose features.cache_dir to use")
    p.add_argument("overrides", nargs="*")
