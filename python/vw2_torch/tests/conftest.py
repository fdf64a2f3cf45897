"""Fixtures that come from the TypeScript packages themselves (tests/ts/fixture.ts, run with the repo's node): the
warm-up stage's decoded config, a dataset written by @vw2/data's DatasetWriter, the tfjs stage's batches."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[3]
NODE = REPO / "node_modules" / ".bin" / "node"
FIXTURE = Path(__file__).parent / "ts" / "fixture.ts"


def ts(*args: str) -> str:
    """Runs tests/ts/fixture.ts; fails with node's stderr (run `npm install` at the repo root if node is missing)."""
    done = subprocess.run([str(NODE), str(FIXTURE), *args], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"node {FIXTURE.name} {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("squares") / "dataset"
    ts("dataset", str(d))
    return d


@pytest.fixture(scope="session")
def warmup_config() -> Callable[..., dict[str, Any]]:
    """WarmupConfigSchema (packages/dldm) decoded from overrides: every default is the tfjs stage's own."""

    def decode(**overrides: Any) -> dict[str, Any]:
        return json.loads(ts("config", json.dumps(overrides)))

    return decode


@pytest.fixture
def python() -> str:
    return sys.executable
