"""Where the IMPSY sample files are: beside the project (``../shared/impsy``), never
inside it, or wherever ``ANTIPHON_IMPSY_SAMPLES`` says. Test modules that need the
folder while they are collected (to make one test per file in it) import this."""

from __future__ import annotations

import os
from pathlib import Path

IMPSY = Path(
    os.environ.get("ANTIPHON_IMPSY_SAMPLES")
    or Path(__file__).resolve().parents[2] / "shared" / "impsy"
)
