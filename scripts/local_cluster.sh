#!/usr/bin/env bash
# Thin wrapper: scripts/local_cluster.sh {start|add-node|status|env|stop} --dir DIR [...]
# (see scripts/local_cluster.py). PY picks the interpreter (default: the project's .venv).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
PY=${PY:-$here/../.venv/bin/python}
exec "$PY" "$here/local_cluster.py" "$@"
