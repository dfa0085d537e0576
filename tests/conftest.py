"""Shared fixtures. IMPSY sample files live beside the project, never inside it."""

from __future__ import annotations

from pathlib import Path

import pytest

IMPSY = Path(__file__).resolve().parents[2] / "shared" / "impsy"


@pytest.fixture
def impsy_dir() -> Path:
    if not IMPSY.is_dir():
        pytest.skip("IMPSY sample files (../shared/impsy) are not available")
    return IMPSY
