#!/usr/bin/env bash
# The Python venv for process stages (python/README.md): torch (the bench's pinned build), torchrun, pytest and the
# in-repo packages vw2_stage + vw2_torch installed editable, so `python -m vw2_torch.dldm_warmup` and the Python
# tests run from it. One torch install serves both: the venv is .venvs/bench (bench/pytorch/setup.sh pins torch
# there, ~5.4 GB with the CUDA runtime wheels PyPI's torch pulls in). VW2_STAGE_VENV=<dir> picks another venv
# (it gets the same pins). Idempotent: a no-op (well under a second) when the stamp matches the pins and sources.
# Env: VW2_STAGE_SKIP=1 skips the step; VW2_PYTHON picks the interpreter for a new venv (default python3, ≥ 3.10).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${VW2_STAGE_SKIP:-0}" = "1" ]; then echo "process-stage venv: skipped (VW2_STAGE_SKIP=1)"; exit 0; fi
VENV="${VW2_STAGE_VENV:-.venvs/bench}"
TORCH_PIN="$(sed -n 's/^TORCH_VERSION="\(.*\)"$/\1/p' bench/pytorch/setup.sh)"
PINS="torch==$TORCH_PIN numpy==2.4.6 pytest==8.4.2 setuptools==84.2.1 safetensors==0.8.0"
STAMP="$VENV/.vw2-stage.sha256"
want="$(printf '%s\n' "$PINS" | cat - python/vw2_stage/pyproject.toml python/vw2_torch/pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
  && "$VENV/bin/python" -c "import vw2_stage, vw2_torch" 2>/dev/null; then
  echo "process-stage venv $VENV up to date"
  exit 0
fi
if [ "$VENV" = ".venvs/bench" ]; then
  bash bench/pytorch/setup.sh  # torch at the bench's pin (no-op when present)
else
  mkdir -p "$(dirname "$VENV")"
  [ -x "$VENV/bin/python" ] || "${VW2_PYTHON:-python3}" -m venv "$VENV"
fi
[ -f .venvs/.gitignore ] || printf '*\n' > .venvs/.gitignore
# shellcheck disable=SC2086
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input $PINS
# --no-build-isolation: setuptools from the venv builds the editable installs (no extra download)
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --no-build-isolation --no-deps \
  -e python/vw2_stage -e python/vw2_torch
echo "$want" > "$STAMP"
echo "process-stage venv $VENV ready ($("$VENV/bin/python" -c 'import torch, vw2_stage; print("torch", torch.__version__, "vw2_stage protocol", vw2_stage.PROTOCOL)'))"
