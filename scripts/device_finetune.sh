#!/usr/bin/env bash
# Issue 14's fine-tuning cost on a GPU, as one short device run: K=0 (frozen) and K=2 side by side per epoch.
#
#   bash scripts/device_wheels.sh                      # here, once: what the device image lacks, into .whl/
#   device run: bash scripts/device_finetune.sh        # carry [".whl"], timeout_s 540; figures in $OUT
#
# The device machine reaches no network and has no corpus or Whisper weights, so the run makes both: random
# weights of Whisper base's shape (bench/random_whisper.py: time per step does not depend on the values) and a
# synthetic RAVDESS-layout corpus with the real clips' lengths (bench/synthetic_ravdess.py). It then extracts the
# frozen bottom's frames on the GPU and times bench/finetune.py as results/bench/finetune_ravdess_base.json was
# timed on CPU (same config, first fold, no early stop; K=0,2,4,all, or K=...), then bench/length_buckets.py for
# K=2. Also runs here on CPU (the project's .venv): ACTORS=8 EPOCHS=1 K=0,2 for a smoke test (about 3 min).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/device}
ACTORS=${ACTORS:-18}
EPOCHS=${EPOCHS:-2}
WORK=${WORK:-/tmp/mmser-device}
if [ -x .venv/bin/python ]; then  # here: the project's environment
  PY=.venv/bin/python
else  # the device image's python3, with the carried wheels
  PY=python3
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
fi
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())"
ENCODER="whisper:$WORK/whisper-base-random.pt"
SET=(data.manifest="$WORK/manifest.csv" "features.audio_encoders=[$ENCODER]" features.cache_dir="$WORK/cache"
     features.device=auto)
$PY bench/random_whisper.py base "$WORK/whisper-base-random.pt"
$PY bench/synthetic_ravdess.py "$WORK/ravdess" --actors "$ACTORS"
$PY -m mmser.cli prepare ravdess "$WORK/ravdess" --out "$WORK/manifest.csv"
# the audio encoder only (the config's text encoder has no weights there); its progress bar goes to the log
SECONDS=0
$PY -m mmser.cli extract "$WORK/manifest.csv" --config configs/experiment/ravdess_finetune.yaml --encoder "$ENCODER" \
  "${SET[@]}" > "$OUT/extract.log" 2>&1 || { tail -c 3000 "$OUT/extract.log"; exit 1; }
echo "extract: $SECONDS s"; tail -n 1 "$OUT/extract.log"
$PY bench/finetune.py configs/experiment/ravdess_finetune.yaml "${SET[@]}" --k "${K:-0,2,4,all}" --epochs "$EPOCHS" \
  --json "$OUT/finetune_base_random.json" 2>&1 | tee "$OUT/finetune.log"
# the same K=2 epochs with random batches and with batches of similar duration (train.length_buckets)
$PY bench/length_buckets.py configs/experiment/ravdess_finetune.yaml "${SET[@]}" model.finetune.top_layers=2 \
  --pool 50 --epochs "$EPOCHS" --json "$OUT/length_buckets_base_random_top2.json" 2>&1 | tee "$OUT/length_buckets.log"
