"""Shared fixtures. JAX compilation dominates small tests: build models once per session."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"the shared folder {SHARED} (reference data) is not beside the checkout")
    return SHARED
