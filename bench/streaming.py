"""Streaming over the WebSocket: delay from a segment's end to its result, and the real-time factor.

    python bench/streaming.py --checkpoint runs/ravdess/studies/finetune_base_top0_8ep/fold0/model.safetensors \\
        --json results/bench/streaming_whisper_base.json
    python bench/streaming.py --checkpoint CKPT --rates 8000,44100,48000 --json results/bench/streaming_rates.json

A recording of espeak-ng sentences in different styles joined with pauses (generated; about 40 s) is sent to
``/stream`` of the app ``mmser serve`` runs (in process, through Starlette's test client) twice, side by side:

1. paced in real time, in 20 ms chunks: for each segment, the delay from the moment its last sample was sent
   (the segment's end in audio time) to the moment its result arrived; median and p95 over segments. It
   includes the detector's wait for ``min_silence_s`` of silence before it closes a segment.
2. as fast as possible: wall time / audio duration (real-time factor; < 1 keeps up with live audio).

With ``--rates``, only (2), once per rate, side by side: the recording resampled to each rate and sent as
``/stream?rate=<rate>`` (resampled back to 16 kHz as it arrives), against 16 kHz sent as is; the ratio of each
real-time factor to 16 kHz's is what resampling a stream costs.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mmser.audio import SAMPLE_RATE, load_audio, resample
from mmser.timeline import TimelineOptions

from report import report  # bench/report.py (scripts run as `python bench/<name>.py`)

SENTENCES = [("the weather report says it will rain all afternoon", 30, 150),
             ("I cannot believe you broke my favourite guitar again", 80, 210),
             ("please bring the blue folder to the meeting room", 50, 130),
             ("oh no, I think we missed the last train home tonight", 65, 170),
             ("that was the best concert I have ever been to", 90, 190),
             ("we should probably talk about what happened yesterday", 40, 120)]
CHUNK_S = 0.02  # s per message when paced


def recording(folder: Path) -> np.ndarray:
    pieces = [np.zeros(int(0.5 * SAMPLE_RATE), np.float32)]
    for k, (text, pitch, rate) in enumerate(SENTENCES * 2):
        path = folder / f"{k}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-p", str(pitch), "-s", str(rate), "-w", str(path), text], check=True)
        pieces += [load_audio(path), np.zeros(int(1.2 * SAMPLE_RATE), np.float32)]
    return np.concatenate(pieces)


def run(client, wav: np.ndarray, paced: bool, rate: int = SAMPLE_RATE) -> tuple[float, list[float]]:
    """(wall seconds, delays of the segment results in seconds) of one stream; ``wav`` at 16 kHz, sent at ``rate``."""
    pcm = (np.clip(resample(wav, SAMPLE_RATE, rate), -1, 1) * 32767).astype("<i2")
    step = int(CHUNK_S * rate)
    delays, start = [], time.perf_counter()
    import threading

    received: list[tuple[float, dict]] = []
    with client.websocket_connect(f"/stream?rate={rate}") as ws:
        ws.receive_json()

        def listen():
            while True:
                message = ws.receive_json()
                received.append((time.perf_counter(), message))
                if message["type"] == "end":
                    return

        listener = threading.Thread(target=listen)
        listener.start()
        for k in range(0, len(pcm), step):
            if paced:
                time.sleep(max(0.0, start + k / rate - time.perf_counter()))
            ws.send_bytes(pcm[k:k + step].tobytes())
        ws.send_text("end")
        listener.join()
    wall = time.perf_counter() - start
    for at, message in received:
        if message["type"] == "segment" and message["status"] == "speech":
            delays.append(at - (start + message["end_s"]))
    return wall, delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--json")
    parser.add_argument("--rates", help="comma-separated client sample rates (Hz) to compare with 16 kHz, unpaced")
    args = parser.parse_args()
    from fastapi.testclient import TestClient

    from mmser.inference import Predictor
    from mmser.serve import create_app

    with tempfile.TemporaryDirectory() as tmp:
        wav = recording(Path(tmp))
    predictor = Predictor.from_checkpoint(args.checkpoint)
    client = TestClient(create_app(predictor))
    run(client, wav[: 3 * SAMPLE_RATE], paced=False)  # warm-up
    duration = len(wav) / SAMPLE_RATE
    if args.rates:
        rates = [SAMPLE_RATE] + [int(r) for r in args.rates.split(",")]
        factors = {rate: run(client, wav, paced=False, rate=rate)[0] / duration for rate in rates}
        report({"checkpoint": args.checkpoint, "audio_s": round(duration, 2), "chunk_s": CHUNK_S,
                "threads": torch.get_num_threads(), "machine": platform.machine(),
                "real_time_factor": {str(r): round(f, 3) for r, f in factors.items()},
                "ratio_to_16k": {str(r): round(f / factors[SAMPLE_RATE], 3) for r, f in factors.items()}}, args.json)
        return
    paced_wall, delays = run(client, wav, paced=True)
    fast_wall, _ = run(client, wav, paced=False)
    options = TimelineOptions()
    report({"checkpoint": args.checkpoint, "encoders": [m.audio_encoder for m in predictor.ckpt.members],
            "audio_s": round(duration, 2), "segments": len(delays), "chunk_s": CHUNK_S,
            "min_silence_s": options.min_silence_s, "threads": torch.get_num_threads(), "machine": platform.machine(),
            "delay_median_s": round(float(np.median(delays)), 3), "delay_p95_s": round(float(np.percentile(delays, 95)), 3),
            "paced_wall_s": round(paced_wall, 2), "real_time_factor": round(fast_wall / duration, 3)}, args.json)


if __name__ == "__main__":
    main()
