#!/usr/bin/env bash
# Installs the pinned MLflow (server + Python client) into the project-local venv .venvs/mlflow.
# Idempotent: a no-op (well under a second) when the venv already holds exactly the pinned requirements.
set -euo pipefail
cd "$(dirname "$0")/../.."
REQS=infra/python/requirements-mlflow.txt
VENV=.venvs/mlflow
STAMP="$VENV/.vw2-requirements.sha256"
want="$(sha256sum "$REQS" | cut -d' ' -f1)"

if [ -x "$VENV/bin/mlflow" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "mlflow venv up to date ($("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mlflow"))'))"
  exit 0
fi

PYTHON="${VW2_PYTHON:-python3}"
mkdir -p .venvs
# keep the venvs out of git without touching the shared .gitignore
[ -f .venvs/.gitignore ] || printf '*\n' > .venvs/.gitignore
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$REQS"
"$VENV/bin/mlflow" --version
echo "$want" > "$STAMP"
