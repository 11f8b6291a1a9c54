#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine: system packages, a venv in .venv, mmser with its extras.
# Idempotent: a second run only checks. Used by `make demo` and `make test` (and so by .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

need_apt=()
command -v espeak-ng >/dev/null || need_apt+=(espeak-ng)
command -v sox >/dev/null || need_apt+=(sox)
command -v chromedriver >/dev/null || need_apt+=(chromium chromium-driver)  # the web page's browser test (slow tier)
ldconfig -p 2>/dev/null | grep -q libsndfile || need_apt+=(libsndfile1)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

stamp="$VENV/.mmser-installed"
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then exit 0; fi
# the venv takes about 8.5 GB (torch with its CUDA libraries about 7); a full disk would stop pip halfway (ENOSPC).
need_gb=${MMSER_SETUP_FREE_GB:-10}
free_gb=$(df -Pk . | awk 'NR==2 {print int($4 / 1048576)}')
if [ "$free_gb" -lt "$need_gb" ]; then
  echo "setup: $(pwd) has ${free_gb} GB free; installing torch needs about ${need_gb} GB. Free space (a feature" \
       "cache can be trimmed with 'mmser cache prune'), then run again." >&2
  exit 1
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch and torchaudio wheels must be the same release: install the pair first, then everything else.
"$VENV/bin/python" -m pip install -q "torch==2.9.1" "torchaudio==2.9.1"
"$VENV/bin/python" -m pip install -q -e ".[offline,classical,serve,onnx,dev]"
touch "$stamp"
