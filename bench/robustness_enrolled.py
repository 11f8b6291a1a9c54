"""``mmser robustness`` on an enrolment model: each noisy clip encoded once and predicted in batches, against the
former path (encoded for its moments, then again, alone, for its prediction), side by side in one run.

    python bench/robustness_enrolled.py --clips-from runs/ravdess/manifest.csv --speakers 2 --clips 30 \\
        --json results/bench/robustness_enrolled_ravdess_base.json

The checkpoint is an audio-only model with random weights over ``--encoder`` (the time is the encoder's and the
model's, not what they learnt), trained as with ``features.speaker_norm.mode: enrol`` and ``clips: --enrol``.
``--clips`` clips of each of ``--speakers`` speakers (from a manifest's first speakers, else generated tones) get
white noise at ``--snr`` dB; each clip is standardised with the moments of the enrolment clips drawn for it.
The two paths alternate ``--repeat`` times (the figure is each one's fastest); they must give the same
probabilities (largest difference printed). Encoder windows are counted for each path.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

from mmser.audio import load_audio
from mmser.checkpoint import Member, save_checkpoint
from mmser.evaluation.robustness import _enrolled_probabilities, _noisy
from mmser.features.encoders.registry import build_audio_encoder
from mmser.features.spec import FeatureSpec, SpeakerNorm
from mmser.features.speaker_norm import speaker_moments_of
from mmser.inference import Predictor
from mmser.labels import EMOTIONS
from mmser.models.builders import ModelDims, build_model

from report import machine, report  # bench/report.py (scripts run as `python bench/<name>.py`)


def former_path(predictor: Predictor, rows: pd.DataFrame, snr: float, enrol: int) -> np.ndarray:
    """The path ``mmser robustness`` took before: every noisy clip encoded for its moments, then each clip
    encoded again and predicted alone. Probabilities ``(N, 8)`` in the rows' order."""
    ids, speakers = rows["utt_id"].tolist(), rows["speaker"].tolist()
    noisy = [_noisy(load_audio(p), u, "white", snr) for u, p in zip(ids, rows["path"])]
    own = predictor.clip_moments(noisy)
    given = {spec: speaker_moments_of([m[spec] for m in own], speakers, enrol) for spec in predictor.audio_encoders}
    out = np.zeros((len(ids), len(EMOTIONS)), np.float32)
    for j, wav in enumerate(noisy):
        result = predictor.predict_many([(wav, None)], speaker={spec: given[spec][j] for spec in given})[0]
        out[j] = [result.probabilities[e] for e in EMOTIONS]
    return out


def clip_rows(manifest: str | None, speakers: int, clips: int, folder: Path) -> pd.DataFrame:
    """utt_id, speaker, path of ``clips`` clips of each of ``speakers`` speakers: a manifest's first speakers, or
    generated harmonic tones of 1.5-4 s."""
    if manifest:
        table = pd.read_csv(manifest, dtype=str)
        chosen = sorted(table["speaker"].unique())[:speakers]
        rows = pd.concat([table[table["speaker"] == s].head(clips) for s in chosen])
        base = Path(manifest).parent
        rows["path"] = [p if Path(p).is_absolute() else str(base / p) for p in rows["path"]]
        return rows[["utt_id", "speaker", "path"]].reset_index(drop=True)
    rng, records = np.random.default_rng(0), []
    for s in range(speakers):
        for c in range(clips):
            t = np.arange(int(16_000 * rng.uniform(1.5, 4.0))) / 16_000
            wav = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 300) * t * (1 + 0.05 * np.sin(3 * t)))
            path = folder / f"s{s}_{c}.wav"
            sf.write(path, wav.astype(np.float32), 16_000)
            records.append({"utt_id": f"s{s}_{c}", "speaker": f"s{s}", "path": str(path)})
    return pd.DataFrame(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="whisper-ct2:base")
    parser.add_argument("--clips-from", help="a prepared manifest (else generated tones)")
    parser.add_argument("--speakers", type=int, default=2)
    parser.add_argument("--clips", type=int, default=30, help="clips per speaker")
    parser.add_argument("--enrol", type=int, default=10, help="enrolment clips per test clip")
    parser.add_argument("--snr", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()
    features = replace(FeatureSpec(whisper_window="clip", frame_stride=4, audio_layers="all"),
                       speaker_norm=SpeakerNorm("enrol", args.enrol))
    encoder = build_audio_encoder(args.encoder, "all", whisper_window="clip")
    torch.manual_seed(0)
    model = build_model(ModelDims("audio_only", audio_dim=encoder.dim, num_audio_layers=encoder.num_layers,
                                  hidden_dim=128))
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = save_checkpoint(Path(tmp) / "enrol.safetensors", [Member(model, args.encoder, encoder.fingerprint, None)],
                               features, None, {})
        predictor = Predictor.from_checkpoint(ckpt)
        rows = clip_rows(args.clips_from, args.speakers, args.clips, Path(tmp))
        windows = []
        (enc,) = predictor.audio_encoders.values()
        encode = enc.encode
        enc.encode = lambda batch: (windows.append(len(batch)), encode(batch))[1]
        paths = {"former": lambda: former_path(predictor, rows, args.snr, args.enrol),
                 "encoded_once_batched": lambda: _enrolled_probabilities(
                     predictor, rows[["utt_id", "speaker"]], rows, None, "white", [args.snr], "bench", False,
                     None)[args.snr]}
        best, probs, counted = {}, {}, {}
        for _ in range(args.repeat):
            for name, run in paths.items():
                windows.clear()
                start = time.perf_counter()
                probs[name] = run()
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
                counted[name] = sum(windows)
    figures = {"encoder": args.encoder, "clips_from": args.clips_from or "generated tones", "speakers": args.speakers,
               "clips": len(rows), "enrolment_clips": args.enrol, "snr_db": args.snr, "repeat": args.repeat,
               **machine()}
    for name in paths:
        figures[f"{name} s"] = round(best[name], 2)
        figures[f"{name} encoder windows"] = counted[name]
    figures["ratio former / encoded_once_batched"] = round(best["former"] / best["encoded_once_batched"], 2)
    figures["max |probability difference|"] = float(np.abs(probs["former"] - probs["encoded_once_batched"]).max())
    report(figures, args.json)


if __name__ == "__main__":
    main()
