"""scripts/setup.sh (the README's set-up, run by `make test` and so by CI) stops before pip on a disk too small."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NO_APT = 97  # the exit status of the stand-in apt-get below


def test_setup_refuses_a_disk_without_room_for_torch_before_installing_anything(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    fake = tmp_path / "bin"  # a machine that lacks a system package would run apt-get: stop there instead
    fake.mkdir()
    for tool in ("apt-get", "sudo"):
        (fake / tool).write_text(f"#!/bin/sh\nexit {NO_APT}\n")
        (fake / tool).chmod(0o755)
    free_gb = shutil.disk_usage(tmp_path).free // (1 << 30)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "MMSER_SETUP_FREE_GB": str(free_gb + 1)}
    env.pop("VENV", None)
    done = subprocess.run(["bash", "scripts/setup.sh"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env=env)
    if done.returncode == NO_APT:
        pytest.skip("setup.sh would install system packages on this machine first")
    assert done.returncode == 1, done.stderr
    assert f"{tmp_path}" in done.stderr and f"needs about {free_gb + 1} GB" in done.stderr
    assert "mmser cache prune" in done.stderr
    assert not (tmp_path / ".venv").exists()  # nothing half-installed
