"""``mmser evaluate``: trained checkpoints scored on a labelled manifest of speakers they never saw."""

from __future__ import annotations

import argparse


HELD_OUT = "held_out"  # the one "fold" of an evaluation run: <out>/held_out/{predictions.csv,metrics.json}


def cmd_evaluate(args: argparse.Namespace) -> None:
    import json
    from pathlib import Path

    from mmser.data.manifest import read_manifest, write_table
    from mmser.errors import MmserError

    if args.batch_size < 1:
        raise MmserError(f"--batch-size {args.batch_size}: must be >= 1")
    df = read_manifest(args.manifest, check_files=True)  # every file and label checked before any work

    import numpy as np

    from mmser.atomic import atomic_write_bytes
    from mmser.cli.predict import predict_listed
    from mmser.devices import resolve_device
    from mmser.ensemble import open_predictor
    from mmser.evaluation.held_out import check_scorable, held_out_scores, transcripts
    from mmser.labels import EMOTIONS

    predictor = open_predictor(args.checkpoint, device=resolve_device(args.device), window_s=args.window)
    check_scorable(df, predictor.trained_classes, args.manifest)
    texts = transcripts(df, predictor.text_sources, args.manifest)
    clips = [(path, text, who) for path, text, who in zip(df["path"], texts, df["speaker"])]
    results = predict_listed(predictor, clips, args.batch_size)
    out = Path(args.out) / HELD_OUT  # a run of one fold: `mmser table` over the parent folder tabulates every run
    failed = [(i, result) for i, result in enumerate(results) if isinstance(result, Exception)]
    done = [i for i, result in enumerate(results) if not isinstance(result, Exception)]
    probs = np.array([[results[i].probabilities[e] for e in EMOTIONS] for i in done]).reshape(len(done), len(EMOTIONS))
    table, metrics = held_out_scores(df.iloc[done], probs, predictor.trained_classes) if done else (None, None)
    (out / "metrics.json").unlink(missing_ok=True)  # an earlier run's metrics never sit beside these predictions
    if table is not None:
        write_table(table, out / "predictions.csv")  # kept even when some clips failed
    if failed:
        raise MmserError(f"{len(failed)} of {len(df)} clip(s) failed; no metrics written (a score over part of "
                         f"{args.manifest} is not its score): mend or leave out these rows and run again"
                         + (" (the first 20)" if len(failed) > 20 else "")
                         + "".join(f"\n  {df['utt_id'].iloc[i]}: {err}" for i, err in failed[:20]))
    metrics.update({"manifest": str(args.manifest), "checkpoints": [str(c) for c in args.checkpoint],
                    "speakers_n": int(df["speaker"].nunique())})
    atomic_write_bytes(out / "metrics.json", json.dumps(metrics, indent=2).encode())
    low, high = metrics["UA_ci95"]
    print(f"{args.manifest}: {len(df)} clips of {metrics['speakers_n']} speaker(s): UA {100 * metrics['UA']:.1f} % "
          f"(95 % interval over clips {100 * low:.1f}-{100 * high:.1f}), WA {100 * metrics['WA']:.1f} %, "
          f"macro F1 {100 * metrics['macro_F1']:.1f} %")
    speakers = sorted(metrics["speakers"].items(), key=lambda item: item[1]["UA"])
    if len(speakers) > 20:  # a large corpus: the weakest, the rest in metrics.json
        print(f"  the 10 speakers with the lowest UA of {len(speakers)} (each speaker's in metrics.json):")
    for who, row in speakers[:10] if len(speakers) > 20 else metrics["speakers"].items():
        print(f"  {who}: UA {100 * row['UA']:.1f} % ({row['n']} clips)")
    print(f"predictions: {out / 'predictions.csv'}; metrics: {out / 'metrics.json'}")


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
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (CUDA when there is one)")
