#!/usr/bin/env bash
# The whole path on generated faces, CPU only: generate -> prepare -> tune -> fit on val -> ensemble.
# Usage: scripts/demo.sh [OUT_DIR]   (make demo calls it with runs/demo)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/demo}
PY=${PY:-.venv/bin/python}
NUM=${DEMO_FACES:-400}
RAW=data/demo/raw
PREP=data/demo/prepared
start=$(date +%s)
export PYTHONUNBUFFERED=1

step() { printf '\n=== %s (%ss elapsed)\n' "$1" "$(( $(date +%s) - start ))"; }

step "1/5 generate $NUM synthetic faces -> $RAW"
if [ -f "$RAW/CelebA-HQ-to-CelebA-mapping.txt" ] && \
   [ "$(ls "$RAW/CelebA-HQ-img" | wc -l)" -eq "$NUM" ]; then
  echo "already there (delete $RAW to regenerate)"
else
  rm -rf "$RAW"
  $PY -m data_prep synth --out "$RAW" --num "$NUM" --size 256 --seed 0 --workers 2
fi

step "2/5 prepare -> $PREP (128 px, seeded split)"
$PY -m data_prep celebamask --root "$RAW" --out "$PREP" --size 128 --workers 2 \
    --val-fraction 0.15 --test-fraction 0.15 --seed 0

step "3/5 tune: Ray Tune + Optuna search on the CPU -> $OUT/models"
rm -rf "$OUT/ray" "$OUT/models"
$PY -m tuning --config configs/demo.yaml --data "$PREP" --out "$OUT/models" \
    --storage "$OUT/ray" --name demo

step "4/5 fit the ensemble on the val split: members, weights, views, post-processing -> recipe.json"
$PY -m ensemble fit --config configs/demo.yaml --manifest "$OUT/models/manifest.json" \
    --data "$PREP" --split val --views flip --resolution 64

step "5/5 ensemble with the recipe on the test split -> $OUT/submission"
rm -rf "$OUT/submission"
$PY run_ensemble.py --config configs/demo.yaml --manifest "$OUT/models/manifest.json" \
    --images "$PREP" --split test --out "$OUT/submission"

printf '\nDemo finished in %ss.\n' "$(( $(date +%s) - start ))"
echo "  dataset:    $PREP (dataset.json, report.html)"
echo "  models:     $OUT/models/manifest.json, trials.csv, trials.png, search_report.html"
echo "  recipe:     $OUT/models/recipe.json, fit_report.md, fit_report.html, selection_trace.png"
echo "  submission: $OUT/submission/submission.csv, report.md, viz/"
echo "  look first: $OUT/submission/report.html (every test image, worst first)"
