#!/usr/bin/env bash
# The benchmarks whose figures are committed in results/bench/ (each JSON is named as its script's docstring
# says). Needs the RAVDESS manifest and its cached features (scripts/reproduce_results.sh makes both), the
# demo's manifest (make demo) and a trained RAVDESS checkpoint (made here when absent).
set -euo pipefail
cd "$(dirname "$0")/.."
M=.venv/bin/mmser
PY=.venv/bin/python
RAVDESS_MANIFEST=runs/ravdess/manifest.csv
B=results/bench

for cfg in ravdess_audio_light ravdess_audio_base_30s; do
  $M extract $RAVDESS_MANIFEST --config configs/experiment/$cfg.yaml --encoder whisper-ct2:base
done
$PY bench/cv_cache.py configs/experiment/ravdess_audio_light.yaml data.manifest=$RAVDESS_MANIFEST --sample 60 \
  --json $B/cv_cache_ravdess_audio_light.json
$PY bench/cv_cache.py configs/experiment/ravdess_audio_base_30s.yaml data.manifest=$RAVDESS_MANIFEST --sample 60 \
  --json $B/cv_cache_base30s.json
$PY bench/cv_cache.py configs/experiment/ravdess_audio_base_30s.yaml data.manifest=$RAVDESS_MANIFEST --sample 60 \
  model.hidden_dim=128 features.frame_stride=8 --json $B/cv_cache_base30s_stride8_h128.json
$PY bench/extract.py $RAVDESS_MANIFEST --encoder whisper-ct2:base --clips 120 features.whisper_window=clip \
  features.num_threads=1 --json $B/extract_whisper-base-clip.json
[ -f runs/ravdess/model.safetensors ] || $M train configs/experiment/ravdess_audio.yaml data.manifest=$RAVDESS_MANIFEST \
  --out runs/ravdess/model.safetensors
$PY bench/latency.py --checkpoint runs/ravdess/model.safetensors --clips-from $RAVDESS_MANIFEST --n 20 \
  --json $B/latency_ravdess_audio_only.json
$PY bench/transcribe.py $RAVDESS_MANIFEST --asr faster-whisper:tiny.en --n 80 --batch-size 8 \
  --json $B/transcribe_ravdess_tiny.en.json
$PY bench/transcribe.py runs/demo/manifest.csv --asr faster-whisper:tiny.en --n 80 --batch-size 8 \
  --json $B/transcribe_synthetic_tiny.en.json
# fine-tuning: frozen vs top-K vs whole encoder per epoch, and batches of similar duration (clip-window frames)
$M extract $RAVDESS_MANIFEST --config configs/experiment/ravdess_finetune.yaml
$PY bench/finetune.py configs/experiment/ravdess_finetune.yaml data.manifest=$RAVDESS_MANIFEST --k 0,1,2 --epochs 1 \
  --json $B/finetune_ravdess_base.json
$PY bench/finetune.py configs/experiment/ravdess_finetune.yaml data.manifest=$RAVDESS_MANIFEST --k 0,2,all --epochs 1 \
  --json $B/finetune_ravdess_base_all.json
$PY bench/length_buckets.py configs/experiment/ravdess_finetune.yaml data.manifest=$RAVDESS_MANIFEST \
  model.finetune.top_layers=2 --pool 50 --epochs 1 --json $B/length_buckets_ravdess_base_top2.json
# robustness on an enrolment model: each noisy clip encoded once and predicted in batches, vs encoded twice
$PY bench/robustness_enrolled.py --clips-from $RAVDESS_MANIFEST --speakers 2 --clips 30 \
  --json $B/robustness_enrolled_ravdess_base.json
# prepare: the audio checks in one process against worker processes (RAVDESS from ../shared)
$PY bench/prepare.py ravdess ../shared/data/ravdess --workers 2 --repeat 3 --json $B/prepare_ravdess_workers2.json
