"""A wheel built from the repository installs into a fresh venv, and `mmser --help` runs from it."""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_installs_into_a_fresh_venv_and_runs(tmp_path):
    # build from a copy of the tracked files: a build writes build/ and *.egg-info into its source tree
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    source = tmp_path / "src"
    for name in tracked:
        if name.startswith(("results/", "tests/")) or not (ROOT / name).is_file():
            continue
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(source)],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    assert "deprecat" not in (built.stdout + built.stderr).lower()
    (wheel,) = (tmp_path / "dist").glob("mmser-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    pip = tmp_path / "venv" / "bin" / "pip"
    # the project from the wheel alone; its dependencies (torch & co., gigabytes) are read from this
    # environment's site-packages, which carry no .pth hook, so the checkout itself cannot be imported
    subprocess.run([str(pip), "install", "-q", "--no-deps", str(wheel)], check=True)
    env = {"PYTHONPATH": sysconfig.get_paths()["purelib"], "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    help_text = subprocess.run([str(tmp_path / "venv" / "bin" / "mmser"), "--help"], capture_output=True, text=True,
                               env=env, cwd=tmp_path)
    assert help_text.returncode == 0, help_text.stderr
    for command in ("prepare", "cv", "ablate", "predict", "serve", "doctor"):
        assert command in help_text.stdout
    where = subprocess.run([str(tmp_path / "venv" / "bin" / "python"), "-c", "import mmser, data_prep; print(mmser.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path)
    assert str(tmp_path / "venv") in where.stdout, where.stdout + where.stderr
