"""Data commands: ``prepare`` (raw corpus -> manifest), ``labels``, ``synth``, ``folds``."""

from __future__ import annotations

import argparse


def cmd_prepare(args: argparse.Namespace) -> None:
    from data_prep import prepare_corpus
    from mmser.config import load_config

    cfg = load_config(args.config, args.overrides)
    if args.skip_bad:
        cfg.prepare.skip_bad = True
    df, summary = prepare_corpus(args.corpus, args.root, args.out, cfg.prepare, audio_root=args.audio_root)
    print(summary)
    print(f"wrote {args.out} ({len(df)} rows)")


def cmd_labels(args: argparse.Namespace) -> None:
    from mmser.labels import EMOTIONS, label_map_for

    lm = label_map_for(args.corpus)
    print(f"shared classes: {', '.join(EMOTIONS)}")
    for raw, name in lm.mapping.items():
        print(f"  {raw} -> {name}")
    for raw in sorted(lm.excluded):
        print(f"  {raw} -> (excluded)")


def cmd_synth(args: argparse.Namespace) -> None:
    from mmser.synth import synthesize

    root = synthesize(args.out_dir, seed=args.seed, per_speaker=args.per_speaker)
    print(f"wrote SYNTHETIC IEMOCAP-layout corpus to {root}")


def cmd_folds(args: argparse.Namespace) -> None:
    from mmser.config import load_config
    from mmser.data.manifest import read_manifest
    from mmser.data.splits import build_folds, describe_folds

    cfg = load_config(args.config, args.overrides)
    df = read_manifest(args.manifest)
    s = cfg.split
    folds = build_folds(df, s.protocol, s.speakers_per_fold, s.val_speakers, s.seed, s.shuffle, s.folds_file, s.utterance_folds)
    print(f"{len(folds)} {s.protocol} folds, speaker-disjoint (checked):")
    print(describe_folds(df, folds))


# data_prep.SCANNERS' names (tested equal), listed here so that building the parser imports no scanner
CORPORA = ("cremad", "csv", "emobox", "iemocap", "indian_english", "ravdess", "tess")


def register(add) -> None:
    p = add("prepare", cmd_prepare, "raw corpus folder (or CSV) -> validated manifest, with a summary")
    p.add_argument("corpus", choices=CORPORA)
    p.add_argument("root", help="corpus root folder (csv: the corpus CSV)")
    p.add_argument("--out", required=True, help="manifest to write (.csv or .parquet)")
    p.add_argument("--skip-bad", action="store_true", help="write the manifest without bad files, plus a report")
    p.add_argument("--audio-root", help="emobox: the folder EmoBox's wav paths are relative to (default: ROOT)")
    p.add_argument("--config", action="append", default=[], help="YAML with prepare.* keys (repeatable)")
    p.add_argument("overrides", nargs="*", help="key=value, e.g. prepare.label_map.joy=happy")

    p = add("labels", cmd_labels, "print a corpus's label map into the 8 shared classes")
    p.add_argument("corpus", choices=CORPORA)

    p = add("synth", cmd_synth, "speak a SYNTHETIC IEMOCAP-layout corpus with espeak-ng")
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-speaker", type=int, default=40)

    p = add("folds", cmd_folds, "print the speaker-independent folds of a manifest")
    p.add_argument("manifest")
    p.add_argument("--config", action="append", default=[])
    p.add_argument("overrides", nargs="*")
