"""The deploy kit's tools: helm comes from scripts/deploy-tools.sh (installed here when
missing, and a test that needs it fails, never skips, when it cannot be installed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.processes import REPOSITORY_ROOT


@pytest.fixture(scope="session")
def helm() -> Path:
    binary = REPOSITORY_ROOT / ".tools" / "bin" / "helm"
    result = subprocess.run(
        [str(REPOSITORY_ROOT / "scripts" / "deploy-tools.sh")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0 or not binary.exists():
        pytest.fail(f"scripts/deploy-tools.sh could not install helm:\n{result.stderr}")
    return binary
