"""Prediction latency benchmark on real clips (CPU), all figures measured in one run.

    python bench/latency.py --checkpoint results/ravdess/model.safetensors --clips-from runs/ravdess/manifest.csv \\
        --n 20 --json results/bench/latency_ravdess_audio_only.json

Figures go to ``results/bench/latency_<corpus>_<model>.json``.

- bare forward: the checkpoint's encoder(s) + model forward on waveforms already in memory,
- ``Predictor.predict(path)``: the same work through the public API (reads the file, validates, windows),
  and their ratio (target <= 1.15),
- cold start of ``mmser predict CLIP --json`` (process start to output) and its peak RSS,
- HTTP requests/second from several concurrent clients against ``mmser serve`` on loopback (bounded burst).
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from mmser.audio import load_audio
from mmser.inference import Predictor

from report import report  # bench/report.py (scripts run as `python bench/<name>.py`)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_burst(checkpoint: str, clips: list[str], clients: int, requests: int) -> dict:
    import httpx

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "mmser.cli", "serve", "--checkpoint", checkpoint, "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        payloads = [(Path(c).name, Path(c).read_bytes()) for c in clips]

        def one(i: int) -> int:
            name, data = payloads[i % len(payloads)]
            return httpx.post(f"http://127.0.0.1:{port}/predict", files={"audio": (name, data)}, timeout=120).status_code

        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            codes = list(pool.map(one, range(requests)))
        took = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"http_clients": clients, "http_requests": requests, "http_requests_per_s": round(requests / took, 2),
            "http_non_200": int(sum(c != 200 for c in codes))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--clips-from", required=True, help="manifest CSV (path, transcript)")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--json")
    args = parser.parse_args()
    from mmser.data.manifest import read_manifest

    df = read_manifest(args.clips_from)
    df = df[(df["duration_s"] > 3.5) & (df["duration_s"] < 4.5)].head(args.n)
    predictor = Predictor.from_checkpoint(args.checkpoint)
    texts = df["transcript"].tolist() if predictor.needs_text else [None] * len(df)
    wavs = [load_audio(p) for p in df["path"]]
    predictor.window_probabilities([wavs[0]], [texts[0]])  # warm-up
    predictor.predict(df["path"].iloc[0], transcript=texts[0])
    bare, api = [], []
    for path, wav, text in zip(df["path"], wavs, texts):  # interleaved, so drift hits both alike
        start = time.perf_counter()
        predictor.window_probabilities([wav], [text])
        bare.append(time.perf_counter() - start)
        start = time.perf_counter()
        predictor.predict(path, transcript=text)
        api.append(time.perf_counter() - start)
    clip = df["path"].iloc[0]
    cmd = [sys.executable, "-m", "mmser.cli", "predict", clip, "--checkpoint", args.checkpoint, "--json"]
    if predictor.needs_text:
        cmd += ["--transcript", texts[0]]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    cold = time.perf_counter() - start
    rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    figures = {
        "clips": len(df), "mean_clip_s": round(float(df["duration_s"].mean()), 2), "threads": torch.get_num_threads(),
        "bare_forward_ms": round(1000 * float(np.median(bare)), 1), "predict_ms": round(1000 * float(np.median(api)), 1),
        "predict_over_bare": round(float(np.median(api) / np.median(bare)), 3),
        "cold_start_s": round(cold, 2), "cold_start_peak_rss_mib": round(rss_mib, 0),
        **http_burst(args.checkpoint, df["path"].tolist()[:4], args.clients, 4 * args.clients),
    }
    report(figures, args.json)


if __name__ == "__main__":
    main()
