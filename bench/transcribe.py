"""Transcription speed: one clip at a time against batched decoding, measured side by side in one run.

    python bench/transcribe.py runs/demo/manifest.csv --asr faster-whisper:tiny.en --n 80 --batch-size 8 \\
        --json results/bench/transcribe_synthetic_tiny.en.json

Figures go to ``results/bench/transcribe_<corpus>_<model>.json``.

Both runs decode the same clips (a seeded sample of the manifest) with the same model, beam and
temperature 0; the audio is read before timing. Printed: seconds per clip of each, their ratio, the
WER of each against the gold transcripts, and how many transcripts differ between the two.
"""

from __future__ import annotations

import argparse
import time

from mmser.audio import load_audio
from mmser.data.manifest import read_manifest
from mmser.features.asr import build_asr, normalize_text

from report import report  # bench/report.py (scripts run as `python bench/<name>.py`)


def timed_transcripts(asr, wavs: list) -> tuple[list[str], float]:
    """(transcripts, seconds per clip), decoding ``asr.batch_size`` clips per call as transcribe_manifest does."""
    start = time.perf_counter()
    texts = []
    for first in range(0, len(wavs), asr.batch_size):
        texts += asr.transcribe_many(wavs[first:first + asr.batch_size])
    return texts, (time.perf_counter() - start) / len(wavs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest")
    parser.add_argument("--asr", default="faster-whisper:tiny.en")
    parser.add_argument("--n", type=int, default=80, help="clips sampled from the manifest")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json")
    args = parser.parse_args()

    import jiwer

    df = read_manifest(args.manifest)
    df = df.sample(min(args.n, len(df)), random_state=args.seed)
    wavs = [load_audio(path) for path in df["path"]]
    refs = [normalize_text(t) or "<empty>" for t in df["transcript"]] if "transcript" in df else None

    figures = {"asr": args.asr, "clips": len(wavs), "beam_size": args.beam_size,
               "audio_s_per_clip": round(sum(map(len, wavs)) / 16_000 / len(wavs), 2)}
    outputs = {}
    for label, batch in (("sequential", 1), (f"batched_{args.batch_size}", args.batch_size)):
        asr = build_asr(args.asr, beam_size=args.beam_size, batch_size=batch)
        asr.transcribe_many(wavs[:1])  # warm-up, untimed
        outputs[label], per_clip = timed_transcripts(asr, wavs)
        figures[f"{label}_s_per_clip"] = round(per_clip, 3)
        if refs:
            figures[f"{label}_wer"] = round(jiwer.wer(refs, [normalize_text(t) for t in outputs[label]]), 4)
    sequential, batched = outputs.values()
    figures["speed_ratio_sequential_over_batched"] = round(
        figures["sequential_s_per_clip"] / figures[f"batched_{args.batch_size}_s_per_clip"], 2)
    figures["transcripts_that_differ"] = sum(a != b for a, b in zip(sequential, batched))
    report(figures, args.json)


if __name__ == "__main__":
    main()
