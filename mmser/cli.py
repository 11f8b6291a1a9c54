"""``mmser``: one entry point, one subcommand per job (``mmser --help`` lists them).

Every expected failure (bad config, manifest, audio, labels, splits, checkpoints) is printed as one
``mmser: error: ...`` line naming the input and the reason, with exit code 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmser import __version__


def _user_errors() -> tuple[type[BaseException], ...]:
    from data_prep.common import PrepareError
    from mmser.audio import AudioError
    from mmser.config import ConfigError
    from mmser.data.manifest import ManifestError
    from mmser.data.splits import SplitError
    from mmser.errors import MmserError
    from mmser.labels import UnknownLabelError

    return (PrepareError, AudioError, ConfigError, ManifestError, SplitError, UnknownLabelError, MmserError,
            FileNotFoundError)


# ----------------------------------------------------------------------------------------------- prepare
def cmd_prepare(args: argparse.Namespace) -> None:
    from data_prep import SCANNERS, prepare
    from mmser.config import load_config
    from mmser.labels import label_map_for

    cfg = load_config(args.config, args.overrides)
    if args.skip_bad:
        cfg.prepare.skip_bad = True
    root = Path(args.root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: corpus root not found")
    label_map = label_map_for(args.corpus, dict(cfg.prepare.label_map), cfg.prepare.exclude_labels)
    scan = SCANNERS[args.corpus](root)
    df, summary = prepare(scan, label_map, args.out, skip_bad=cfg.prepare.skip_bad,
                          min_duration_s=cfg.prepare.min_duration_s)
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
    folds = build_folds(df, s.protocol, s.speakers_per_fold, s.val_speakers, s.seed, s.shuffle, s.folds_file)
    print(f"{len(folds)} {s.protocol} folds, speaker-disjoint (checked):")
    print(describe_folds(df, folds))


# ----------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from data_prep import SCANNERS

    parser = argparse.ArgumentParser(prog="mmser", description="Multimodal speech + text emotion recognition.")
    parser.add_argument("--version", action="version", version=f"mmser {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    p = add("prepare", cmd_prepare, "raw corpus folder (or CSV) -> validated manifest, with a summary")
    p.add_argument("corpus", choices=sorted(SCANNERS))
    p.add_argument("root", help="corpus root folder (csv: the corpus CSV)")
    p.add_argument("--out", required=True, help="manifest to write (.csv or .parquet)")
    p.add_argument("--skip-bad", action="store_true", help="write the manifest without bad files, plus a report")
    p.add_argument("--config", action="append", default=[], help="YAML with prepare.* keys (repeatable)")
    p.add_argument("overrides", nargs="*", help="key=value, e.g. prepare.label_map.joy=happy")

    p = add("labels", cmd_labels, "print a corpus's label map into the 8 shared classes")
    p.add_argument("corpus", choices=sorted(SCANNERS))

    p = add("synth", cmd_synth, "speak a SYNTHETIC IEMOCAP-layout corpus with espeak-ng")
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-speaker", type=int, default=40)

    p = add("folds", cmd_folds, "print the speaker-independent folds of a manifest")
    p.add_argument("manifest")
    p.add_argument("--config", action="append", default=[])
    p.add_argument("overrides", nargs="*")

    from mmser import commands

    commands.register(add)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may come anywhere after the subcommand (also after its options)
    unknown = [a for a in extra if a.startswith("-") or "=" not in a or not hasattr(args, "overrides")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if extra:
        args.overrides = list(args.overrides or []) + extra
    try:
        args.func(args)
    except _user_errors() as err:
        print(f"mmser: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mmser: interrupted; finished work is kept and a re-run resumes", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
