"""Shared fixtures. IMPSY sample files live beside the project, never inside it."""

from __future__ import annotations

import os
from pathlib import Path

# Test modules import NumPy before antiphon does: give them antiphon's one BLAS thread.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest

IMPSY = Path(__file__).resolve().parents[2] / "shared" / "impsy"


@pytest.fixture
def impsy_dir() -> Path:
    if not IMPSY.is_dir():
        pytest.skip("IMPSY sample files (../shared/impsy) are not available")
    return IMPSY
