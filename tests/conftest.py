"""Shared fixtures. IMPSY sample files live beside the project, never inside it."""

from __future__ import annotations

import os
from pathlib import Path

# Test modules import NumPy before antiphon does: give them antiphon's one BLAS thread.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest

from samples import IMPSY


@pytest.fixture
def impsy_dir() -> Path:
    if not IMPSY.is_dir():
        pytest.skip(
            f"IMPSY sample files ({IMPSY}) are not available; ANTIPHON_IMPSY_SAMPLES names them"
        )
    return IMPSY
