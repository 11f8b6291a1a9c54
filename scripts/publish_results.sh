#!/usr/bin/env bash
# Copies what results/ keeps from a run folder (per-utterance test and validation predictions, metrics,
# resolved configs, the parts of an averaged run, plots, selection, robustness and enrolment-size tables; no model weights), then rebuilds the tables
# from the copied predictions with `mmser table`.
set -euo pipefail
src=${1:?run folder}; dst=${2:?results folder}
mkdir -p "$dst"
(cd "$src" && find -L . \( -name predictions.csv -o -name val_predictions.csv -o -name metrics.json -o -name config.yaml \
   -o -name summary.json -o -name average.json -o -name '*.png' -o -name 'selection*' -o -name 'robustness.*' -o -name 'robustness_*.*' -o -name 'enrolment.*' -o -name 'enrolment_val.*' \) -print0) | while IFS= read -r -d '' f; do
  mkdir -p "$dst/$(dirname "$f")"; cp "$src/$f" "$dst/$f"
done
# a robustness folder (noise or enrolment sizes) keeps its own table only: its runs' tables are those of the
# folders they link
if ! compgen -G "$dst/robustness*.md" > /dev/null && [ ! -f "$dst/enrolment.md" ] && [ ! -f "$dst/enrolment_val.md" ]; then
  "$(dirname "$0")/../.venv/bin/mmser" table "$dst"
fi
# runs linked from another results folder (a robustness folder links the selection's runs): the predictions
# were copied through the link, so that folder's tables are rebuilt too, and those of every other folder that
# links the same runs (a second selection stage), once each
targets=$(for link in "$dst"/*; do if [ -L "$link" ]; then realpath "$link"; fi; done | sort -u)
[ -n "$targets" ] || exit 0
for folder in "$(dirname "$dst")"/*/; do
  folder=${folder%/}
  [ "$(realpath "$folder")" != "$(realpath "$dst")" ] || continue
  for run in "$folder"/*; do
    if grep -qxF "$(realpath "$run")" <<< "$targets"; then
      if [ -f "$folder/results.md" ]; then "$(dirname "$0")/../.venv/bin/mmser" table "$folder" >/dev/null; fi
      break
    fi
  done
done
