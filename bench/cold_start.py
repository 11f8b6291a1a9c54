"""Cold start of ``mmser predict CLIP --checkpoint M`` next to ``python -c "import torch"``, measured in one run.

    python bench/cold_start.py --checkpoint runs/ravdess/studies/finetune_base_top0_8ep/fold0/model.safetensors \\
        --clip ../shared/data/ravdess/Actor_01/03-01-01-01-01-01-01.flac --json results/bench/cold_start_whisper_base.json

Each figure is the median of ``--repeat`` fresh processes, alternated (import torch, then mmser predict) so that
both see the same machine load. A third kind of process times the stages of the same work in order: imports
(torch, then mmser's predict path), checkpoint load, encoder load (the PyTorch copy of a CTranslate2 encoder
is cached as safetensors after its first conversion), first prediction.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time

from report import report  # bench/report.py (scripts run as `python bench/<name>.py`)

STAGES = """
import json, sys, time
t = [time.perf_counter()]
import torch; t.append(time.perf_counter())
from mmser.checkpoint import load_checkpoint; from mmser.inference import Predictor; t.append(time.perf_counter())
ckpt = load_checkpoint(sys.argv[1]); t.append(time.perf_counter())
predictor = Predictor(ckpt); t.append(time.perf_counter())
predictor.predict(sys.argv[2]); t.append(time.perf_counter())
names = ["import_torch", "import_mmser_predict_path", "load_checkpoint", "load_encoders", "first_prediction"]
print(json.dumps({n: round(b - a, 3) for n, a, b in zip(names, t, t[1:])}))
"""


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--clip", required=True)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args()
    predict = [sys.executable, "-m", "mmser.cli", "predict", args.clip, "--checkpoint", args.checkpoint, "--json"]
    wall(predict)  # first run: builds the encoder's safetensors copy when it is missing (not counted)
    torch_s, predict_s = [], []
    for _ in range(args.repeat):
        torch_s.append(wall([sys.executable, "-c", "import torch"]))
        predict_s.append(wall(predict))
    stages = json.loads(subprocess.run([sys.executable, "-c", STAGES, args.checkpoint, args.clip], capture_output=True,
                                       text=True, check=True).stdout)
    report({"checkpoint": args.checkpoint, "clip": args.clip, "repeat": args.repeat, "machine": platform.machine(),
            "import_torch_s": round(statistics.median(torch_s), 2), "mmser_predict_s": round(statistics.median(predict_s), 2),
            "ratio": round(statistics.median(predict_s) / statistics.median(torch_s), 2), "stages_s": stages}, args.json)


if __name__ == "__main__":
    main()
