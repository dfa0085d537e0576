"""What each setting may be: the modes, the sizes, the numeric bounds, the defaults.

One place for these facts, read by config.toml's schema (``antiphon.config``), the
``/impsy/...`` commands (OSC, the command port, the JSON API, the web UI) and the
command line, so that no way in can set what another refuses. It imports nothing
heavier than ``typing``: ``antiphon --help`` reads it and must start in a blink.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple, get_args

Mode = Literal["callresponse", "polyphony", "battle", "useronly"]
MODES: tuple[str, ...] = get_args(Mode)
SIZES: dict[str, tuple[int, int]] = {
    "xxs": (16, 2),
    "xs": (32, 2),
    "s": (64, 2),
    "m": (128, 2),
    "l": (256, 2),
    "xl": (512, 3),
}
"""Model size preset -> (LSTM units, LSTM layers), as IMPSY names them."""

DEFAULT_SIGMATEMP = 0.2
"""What a model plays at unless told otherwise. At IMPSY's 0.01 every model we have
stays near its most likely path and leaves most controls still; at 0.1-0.3 it sweeps
every control while keeping its phrasing."""

MAX_DIMENSION = 129
"""Controls + 1 at most: one per MIDI controller number, plus dt. A model's buffers
grow with the dimension; 100,000,000 (which nothing stopped) once took 7.9 GB."""


class Bounds(NamedTuple):
    """The values a numeric setting may take."""

    low: float
    high: float
    low_open: bool = False  # the low end itself is not allowed

    def problem(self, value: float) -> str | None:
        """Why ``value`` is not allowed, or None."""
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an int no float can hold (10**400): JSON carries one
            finite = False
        if not finite:
            return "use a finite number"
        if value > self.high or value < self.low or (self.low_open and value == self.low):
            return f"use a number {self.describe()}"
        return None

    def describe(self) -> str:
        if self.low_open:
            return f"greater than {self.low:g} and at most {self.high:g}"
        return f"from {self.low:g} to {self.high:g}"


DIMENSION = Bounds(2, MAX_DIMENSION)
THRESHOLD = Bounds(0.0, 60.0)
SIGMATEMP = Bounds(0.0, 100.0)
PITEMP = Bounds(0.0, 100.0, low_open=True)
TIMESCALE = Bounds(0.0, 100.0, low_open=True)
"""Any timescale is safe to play: the engine keeps a floor between the model's events."""
FEEDBACK_THRESHOLD = Bounds(0.0, 10.0)
PORT = Bounds(1, 65535)
BAUD = Bounds(1, 4_000_000)
