#!/usr/bin/env bash
# Installs the pinned Ray + pyzmq into the project-local venv .venvs/ray (the Ray executor's bridge,
# packages/cluster/python, runs there; `vw2 ray up|down` and the cluster tests use its `ray` CLI).
# Idempotent: a no-op (well under a second) when the venv already holds exactly the pinned requirements.
# Env: VW2_RAY_SKIP=1 skips the step; VW2_PYTHON picks the interpreter (default python3, ≥ 3.10).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${VW2_RAY_SKIP:-0}" = "1" ]; then echo "ray venv: skipped (VW2_RAY_SKIP=1)"; exit 0; fi
source infra/lib/venv.sh
ensure_venv .venvs/ray infra/python/requirements-ray.txt ray
echo "ray venv $VENV_STATUS ($(.venvs/ray/bin/python -c 'import ray, zmq; print("ray", ray.__version__, "pyzmq", zmq.__version__)'))"
