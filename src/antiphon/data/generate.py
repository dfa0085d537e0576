"""A model playing on its own, offline: audition and compare models without hardware.

The model starts from a zero state and a resting event (every control at 0.5) and is
fed its own output, as in call-and-response mode when the performer stops. ``timescale``
stretches the time between events as it does at playback (2 = half speed); the model
itself is fed the dt it predicted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from antiphon.errors import AntiphonError
from antiphon.model.mdrnn import Predictor

MAX_EVENTS = 1_000_000


@dataclass
class Played:
    events: np.ndarray  # (N, D) rows [dt, v1, ...], dt already multiplied by timescale

    @property
    def seconds(self) -> float:
        return float(self.events[:, 0].sum())

    def lines(self) -> list[str]:
        ev = self.events
        dt = ev[:, 0]
        spans = ", ".join(
            f"{lo:.2f}-{hi:.2f}" for lo, hi in zip(ev[:, 1:].min(0), ev[:, 1:].max(0), strict=True)
        )
        return [
            f"{len(ev):,} events over {self.seconds:.1f} s",
            f"dt: median {np.median(dt) * 1e3:.1f} ms, 95th percentile "
            f"{np.percentile(dt, 95) * 1e3:.1f} ms, longest {dt.max():.2f} s",
            f"control ranges: {spans}",
        ]


def play(
    predictor: Predictor,
    *,
    events: int | None = None,
    seconds: float | None = None,
    timescale: float = 1.0,
) -> Played:
    """Let the model play ``events`` events, or until ``seconds`` of music have passed
    (with both, whichever comes first)."""
    if events is None and seconds is None:
        raise AntiphonError("say how much to play: a number of events or of seconds")
    if timescale <= 0:
        raise AntiphonError(f"timescale must be positive, got {timescale}")
    limit = events if events is not None else MAX_EVENTS
    dimension = predictor.architecture.dimension
    predictor.reset()
    event = [0.0] + [0.5] * (dimension - 1)
    rows: list[list[float]] = []
    elapsed = 0.0
    while len(rows) < limit:
        event = predictor.generate(event)
        rows.append(event)
        elapsed += event[0] * timescale
        if seconds is not None and elapsed >= seconds:
            break
    played = np.array(rows, np.float64)
    played[:, 0] *= timescale
    return Played(played.astype(np.float32))
