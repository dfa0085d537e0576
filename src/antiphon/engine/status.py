"""What the engine has heard and played: counts, rates, the latest vectors, timing.

Kept apart from the engine so that the hot path only appends numbers, and the
dashboard's snapshot (sorting, rates) is computed when someone asks for it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from antiphon.engine.setup import Setup
from antiphon.errors import Substitution

NEUTRAL = 0.5
"""Every control's value before anyone has played: the middle of its range."""


class Rate:
    """Events per second over the last few seconds (bounded memory)."""

    def __init__(self, window: float = 5.0, most: int = 20_000) -> None:
        self.window = window
        self._times: deque[float] = deque(maxlen=most)

    def add(self, t: float) -> None:
        self._times.append(t)

    def per_second(self, now: float) -> float:
        times = self._times
        while times and times[0] < now - self.window:
            times.popleft()
        if not times:
            return 0.0
        span = max(now - times[0], 1.0) if len(times) == times.maxlen else self.window
        return len(times) / span


class Activity:
    """Counts and the latest input and output; ``heard`` and ``played`` are hot paths."""

    def __init__(self, controls: int) -> None:
        self.inputs = self.outputs = 0
        self.last_input: list[float] = [NEUTRAL] * controls
        self.last_output: list[float] = []
        self.last_source: str | None = None
        self.last_input_time: float | None = None
        self.last_output_time: float | None = None
        self.lateness: deque[float] = deque(maxlen=1000)  # played - deadline, recent events
        self._rate_in, self._rate_out = Rate(), Rate()

    def resize(self, controls: int) -> None:
        """A model of another dimension: what was heard no longer fits it."""
        if len(self.last_input) != controls:
            self.last_input = [NEUTRAL] * controls
            self.last_output = []

    def heard(self, source: str, vector: list[float], now: float) -> None:
        self.last_input_time = now
        self.last_source = source
        self.last_input = vector
        self.inputs += 1
        self._rate_in.add(now)

    def played(self, values: Sequence[float], deadline: float, played: float) -> None:
        self.lateness.append(played - deadline)
        self.outputs += 1
        self._rate_out.add(played)
        self.last_output = list(values)
        self.last_output_time = played

    def as_dict(self, now: float) -> dict[str, Any]:
        lateness = sorted(self.lateness)
        return {
            "inputs": self.inputs,
            "outputs": self.outputs,
            "inputs_per_second": self._rate_in.per_second(now),
            "outputs_per_second": self._rate_out.per_second(now),
            "last_input": {
                "source": self.last_source,
                "values": self.last_input,
                "ago": now - self.last_input_time,
            }
            if self.last_input_time is not None
            else None,
            "last_output": {"values": self.last_output, "ago": now - self.last_output_time}
            if self.last_output_time is not None
            else None,
            "late_ms": {
                "p50": 1e3 * lateness[len(lateness) // 2],
                "p99": 1e3 * lateness[int(len(lateness) * 0.99)],
            }
            if lateness
            else None,
        }


def describe_setup(setup: Setup, substituted: Sequence[Substitution] = ()) -> dict[str, Any]:
    """What is playing, from where, why nothing is when nothing is, and what is played
    in place of what was asked (``substituted``: by the channels, as they opened)."""
    predictor = setup.predictor
    return {
        "playing": setup.problem is None,
        "problem": setup.problem,
        "substitutions": [s.as_dict() for s in (*setup.substitutions, *substituted)],
        "model": {
            "name": setup.model_name,
            "path": str(setup.model_path) if setup.model_path else None,
            "description": predictor.architecture.describe() if predictor else "no model",
        },
        "dimension": setup.config.model.dimension,
        "config": str(setup.config.path) if setup.config.path else None,
        "sigmatemp": predictor.sigmatemp if predictor else None,
        "pitemp": predictor.pitemp if predictor else None,
    }
