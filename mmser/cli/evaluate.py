"""``mmser evaluate``: trained checkpoints scored on a labelled manifest of speakers they never saw."""

from __future__ import annotations

import argparse


HELD_OUT = "held_out"  # the one "fold" of an evaluation run: <out>/held_out/{predictions.csv,metrics.json}


def cmd_evaluate(args: argparse.Namespace) -> None:
    import json
    import shutil
    import sys
    from pathlib import Path

    from mmser.data.manifest import read_manifest, write_table
    from mmser.errors import MmserError

    if args.batch_size < 1:
        raise MmserError(f"--batch-size {args.batch_size}: must be >= 1")
    df = read_manifest(args.manifest, check_files=True)  # every file and label checked before any work

    from mmser.atomic import atomic_write_bytes, check_writable
    from mmser.checkpoint import file_documents, heard_speakers, text_sources, trained_classes
    from mmser.devices import resolve_device
    from mmser.ensemble import checkpoint_paths, open_predictor
    from mmser.evaluation.held_out import check_scorable, heard_in_manifest, held_out_scores, over_labels, transcripts

    # every refusal from the checkpoints' headers, before any weights are read or encoder opened
    documents = [doc for path in checkpoint_paths(args.checkpoint) for doc in file_documents(path)]
    classes = trained_classes(documents)
    check_scorable(df, classes, args.manifest)
    heard = heard_in_manifest(df, heard_speakers(documents), args.manifest, args.allow_heard_speakers)
    texts = transcripts(df, text_sources(documents), args.manifest)
    if heard is None:
        print("note: a checkpoint does not record the speakers it was trained on (written before mmser recorded "
              "them): nothing checks that the manifest's speakers are new to it", file=sys.stderr)
    out = Path(args.out) / HELD_OUT  # a run of one fold: `mmser table` over the parent folder tabulates every run
    check_writable(out / "predictions.csv")  # where the predictions go, before any is made
    predictor = open_predictor(args.checkpoint, device=resolve_device(args.device), window_s=args.window)
    (out / "metrics.json").unlink(missing_ok=True)  # an earlier run's metrics never sit beside new predictions
    probs, errors = predicted_by_speaker(predictor, df, texts, out / "partial", args)
    failed = [(i, error) for i, error in enumerate(errors) if error]
    done = [i for i, error in enumerate(errors) if not error]
    if args.manifest_labels_only:  # chosen among the manifest's classes: the others' probabilities 0
        classes = [c for c in classes if c in set(df["label"])]
        probs = over_labels(probs, classes)
    table, metrics = held_out_scores(df.iloc[done], probs[done], classes) if done else (None, None)
    if table is not None:
        write_table(table, out / "predictions.csv")  # kept even when some clips failed
    if failed:
        raise MmserError(f"{len(failed)} of {len(df)} clip(s) failed; no metrics written (a score over part of "
                         f"{args.manifest} is not its score): mend or leave out these rows and run again"
                         + (" (the first 20)" if len(failed) > 20 else "")
                         + "".join(f"\n  {df['utt_id'].iloc[i]}: {err}" for i, err in failed[:20]))
    metrics.update({"manifest": str(args.manifest), "checkpoints": [str(c) for c in args.checkpoint],
                    "speakers_n": int(df["speaker"].nunique()), "heard_speakers": heard,
                    "chosen_among": classes})
    atomic_write_bytes(out / "metrics.json", json.dumps(metrics, indent=2).encode())
    shutil.rmtree(out / "partial", ignore_errors=True)  # every prediction is in predictions.csv now
    low, high = metrics["UA_ci95"]
    if args.manifest_labels_only:
        print(f"each clip's label chosen among the manifest's classes: {', '.join(classes)}")
    print(f"{args.manifest}: {len(df)} clips of {metrics['speakers_n']} speaker(s): UA {100 * metrics['UA']:.1f} % "
          f"(95 % interval over clips {100 * low:.1f}-{100 * high:.1f}), WA {100 * metrics['WA']:.1f} %, "
          f"macro F1 {100 * metrics['macro_F1']:.1f} %")
    speakers = sorted(metrics["speakers"].items(), key=lambda item: item[1]["UA"])
    if len(speakers) > 20:  # a large corpus: the weakest, the rest in metrics.json
        print(f"  the 10 speakers with the lowest UA of {len(speakers)} (each speaker's in metrics.json):")
    for who, row in speakers[:10] if len(speakers) > 20 else metrics["speakers"].items():
        print(f"  {who}: UA {100 * row['UA']:.1f} % ({row['n']} clips)")
    print(f"predictions: {out / 'predictions.csv'}; metrics: {out / 'metrics.json'}")


def predicted_by_speaker(predictor, df, texts: list[str | None], partial, args):
    """Every row's probabilities ``(N, 8)`` and error ("" when predicted), each clip predicted as ``mmser predict``
    predicts a clip list with a speaker column. Each speaker's predictions go to ``partial/`` when its last clip
    is done, and a speaker kept there is not predicted again: a stopped evaluation resumes
    (:func:`~mmser.cli.kept.kept_rows`)."""
    import numpy as np

    from mmser.audio import file_sha256
    from mmser.cli.kept import kept_rows
    from mmser.cli.predict import predict_listed
    from mmser.features.speaker_norm import rows_by_speaker
    from mmser.labels import EMOTIONS

    clips = list(zip(df["path"], texts, df["speaker"]))
    run_key = repr(([file_sha256(c) for c in args.checkpoint], args.window))

    def predict(pending, on_done):  # with predict_listed's own progress bar
        predict_listed(predictor, pending, args.batch_size, on_done=on_done)

    rows = kept_rows(clips, list(rows_by_speaker(list(df["speaker"])).values()), run_key, partial, predict, "speakers")
    probs = np.array([[row["probabilities"][e] for e in EMOTIONS] if "error" not in row else [np.nan] * len(EMOTIONS)
                      for row in rows])
    return probs, [row.get("error", "") for row in rows]


def register(add) -> None:
    p = add("evaluate", cmd_evaluate,
            "checkpoints scored on a labelled manifest of speakers they never saw (UA, WA, F1, per speaker), "
            "each clip predicted as `mmser predict` predicts a clip list with a speaker column (an enrolment "
            "checkpoint: with its speaker's other clips; running statistics: a speaker's clips in manifest order)")
    p.add_argument("manifest", help="a manifest from mmser prepare (label, speaker; for fused checkpoints the "
                                    "transcripts they were trained on: transcript (gold) or an ASR column from "
                                    "mmser transcribe)")
    p.add_argument("--checkpoint", required=True, nargs="+",
                   help="one or more checkpoints (several, or an averaged file: the mean of their probabilities)")
    p.add_argument("--out", required=True,
                   help="a run folder: held_out/predictions.csv and held_out/metrics.json go in it (`mmser table` "
                        "on the folder above tabulates several such runs, as cross-validation runs)")
    p.add_argument("--window", type=float, default=30.0, help="seconds per window for long clips")
    p.add_argument("--batch-size", type=int, default=8, help="windows per encoder / model call")
    p.add_argument("--manifest-labels-only", action="store_true",
                   help="choose each clip's label among the manifest's classes only (another corpus with fewer "
                        "classes: the other classes' probabilities set to 0, the rest renormalised); by default a "
                        "prediction of a class the manifest lacks counts as an error")
    p.add_argument("--allow-heard-speakers", action="store_true",
                   help="score speakers the checkpoints heard in training or validation (refused by default; "
                        "metrics.json lists them)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (CUDA when there is one)")
