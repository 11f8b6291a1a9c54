"""Experiment commands on a config: ``demo``, ``cv``, ``ablate``, ``train``, ``baseline``, ``curve``, ``robustness``,
``select``, ``average``, ``table``.

Each loads the experiment YAML with its overrides (validated whole), checks the paths it names, then
calls its recipe: a wrong value stops before any manifest is read or any clip encoded.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mmser.atomic import check_folder, check_writable
from mmser.distributed import say


def experiment_config(args: argparse.Namespace, config_file: str | None = None, overrides: list[str] | None = None):
    """The validated config of ``CONFIG_FILE [--config ...] [key=value ...]``, its paths checked (``config_file``,
    ``overrides``: instead of the parsed ones)."""
    from mmser.config import check_paths, load_config

    placement = []
    if getattr(args, "device", None):  # encoders and training on one device
        from mmser.devices import trainer_placement

        accelerator, devices = trainer_placement(args.device)
        placement = [f"features.device={args.device}", f"trainer.accelerator={accelerator}", f"trainer.devices={devices}"]
    cfg = load_config([config_file or args.config_file] + list(args.config),
                      placement + list(args.overrides if overrides is None else overrides))
    check_paths(cfg)
    return cfg


def cmd_demo(args: argparse.Namespace) -> None:
    from mmser.evaluation.tables import to_markdown
    from mmser.recipes.demo import run_demo

    out = Path(args.out)
    table = run_demo(out, seed=args.seed, overrides=args.overrides)
    say("\n" + to_markdown(table))
    say(f"tables: {out / 'ablation' / 'results.md'}, {out / 'ablation' / 'results.csv'}")


def cmd_cv(args: argparse.Namespace) -> None:
    from mmser.recipes.cv import cross_validate

    cfg = experiment_config(args)
    out = str(check_folder(args.out or cfg.output_dir))
    summary = cross_validate(cfg, out, blind=args.blind)
    flag = "" if summary["speaker_independent"] else " [SPEAKER-DEPENDENT: random utterances]"
    if args.blind:
        val = summary.get("val_UA_mean")
        return say(f"{summary['model']}: validation UA {'n/a' if val is None else f'{100 * val:.1f} %'} over "
                   f"{summary['folds']} folds{flag}; test UA not shown (--blind: {Path(out) / 'summary.json'} and "
                   f"`mmser table` have it) -> {out}")
    say(f"{summary['model']}: UA {100 * summary['UA_mean']:.1f} ± {100 * summary['UA_std']:.1f} %, "
          f"WA {100 * summary['WA_mean']:.1f} % over {summary['folds']} folds{flag} -> {out}")


def cmd_ablate(args: argparse.Namespace) -> None:
    from mmser.evaluation.tables import to_markdown
    from mmser.recipes.ablate import run_ablation

    cfg = experiment_config(args)
    out = check_folder(args.out or cfg.output_dir)
    table = run_ablation(cfg, out)
    say("\n" + to_markdown(table))
    say(f"tables: {out / 'results.md'}, {out / 'results.csv'}")


def cmd_train(args: argparse.Namespace) -> None:
    from mmser.errors import MmserError
    from mmser.recipes.train import parts_folder, train_average, train_checkpoint

    if all("=" in a for a in args.overrides):  # one config
        cfg = experiment_config(args)
        target = check_writable(args.out or Path(cfg.output_dir) / "model.safetensors")  # before any training
        path, _ = train_checkpoint(cfg, target)
        return say(f"wrote checkpoint {path}")
    if not args.out:
        raise MmserError("train: several configs make one averaged checkpoint; name it with --out")
    # every config validated (with --config and --device, as one config is), its paths checked, before any training
    configs, _, _ = named_configs([args.config_file, *args.overrides], "train",
                                  lambda file, overrides: experiment_config(args, file, overrides))
    path = train_average(configs, check_writable(args.out))
    say(f"wrote checkpoint {path}: the average of {len(configs)} trained checkpoints (each kept in {parts_folder(path)})")


def cmd_baseline(args: argparse.Namespace) -> None:
    from mmser.recipes.baseline import describe, run_classical

    cfg = experiment_config(args)
    out = check_folder(args.out or cfg.output_dir)
    summary = run_classical(cfg, out)
    say(f"{describe(cfg)}: UA {100 * summary['UA_mean']:.1f} % over {summary['folds']} folds -> {out}")


def cmd_curve(args: argparse.Namespace) -> None:
    from mmser.errors import MmserError
    from mmser.recipes.curve import run_curve

    try:
        per_class = [int(n) for n in args.per_class.split(",")]
    except ValueError:
        raise MmserError(f"--per-class {args.per_class!r}: use comma-separated integers, e.g. 5,10,20") from None
    if any(n < 1 for n in per_class):
        raise MmserError(f"--per-class {args.per_class!r}: every N must be >= 1")
    cfg = experiment_config(args)
    out = check_folder(args.out or Path(cfg.output_dir) / "curve")
    table = run_curve(cfg, out, per_class)
    say(table.to_string(index=False))
    say(f"-> {out / 'curve.png'}")


def named_configs(items: list[str], command: str, load=None) -> tuple[dict, list[str], list[str]]:
    """``YAML ... key=value ...`` -> (config stem -> validated config with its paths checked, files, overrides).
    ``load(file, overrides)``: how each config is loaded (default: the file and the overrides alone)."""
    from mmser.config import check_paths, load_config
    from mmser.errors import MmserError

    files = [a for a in items if "=" not in a]
    overrides = [a for a in items if "=" in a]
    if not files:
        raise MmserError(f"{command}: name at least one experiment YAML")
    configs = {}
    for file in files:
        if load is None:
            cfg = load_config([file], overrides)
            check_paths(cfg)
        else:
            cfg = load(file, overrides)
        name = Path(file).stem
        if name in configs:
            raise MmserError(f"{command}: two configs named {name!r}")
        configs[name] = cfg
    return configs, files, overrides


def cmd_robustness(args: argparse.Namespace) -> None:
    from mmser.errors import MmserError
    from mmser.evaluation.robustness import ROBUSTNESS_NOISES, enrolment_stem, robustness_markdown, robustness_stem
    from mmser.recipes.robustness import run_robustness

    if args.noise not in ROBUSTNESS_NOISES:
        raise MmserError(f"--noise {args.noise!r}: use one of {list(ROBUSTNESS_NOISES)}")
    try:
        snrs = [float(x) for x in (args.snr or DEFAULT_SNRS).split(",")]
    except ValueError:
        raise MmserError(f"--snr {args.snr!r}: use comma-separated dB values, e.g. 20,10,5,0") from None
    counts = None
    if args.enrol_clips is not None:
        if args.snr is not None:
            raise MmserError("--enrol-clips predicts clean clips with other numbers of enrolment clips; --snr adds "
                             "noise: give one of them")
        try:
            counts = [int(x) for x in args.enrol_clips.split(",")]
        except ValueError:
            counts = []
        if not counts or min(counts) < 1 or len(set(counts)) != len(counts):
            raise MmserError(f"--enrol-clips {args.enrol_clips!r}: use distinct comma-separated numbers >= 1, e.g. 1,5,10,30")
    configs, files, overrides = named_configs(args.items, "robustness")
    options = ([] if args.snr is None else ["--snr", args.snr]) + ([] if args.noise == "white" else [
        "--noise", args.noise]) + ([] if args.split == "test" else ["--split", args.split]) + (
        [] if counts is None else ["--enrol-clips", args.enrol_clips]) + (
        [] if args.val_groups == 1 else ["--val-groups", str(args.val_groups)]) + [
        part for run in args.with_runs for part in ("--with", run)]
    check_folder(args.out)
    command = " ".join(["mmser robustness", *files, *overrides, "--out", args.out, *options])
    table = run_robustness(configs, args.out, snrs, args.noise, args.device or "cpu", command=command, split=args.split,
                           enrol_counts=counts, with_runs=[Path(r) for r in args.with_runs], val_groups=args.val_groups)
    say("\n" + robustness_markdown(table, args.noise, command, args.split, enrolment=counts is not None,
                                    val_groups=args.val_groups))
    stem = Path(args.out) / (robustness_stem(args.split, args.noise) if counts is None else enrolment_stem(args.split))
    say(f"-> {stem.with_suffix('.md')}, {stem.with_suffix('.png')}")


DEFAULT_SNRS = "20,10,5,0"  # dB, mmser robustness --snr


def cmd_select(args: argparse.Namespace) -> None:
    from mmser.evaluation.selection import selection_markdown
    from mmser.recipes.select import run_selection

    configs, files, overrides = named_configs(args.items, "select")
    groups = [] if args.val_groups == 1 else ["--val-groups", str(args.val_groups)]
    check_folder(args.out)
    command = " ".join(["mmser select", *files, *overrides, "--out", args.out, *groups])
    table = run_selection(configs, args.out, command=command, val_groups=args.val_groups)
    say("\n" + selection_markdown(table, command, args.val_groups))
    say(f"-> {Path(args.out) / 'selection.md'}")


def cmd_average(args: argparse.Namespace) -> None:
    from mmser.evaluation.average import average_runs

    summary = average_runs([Path(r) for r in args.runs], Path(args.out), args.val_groups)
    over = "" if args.val_groups == 1 else f" (mean over {args.val_groups} validation groups)"
    say(f"{len(args.runs)} runs averaged: validation UA {100 * summary['val_UA_mean']:.1f} %{over}, "
        f"test UA {100 * summary['UA_mean']:.1f} %\n-> {args.out} (mmser table on its parent folder lists it)")
    if summary["conditions"]:
        say(f"robustness conditions every run stored, averaged too: {', '.join(summary['conditions'])} (mmser "
            f"robustness ... --with {args.out} tables them)")
    if summary["conditions_left_out"]:
        say(f"note: left out, since not every run stored them for every fold: "
            f"{', '.join(summary['conditions_left_out'])} (predict them for the other runs with mmser robustness, "
            "then average again)")
    if not summary["one_speaker_norm"]:
        say("note: the runs standardise frames per speaker differently (features.speaker_norm mode, clips, labels): "
            "a study only, since no set of their checkpoints predicts together (mmser predict and mmser train A B "
            "refuse them)")


def cmd_table(args: argparse.Namespace) -> None:
    from mmser.evaluation.tables import to_markdown
    from mmser.recipes.table import rebuild_tables

    say(to_markdown(rebuild_tables(args.results_dir)))


def _experiment_parser(add, name: str, func, text: str, out_help: str,
                       overrides_help: str = "key=value overrides") -> argparse.ArgumentParser:
    """A subcommand run on an experiment YAML: CONFIG_FILE [--out] [--config ...] [key=value ...]."""
    p = add(name, func, text)
    p.add_argument("config_file", help="experiment YAML (configs/experiment/*.yaml)")
    p.add_argument("--out", help=out_help)
    p.add_argument("--config", action="append", default=[], help="more YAMLs merged on top")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto: encoders and training (default: the config's "
                                    "features.device and trainer.*)")
    p.add_argument("overrides", nargs="*", help=overrides_help)
    return p


def register(add) -> None:
    p = add("demo", cmd_demo, "the main job on the embedded SYNTHETIC default (generate, prepare, evaluate)")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("overrides", nargs="*", help="key=value overrides for the ablation")

    p = _experiment_parser(add, "cv", cmd_cv, "cross-validate one model over the configured speaker-independent folds",
                           "results folder (default: the config's output_dir)")
    p.add_argument("--blind", action="store_true", help="print each fold's validation UA, never its test UA (a run "
                                                        "whose recipe is still to be chosen; mmser select does this)")
    _experiment_parser(add, "ablate", cmd_ablate, "audio / text / concat / cross-attention x transcript sources, with a table",
                       "results folder (default: the config's output_dir)")

    _experiment_parser(add, "train", cmd_train, "train one model on a whole manifest (validation speakers held out) "
                                                "-> checkpoint; several configs -> one checkpoint averaging them",
                       "checkpoint path (.safetensors); default <output_dir>/model.safetensors (one config)",
                       "more experiment YAMLs (each trained, kept in <out>.parts/, resumable; the checkpoint averages "
                       "them), then key=value overrides applied to each")
    _experiment_parser(add, "baseline", cmd_baseline, "classical baselines (classical.model: logreg | svm_rbf | random_forest on classical.features: egemaps_mfcc | librosa) on the same folds",
                       "results folder (default: the config's output_dir)")
    p = _experiment_parser(add, "curve", cmd_curve, "data-efficiency curve: UA against training examples per class",
                           "results folder (default: <output_dir>/curve)")
    p.add_argument("--per-class", default="5,10,20,40", help="comma-separated N (all data is added)")

    p = add("robustness", cmd_robustness, "each config's cross-validated models on their test clips with noise at "
                                          "several SNRs (or, --enrol-clips, with other numbers of enrolment clips): a "
                                          "UA-per-SNR (per-number) table and plot")
    p.add_argument("items", nargs="+", help="experiment YAMLs, then key=value overrides applied to each")
    p.add_argument("--out", required=True, help="folder of the runs and the table")
    p.add_argument("--snr", help=f"comma-separated SNRs in dB (default {DEFAULT_SNRS})")
    p.add_argument("--noise", default="white", help="white, pink, telephone (the clip band-limited to 4 kHz as "
                                                     "an 8 kHz line carries it, white noise in that band) or "
                                                     "telephone_g711 (a digital line: 300-3400 Hz, white noise in "
                                                     "that band, 8-bit mu-law)")
    p.add_argument("--split", choices=("test", "val"), default="test",
                   help="which clips get the noise: each fold's test speakers, or its validation speakers (from the "
                        "training side: a choice for noisy recordings made there never looks at the test speakers)")
    p.add_argument("--enrol-clips", help="instead of noise, for models standardised with enrolment clips: clean clips "
                                         "each standardised with K of its speaker's other clips, for each K of this "
                                         "comma-separated list (e.g. 1,5,10,30; a seeded draw, as cross-validation "
                                         "draws features.speaker_norm.test_clips) -> enrolment[_val].{md,csv,png}")
    p.add_argument("--val-groups", type=int, default=1,
                   help="with --split val: cross-validate each config once per group of validation speakers (other "
                        "disjoint speakers of each fold's training side, as mmser select --val-groups trains them) and "
                        "table the mean over the groups (default 1: each fold's own validation speakers)")
    p.add_argument("--with", dest="with_runs", action="append", default=[], metavar="RUN",
                   help="an averaged run (mmser average of runs under --out, after their conditions were predicted) "
                        "tabled beside them from its stored predictions; nothing is predicted for it (repeatable)")
    p.add_argument("--device", help="cpu, cuda or cuda:N for the noisy predictions (training uses the configs')")

    p = add("select", cmd_select, "candidate recipes cross-validated on the same folds, chosen per fold on validation "
                                  "speakers only: each candidate's and the nested choice's test UA")
    p.add_argument("items", nargs="+", help="candidate experiment YAMLs, then key=value overrides applied to each")
    p.add_argument("--out", required=True, help="folder of the candidates' runs and the selection table")
    p.add_argument("--val-groups", type=int, default=1,
                   help="disjoint groups of validation speakers per fold, each held out of its own training run of "
                        "every candidate; selection reads the mean validation UA over them (default 1)")

    p = add("average", cmd_average, "a run whose probabilities are the mean of cross-validated runs on the same "
                                    "folds (from their stored predictions; what predicting with all their "
                                    "checkpoints gives)")
    p.add_argument("runs", nargs="+", help="run folders of mmser cv or mmser select (<run>/<fold>/predictions.csv)")
    p.add_argument("--out", required=True, help="the averaged run's folder")
    p.add_argument("--val-groups", type=int, default=1,
                   help="validation groups of the runs (as given to mmser select; default 1)")

    p = add("table", cmd_table, "rebuild results.csv / results.md from stored per-utterance predictions")
    p.add_argument("results_dir")
