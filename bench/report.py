"""Shared by the scripts in bench/: printing and storing a benchmark's figures, running mmser measured, and the
first fold of an experiment that in-process benchmarks train on."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

# runs `mmser ARGS` and prints the process's own peak RSS: VmHWM of /proc/self/status starts anew at exec
# (ru_maxrss would carry the parent's peak over into the child); and the largest peak among the worker processes it
# started and waited for (ru_maxrss of RUSAGE_CHILDREN; 0 when it started none)
MEASURED = ("import re, resource, sys\nfrom mmser.cli import main\nrc = main(sys.argv[1:])\n"
            "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read())[1]\n"
            "print('MAXRSS_KB', hwm, flush=True)\n"
            "print('WORKER_MAXRSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, flush=True)\n"
            "sys.exit(rc)")


def report(figures: dict, json_path: str | None) -> None:
    """Print ``figures`` one per line, aligned, and write them as JSON to ``json_path`` when given."""
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:>{width}}: {value}")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(figures, indent=2) + "\n")


def machine() -> dict:
    """Where a benchmark ran: torch's threads, the processor, and the GPU when there is one (None: CPU only)."""
    import platform

    import torch

    return {"threads": torch.get_num_threads(), "machine": platform.machine(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def measured(args: list[str]) -> tuple[float, int, subprocess.CompletedProcess]:
    """Run ``mmser ARGS`` in a fresh process: (wall seconds, peak RSS in MB, the finished process)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", MEASURED, *args], capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"mmser {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return took, int(re.search(r"^MAXRSS_KB (\d+)", done.stdout, re.M)[1]) // 1024, done


def worker_peak_mb(done: subprocess.CompletedProcess) -> int:
    """The largest peak RSS (MB) among the worker processes of a :func:`measured` run (0: it started none). A
    forked worker's figure includes the pages it shares with its parent."""
    return int(re.search(r"^WORKER_MAXRSS_KB (\d+)", done.stdout, re.M)[1]) // 1024


def first_fold(config: str, overrides: list[str]):
    """The config ``config`` with ``overrides``, its protocol, and that protocol's first fold."""
    from mmser.config import load_config
    from mmser.data.protocol import load_protocol, make_folds

    cfg = load_config([config], overrides)
    protocol = load_protocol(cfg.data)
    return cfg, protocol, make_folds(protocol, cfg.split)[0]
