#!/usr/bin/env bash
# Installs the pinned MLflow (server + Python client) into the project-local venv .venvs/mlflow.
# Idempotent: a no-op (well under a second) when the venv already holds exactly the pinned requirements.
set -euo pipefail
cd "$(dirname "$0")/../.."
source infra/lib/venv.sh
ensure_venv .venvs/mlflow infra/python/requirements-mlflow.txt mlflow
echo "mlflow venv $VENV_STATUS ($(.venvs/mlflow/bin/python -c 'import importlib.metadata as m; print(m.version("mlflow"))'))"
