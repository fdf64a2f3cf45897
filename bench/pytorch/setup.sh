#!/usr/bin/env bash
# PyTorch-CPU for the reference benchmarks (bench/pytorch/transformer.py, bench/pytorch/models.py), in .venvs/bench.
# PyPI has no CPU-only torch for Linux x86_64 (the +cpu builds live on PyTorch's own index, unreachable
# here): torch 2.15.0 from PyPI pulls CUDA 13 runtime wheels and the venv weighs ~5.4 GB (~1 min to
# install here). That is why `npm run bench` runs this on demand and `npm run setup` / CI do not.
# Fast no-op when the pinned torch already imports.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=".venvs/bench"
TORCH_VERSION="2.15.0"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  exit 0
fi
[ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
printf '*\n' > "$VENV/.gitignore"
echo "bench: installing torch==$TORCH_VERSION into $VENV (PyPI, ~3.5 GB download incl. CUDA runtime wheels)"
"$VENV/bin/pip" install -q "torch==$TORCH_VERSION" "numpy==2.4.6"
