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


@pytest.fixture
def saved_checkpoints(monkeypatch) -> list[dict]:
    """Every state ``hmmjax.sweep._save_checkpoint`` writes during the test, in order (the
    file is still written), so a test can put back an earlier one, as if killed there."""
    from hmmjax import sweep

    saved: list[dict] = []
    real = sweep._save_checkpoint

    def keep(path, state):
        saved.append(dict(state))
        real(path, state)

    monkeypatch.setattr(sweep, "_save_checkpoint", keep)
    return saved
