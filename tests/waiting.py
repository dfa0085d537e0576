"""Waiting for a condition, never for a fixed time: the suite runs on busy machines."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

PATIENCE = 30.0
"""Seconds a condition may take on a loaded 2-core machine before the test fails."""


def wait_until(
    condition: Callable[[], T], timeout: float = PATIENCE, what: str = "the condition"
) -> T:
    """Poll ``condition`` until it returns something true, and return that; fail the test
    when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"{what} not reached in {timeout:g} s"
        time.sleep(0.02)
    return found
