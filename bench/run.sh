#!/usr/bin/env bash
# Run mloop's benchmarks against MLflow in an isolated venv (bench/.venv).
#
#   bash bench/run.sh                      # every bench/bench_*.py, default sizes (long: >1 h, mostly MLflow)
#   bash bench/run.sh tracking [ARGS...]   # one benchmark: NAME of bench/bench_NAME.py (tracking, search,
#                                          # cli, concurrency, artifacts, ...)
#   bash bench/run.sh tracking metric-loop --repeat 3 --json
#   bash bench/run.sh serve                # scoring servers: MLflow vs mloop vs bare Starlette (needs `wrk`)
#   bash bench/run.sh deploy               # endpoints: router overhead and a 100% shadow (needs `wrk`)
#
# Benchmarks are not tests: they print medians and ratios and never gate CI on a time.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH_DIR")"
VENV="$BENCH_DIR/.venv"
PY="$VENV/bin/python"

if [[ ! -x "$PY" ]]; then
  python3 -m venv "$VENV"
  "$PY" -m pip install --quiet --upgrade pip
fi
# Re-installing is a quick no-op when nothing changed; -e keeps mloop pointing at the work tree.
"$PY" -m pip install --quiet -r "$BENCH_DIR/requirements.txt"
"$PY" -m pip install --quiet -e "$ROOT[dask]"   # the dask extra: bench_compute.py runs a real Dask cluster

# DVC lives in its own venv (its dependencies clash with MLflow's); bench_datasets.py, bench_pipelines.py and
# bench_pipeline_scripts.py call bench/.venv-dvc/bin/dvc.
DVC_VENV="$BENCH_DIR/.venv-dvc"
if [[ $# -eq 0 || "$1" == "datasets" || "$1" == "pipelines" || "$1" == "pipeline_scripts" ]]; then
  [[ -x "$DVC_VENV/bin/python" ]] || python3 -m venv "$DVC_VENV"
  "$DVC_VENV/bin/python" -m pip install --quiet -r "$BENCH_DIR/requirements-dvc.txt"
fi

# Offline and quiet: no telemetry, no progress bars, no inherited tracking URIs.
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false
unset MLFLOW_TRACKING_URI MLOOP_URI MLOOP_ARTIFACT_URI || true

run_one() {
  local name="$1"; shift
  local script="$BENCH_DIR/bench_${name}.py"
  if [[ ! -f "$script" ]]; then
    echo "no benchmark '$name' ($script)" >&2
    return 2
  fi
  if [[ "$name" == "serve" || "$name" == "deploy" ]] && ! command -v wrk >/dev/null; then
    echo "bench_${name}.py drives the servers with wrk: apt-get install -y wrk (Debian's package)" >&2
    return 2
  fi
  echo "== bench_${name}.py $*" >&2
  "$PY" "$script" "$@"
}

if [[ $# -gt 0 ]]; then
  run_one "$@"
else
  for script in "$BENCH_DIR"/bench_*.py; do
    name="$(basename "$script" .py)"
    name="${name#bench_}"
    run_one "$name" || echo "bench_${name}.py failed (exit $?)" >&2
  done
fi
