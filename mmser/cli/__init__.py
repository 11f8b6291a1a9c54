"""``mmser``: one entry point, one subcommand per job (``mmser --help`` lists them).

One module per command group (``data``, ``features``, ``experiment``, ``predict``, ``evaluate``, ``doctor``);
each parses its arguments, calls a recipe or the library, and prints. Every expected failure is an
:class:`~mmser.errors.MmserError` (bad config, manifest, audio, labels, splits, checkpoints): it is
printed as one ``mmser: error: ...`` line naming the input and the reason, with exit code 2 — never a
traceback; so is a full disk or a file it may not write (:func:`storage_error`), after which a re-run
resumes. Configs are validated whole before any work starts.
"""

from __future__ import annotations

import argparse
import errno
import sys
import warnings
from pathlib import Path
from typing import Callable

from mmser import __version__
from mmser.errors import MmserError

AddCommand = Callable[..., argparse.ArgumentParser]
PACKAGE_DIR = Path(__file__).resolve().parents[1]
PYTHON_SHOWWARNING = warnings.showwarning


def show_note(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` for the command line: mmser's own warnings (a ``UserWarning`` raised from its
    code: fewer enrolment clips than training's, a fold file's group without speakers) as one ``mmser: note:``
    line on stderr, without the source line Python shows; any other warning as Python shows it."""
    if category is UserWarning and Path(filename).resolve().is_relative_to(PACKAGE_DIR):
        print(f"mmser: note: {message}", file=sys.stderr if file is None else file)
    else:
        PYTHON_SHOWWARNING(message, category, filename, lineno, file, line)


# commands whose work is stored as it finishes (features, transcripts, folds, parts, speakers), so a re-run resumes
# (so does `predict --out`); the others (serve, info, table, ...) write their output at the end, or nothing
RESUMING_COMMANDS = frozenset({"demo", "cv", "ablate", "select", "robustness", "curve", "baseline", "train", "extract",
                               "transcribe", "evaluate"})
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
DENIED_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)


def storage_error(err: OSError) -> str | None:
    """The one line for a storage failure in mid-run, naming the file: a full disk or quota, or a file or
    folder mmser may not write or read (a read-only file system, a folder made read-only meanwhile; output
    paths are checked before any work, so this is a place met later, such as the feature cache). ``None`` for
    any other error, and for a refusal that names no file (a port, a process): those are not disguised."""
    from mmser.features.cache import PRUNE_HINT

    kept = "finished work is kept (predictions, checkpoints and caches are written whole or not at all)"
    if err.errno in FULL_ERRNOS:
        where = f" writing {err.filename}" if err.filename else ""
        return f"the disk is full{where} ({err.strerror}); {kept}: free space ({PRUNE_HINT}) and run again: it resumes"
    if err.errno in DENIED_ERRNOS and err.filename:
        return (f"{err.filename}: {err.strerror}; {kept}: give mmser access to it (or point features.cache_dir or "
                "--out elsewhere) and run again: it resumes")
    return None


def build_parser() -> argparse.ArgumentParser:
    from mmser.cli import data, doctor, evaluate, experiment, features, predict

    parser = argparse.ArgumentParser(prog="mmser", description="Multimodal speech + text emotion recognition.")
    parser.add_argument("--version", action="version", version=f"mmser {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    for group in (data, features, experiment, predict, evaluate, doctor):
        group.register(add)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides (and `train`'s further YAMLs) may come anywhere after the subcommand, also after its options
    unknown = [a for a in extra if a.startswith("-") or not ("=" in a or a.endswith((".yaml", ".yml")))
               or not hasattr(args, "overrides")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if extra:
        args.overrides = list(args.overrides or []) + extra
    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_note
            args.func(args)
    except MmserError as err:
        print(f"mmser: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        resumes = args.command in RESUMING_COMMANDS or (args.command == "predict" and args.out and not args.timeline)
        kept = "; finished work is kept and a re-run resumes" if resumes else ""
        print(f"mmser: interrupted{kept}", file=sys.stderr)
        return 130
    except OSError as err:
        line = storage_error(err)
        if line is None:
            raise
        print(f"mmser: error: {line}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
