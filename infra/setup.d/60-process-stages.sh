#!/usr/bin/env bash
# The Python venv process stages run in (docs/process-stages.md): torch (PyPI, with its CUDA runtime wheels),
# torchrun, pytest and the in-repo helper packages python/vw2_stage + python/vw2_torch. The PyTorch twin of the
# dLDM warm-up and the process-stage tests use it. A no-op once done; VW2_STAGE_SKIP=1 skips it.
set -euo pipefail
bash "$(dirname "$0")/../../python/setup.sh"
