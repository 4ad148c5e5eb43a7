#!/usr/bin/env bash
# The whole path on generated faces, CPU only:
#   generate -> prepare -> search -> refit the best configs -> fit the ensemble -> submission.
# Usage: scripts/demo.sh [OUT_DIR]   (make demo calls it with runs/demo)
# The search ranks configs in DEMO_SEARCH_EPOCHS (8) epochs per trial (ASHA stops the weak ones
# earlier); the refit trains the chosen configs DEMO_EPOCHS (20) epochs, where val F1 levels off.
# Knobs: DEMO_FACES (320), DEMO_TOP (2: configs refit), DEMO_SEEDS (3: seeds per config),
# DEMO_MAX_PER_ARCH (1), DEMO_SEARCH_EPOCHS, DEMO_EPOCHS, DEMO_REFIT=seeds|folds|none (seeds, the
# default because it won on the demo (BENCHMARKS.md): seed bags fit on val; folds: K-fold bags fit on
# their out-of-fold predictions; none: the search's candidates fit on val),
# DEMO_REUSE_SEARCH=1 (keep OUT/models from an earlier run instead of searching again).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/demo}
PY=${PY:-.venv/bin/python}
NUM=${DEMO_FACES:-320}
REFIT=${DEMO_REFIT:-seeds}
TOP=${DEMO_TOP:-2}
PER_ARCH=${DEMO_MAX_PER_ARCH:-1}
SEEDS=${DEMO_SEEDS:-3}
SEARCH_EPOCHS=${DEMO_SEARCH_EPOCHS:-8}
EPOCHS=${DEMO_EPOCHS:-20}
RAW=data/demo/raw
PREP=data/demo/prepared
start=$(date +%s)
export PYTHONUNBUFFERED=1

step() { printf '\n=== %s (%ss elapsed)\n' "$1" "$(( $(date +%s) - start ))"; }

step "1/6 generate $NUM synthetic faces -> $RAW"
if [ -f "$RAW/CelebA-HQ-to-CelebA-mapping.txt" ] && \
   [ "$(ls "$RAW/CelebA-HQ-img" | wc -l)" -eq "$NUM" ]; then
  echo "already there (delete $RAW to regenerate)"
else
  rm -rf "$RAW"
  $PY -m data_prep synth --out "$RAW" --num "$NUM" --size 256 --seed 0 --workers 2
fi

step "2/6 prepare -> $PREP (64 px, seeded split)"
$PY -m data_prep celebamask --root "$RAW" --out "$PREP" --size 64 --workers 2 \
    --val-fraction 0.15 --test-fraction 0.15 --seed 0

step "3/6 search: Ray Tune + Optuna (every architecture once first, then TPE; ASHA; $SEARCH_EPOCHS epochs) -> $OUT/models"
if [ "${DEMO_REUSE_SEARCH:-0}" = 1 ] && [ -f "$OUT/models/manifest.json" ]; then
  echo "DEMO_REUSE_SEARCH=1: keeping $OUT/models"
else
  rm -rf "$OUT/ray/demo" "$OUT/models"
  $PY -m tuning --config configs/demo.yaml --data "$PREP" --out "$OUT/models" \
      --storage "$OUT/ray" --name demo --set train.epochs="$SEARCH_EPOCHS"
fi

MODELS="$OUT/models"
rm -rf "$OUT/ray/refit" "$OUT/bags"
case "$REFIT" in
  folds)
    step "4/6 refit: the $TOP best configs (at most $PER_ARCH per architecture) x 3 folds of train + val, $EPOCHS epochs, out-of-fold predictions -> $OUT/bags"
    $PY -m tuning refit --from "$OUT/models/manifest.json" --data "$PREP" --top "$TOP" --max-per-arch "$PER_ARCH" --folds 3 --max-epochs "$EPOCHS" \
        --out "$OUT/bags" --storage "$OUT/ray" --name refit
    MODELS="$OUT/bags"
    step "5/6 fit the ensemble on the out-of-fold predictions: bags, weights, views, post-processing"
    $PY -m ensemble fit --config configs/demo.yaml --manifest "$MODELS/manifest.json" \
        --data "$PREP" --oof --views flip ;;
  seeds)
    step "4/6 refit: the $TOP best configs (at most $PER_ARCH per architecture) x $SEEDS seeds on the train split, $EPOCHS epochs -> $OUT/bags"
    $PY -m tuning refit --from "$OUT/models/manifest.json" --data "$PREP" --top "$TOP" --max-per-arch "$PER_ARCH" --folds 1 --seeds "$SEEDS" --max-epochs "$EPOCHS" \
        --out "$OUT/bags" --storage "$OUT/ray" --name refit
    MODELS="$OUT/bags"
    step "5/6 fit the ensemble on the val split: bags, weights, views, post-processing"
    $PY -m ensemble fit --config configs/demo.yaml --manifest "$MODELS/manifest.json" \
        --data "$PREP" --split val --views flip --resolution 64 ;;
  none)
    step "4/6 refit: skipped (DEMO_REFIT=none)"
    step "5/6 fit the ensemble of the search's candidates on the val split"
    $PY -m ensemble fit --config configs/demo.yaml --manifest "$MODELS/manifest.json" \
        --data "$PREP" --split val --views flip --resolution 64 ;;
  *) echo "DEMO_REFIT=$REFIT: expected folds, seeds or none" >&2; exit 2 ;;
esac

step "6/6 ensemble with the recipe on the test split -> $OUT/submission"
rm -rf "$OUT/submission"
$PY run_ensemble.py --config configs/demo.yaml --manifest "$MODELS/manifest.json" \
    --images "$PREP" --split test --out "$OUT/submission" --baseline "$OUT/models/manifest.json"

printf '\nDemo finished in %ss.\n' "$(( $(date +%s) - start ))"
echo "  dataset:    $PREP (dataset.json, report.html)"
echo "  search:     $OUT/models/manifest.json, trials.csv, trials.png, search_report.html"
[ "$REFIT" = none ] || echo "  refit:      $OUT/bags/manifest.json, refit_trials.csv, learning_curves.csv, refit.png"
echo "  recipe:     $MODELS/recipe.json, fit_report.md, fit_report.html, selection_trace.png"
echo "  submission: $OUT/submission/submission.csv, report.md, viz/"
echo "  look first: $OUT/submission/report.html (every test image, worst first)"
