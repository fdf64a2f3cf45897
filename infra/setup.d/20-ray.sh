#!/usr/bin/env bash
# Installs the pinned Ray + pyzmq into the project-local venv .venvs/ray (the Ray executor's bridge,
# packages/cluster/python, runs there; `vw2 ray up|down` and the cluster tests use its `ray` CLI).
# Idempotent: a no-op (well under a second) when the venv already holds exactly the pinned requirements.
# Env: VW2_RAY_SKIP=1 skips the step; VW2_PYTHON picks the interpreter (default python3, ≥ 3.10).
set -euo pipefail
cd "$(dirname "$0")/../.."
REQS=infra/python/requirements-ray.txt
VENV=.venvs/ray
STAMP="$VENV/.vw2-requirements.sha256"
want="$(sha256sum "$REQS" | cut -d' ' -f1)"

if [ "${VW2_RAY_SKIP:-0}" = "1" ]; then echo "ray venv: skipped (VW2_RAY_SKIP=1)"; exit 0; fi
if [ -x "$VENV/bin/ray" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "ray venv up to date ($("$VENV/bin/python" -c 'import importlib.metadata as m; print("ray", m.version("ray"), "pyzmq", m.version("pyzmq"))'))"
  exit 0
fi

PYTHON="${VW2_PYTHON:-python3}"
mkdir -p .venvs
# keep the venvs out of git without touching the shared .gitignore
[ -f .venvs/.gitignore ] || printf '*\n' > .venvs/.gitignore
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$REQS"
"$VENV/bin/python" -c 'import ray, zmq; print("ray", ray.__version__, "pyzmq", zmq.__version__)'
echo "$want" > "$STAMP"
