#!/usr/bin/env bash
# Headless Chromium for scripts/mlflow-screenshots.ts (the MLflow UI screenshots in docs/mlflow-ui.md).
# Opt-in: nothing else needs a browser, and it is ~350 MB installed, so `npm run setup` (and CI) skip it unless
# VW2_SETUP_CHROMIUM=1:   VW2_SETUP_CHROMIUM=1 bash infra/setup.d/50-chromium.sh
# Installed from Debian's `chromium` package (security updates apply); a fast no-op when a Chromium or
# Chrome is already on PATH (or VW2_CHROMIUM names one).
set -euo pipefail
for candidate in "${VW2_CHROMIUM:-}" chromium chromium-browser google-chrome-stable google-chrome; do
  [ -n "$candidate" ] || continue
  if command -v "$candidate" >/dev/null 2>&1; then
    echo "chromium present: $("$candidate" --version 2>/dev/null | head -n 1)"
    exit 0
  fi
done
if [ "${VW2_SETUP_CHROMIUM:-0}" != "1" ]; then
  echo "50-chromium: skipped (optional, only for the MLflow UI screenshots; opt in with VW2_SETUP_CHROMIUM=1 bash infra/setup.d/50-chromium.sh)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "50-chromium: skipped: no apt-get here; install Chromium or Chrome yourself and set VW2_CHROMIUM=/path/to/it" >&2
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "50-chromium: installing Chromium needs root (apt-get install chromium); skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# fonts-liberation: metric-compatible Arial/Helvetica, so the UI's text renders in readable widths
apt-get install -y -q --no-install-recommends chromium fonts-liberation
chromium --version | head -n 1
