import sys

import pytest


@pytest.fixture
def python() -> str:
    """The interpreter running the tests (its venv has vw2_stage, torch and torchrun)."""
    return sys.executable
