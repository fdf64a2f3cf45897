#!/usr/bin/env bash
# Both Python packages' test suites in the process-stage venv (infra/setup.d/60-process-stages.sh makes it;
# VW2_STAGE_VENV picks another, as in python/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VW2_STAGE_VENV:-.venvs/bench}"
PYTHON="$(cd "$(dirname "$VENV")" 2>/dev/null && pwd)/$(basename "$VENV")/bin/python"
cd python
if [ ! -x "$PYTHON" ]; then
  echo "python tests: $PYTHON missing — run \`npm run setup\` (infra/setup.d/60-process-stages.sh)" >&2
  exit 1
fi
(cd vw2_stage && "$PYTHON" -m pytest -q -p no:cacheprovider)
(cd vw2_torch && "$PYTHON" -m pytest -q -p no:cacheprovider)
