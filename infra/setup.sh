#!/usr/bin/env bash
# Project setup: runs every step in infra/setup.d in name order. Each step installs one external piece
# (Python venv with MLflow/Ray, ffmpeg, native tfjs binding, ...) reproducibly and is a no-op when done.
set -euo pipefail
cd "$(dirname "$0")/.."
for step in infra/setup.d/*.sh; do
  [ -e "$step" ] || continue
  echo "==> setup: $(basename "$step")"
  bash "$step"
done
