#!/usr/bin/env bash
# One-shot GPU check (the package benchmarks/gpu_check, run as `python -m benchmarks.gpu_check`): data, training throughput table, profiler, loader
# rates, a short training with train() (no Ray), the ensemble and its overhead, two trainings on
# one GPU; everything into one folder as results.json + summary.md. Target: under 5 minutes on
# one H100; --smoke: 64 px on a CPU in a few minutes (the same code paths).
#
#   bash benchmarks/gpu_check.sh [--out DIR] [--smoke] [--only throughput,profile]
#
# For a bare GPU machine without network that has only torch, torchvision, timm, OpenCV, numpy
# and pandas (python 3.12, x86_64): carry this project's other runtime dependencies as wheels in
# .whl/ (ignored by git; rsync it with the checkout). Build that folder on the dev box, versions
# pinned to /work/main/.venv (everything timm, pandas and torch pull in is assumed present; Ray and
# Optuna are left out: only the search launcher needs them):
#
#   pip download --dest .whl --no-deps --only-binary=:all: --python-version 3.12 \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#       --platform manylinux2014_x86_64 --platform any \
#       albucore==0.0.24 albumentations==2.0.8 annotated-types==0.8.0 contourpy==1.3.3 \
#       cycler==0.12.1 fonttools==4.68.0 kiwisolver==1.5.1 matplotlib==3.11.2 pydantic==2.14.4 \
#       pydantic-core==2.50.5 pyparsing==3.3.3 scipy==1.17.1 segmentation-models-pytorch==0.6.0 \
#       simsimd==6.5.16 stringzilla==5.3.2 typing-inspection==0.4.5
#
# This script installs them with --no-index --no-deps into /tmp/site and puts that on PYTHONPATH;
# nothing is fetched. results.json records ray_imported (false: nothing on this path imports Ray).
# Encoders are built without pretrained weights (speed does not depend on them).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PYTHON" -m pip install --quiet --no-index --no-deps --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
# No install needed: the repository root on the path makes configs/, data_prep/, tuning/, ensemble/
# and the benchmarks.gpu_check package importable.
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" -m benchmarks.gpu_check "$@"
