#!/usr/bin/env bash
# The wheels scripts/device_finetune.sh needs on the device machine, whose image has torch, torchaudio, lightning,
# transformers, pandas, scikit-learn, safetensors and tiktoken but none of these (and no network). Into .whl/,
# which git ignores; the device run carries it.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
mkdir -p .whl
PIP=(python3 -m pip)
[ -x .venv/bin/python ] && PIP=(.venv/bin/python -m pip)
# pure Python, some published as source only: built here
"${PIP[@]}" wheel -q --no-deps -w .whl omegaconf==2.3.0 antlr4-python3-runtime==4.9.3 openai-whisper more-itertools
# soundfile bundles libsndfile: the x86-64 manylinux wheel, any Python 3
"${PIP[@]}" download -q --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
  --python-version 3.12 --implementation cp -d .whl soundfile cffi pycparser
ls -la .whl
