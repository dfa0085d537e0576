"""Checking what a channel delivers before the model hears it.

Values arrive from other programs and devices: they may have the wrong length, be
words, NaN or out of range. A wrong input is dropped with a reason (never half-used);
an out-of-range value is clamped to [0, 1], as a fader at its end stop would be.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from antiphon.errors import shown

Problem = tuple[str, str]
"""(kind, message): the kind is one of a fixed few, so warnings can be counted by it."""


def checked(values: Sequence[Any], controls: int) -> tuple[list[float] | None, Problem | None]:
    """``values`` as ``controls`` floats in [0, 1] (or None), and what was wrong."""
    if len(values) != controls:
        return None, (
            "length",
            f"dropped an input of {len(values)} values; the model plays {controls} controls "
            f"(dimension {controls + 1})",
        )
    vector = []
    clamped = False
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, ("type", f"dropped an input with a non-numeric value {shown(value)}")
        try:
            number = float(value)
        except OverflowError:  # an int no float can hold (10**400): JSON carries one
            number = math.inf
        if not math.isfinite(number):
            return None, ("nan", f"dropped an input containing {shown(value)}")
        if number < 0.0 or number > 1.0:
            clamped = True
            number = 0.0 if number < 0.0 else 1.0
        vector.append(number)
    return vector, ("range", "clamped values outside 0-1 to 0-1") if clamped else None


def merged(latest: Sequence[float], updates: Sequence[tuple[int, float]]) -> list[float]:
    """``latest`` with some controls changed (MIDI-like channels move one at a time;
    the model wants every control at every event, so the others keep their value)."""
    vector = list(latest)
    for index, value in updates:
        if 0 <= index < len(vector) and math.isfinite(value):
            vector[index] = 0.0 if value < 0.0 else 1.0 if value > 1.0 else value
    return vector
