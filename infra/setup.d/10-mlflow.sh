#!/usr/bin/env bash
# Installs the pinned MLflow (server + Python client) into the project-local venv .venvs/mlflow, and vw2's
# MLflow plugin package (infra/python/vw2-mlflow-store): the `vw2-sqlite://` tracking store and the
# `vw2-fast-log-batch` server app the embedded server uses by default (see packages/tracking/README.md
# "Throughput"; VW2_MLFLOW_STORE / VW2_MLFLOW_APP switch them off).
# Idempotent: a no-op (well under a second) when the venv already holds exactly the pinned requirements and
# the plugin's current sources.
set -euo pipefail
cd "$(dirname "$0")/../.."
source infra/lib/venv.sh
ensure_venv .venvs/mlflow infra/python/requirements-mlflow.txt mlflow

plugin=infra/python/vw2-mlflow-store
plugin_stamp=.venvs/mlflow/.vw2-store-plugin.sha256
plugin_hash="$(cd "$plugin" && find pyproject.toml vw2_mlflow_store -name '*.py' -o -name pyproject.toml | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)"
if [ ! -f "$plugin_stamp" ] || [ "$(cat "$plugin_stamp")" != "$plugin_hash" ] || ! .venvs/mlflow/bin/python -c 'import sys, importlib.util as u; sys.exit(not all(u.find_spec(m) for m in ("vw2_mlflow_store.store", "vw2_mlflow_store.app", "vw2_mlflow_store.log_batch_view")))' 2>/dev/null; then
  # (find_spec, not import: importing the store loads MLflow, seconds; the no-op path stays sub-second)
  # --no-deps: its only dependency (the pinned mlflow) is installed above; the build runs in pip's isolated env
  .venvs/mlflow/bin/python -m pip install --quiet --disable-pip-version-check --no-input --no-deps --force-reinstall "./$plugin"
  rm -rf "$plugin/build" "$plugin"/*.egg-info
  echo "$plugin_hash" > "$plugin_stamp"
  plugin_status="installed"
else
  plugin_status="up to date"
fi
echo "mlflow venv $VENV_STATUS ($(.venvs/mlflow/bin/python -c 'import importlib.metadata as m; print(m.version("mlflow"))')), vw2 store + app plugin $plugin_status"
