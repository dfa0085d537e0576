"""A procedural performer: believable performances for any dimension, without a human.

It plays what people play on controllers: phrases of gestures separated by pauses. A
gesture sweeps a few controls to new places (together or in contrary motion, eased
as a hand moves), wobbles one around where it is, taps out a burst of quick jumps, or
holds still. Two kinds of instrument are imitated:

- ``knobs``: a MIDI controller. Each event changes one control, quantised to 1/127,
  sent when a scan of the hardware (every ~10 ms) sees it move; controls moving
  together give runs of events well under a millisecond apart.
- ``sensor``: a touch surface, an accelerometer, a multi-sensor instrument. Every
  event carries all controls, streamed while the performer touches or moves it,
  faster while the hand moves (~14 ms) than while it rests (~26 ms); a tremor is
  shared between controls through a few common motions.

The result has the statistics of real logs: a median dt near 20 ms, a long tail of
pauses, and (for knobs) a share of simultaneous events. It is used to train the
bundled default models and to try the whole loop without an instrument.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np

from antiphon.data.logs import write_events

Style = Literal["knobs", "sensor"]

MIDI_STEPS = 127


def default_style(dimension: int) -> Style:
    """Three controls or fewer look like a sensor (x, y, pressure; an accelerometer)."""
    return "sensor" if dimension <= 4 else "knobs"


@dataclass
class _Motion:
    """Controls gliding from ``start`` to ``end`` over [t0, t1], plus a wobble."""

    controls: np.ndarray  # indices
    start: np.ndarray
    end: np.ndarray
    t0: float
    t1: float
    ease: float  # 1: linear; more: a flick, fast away and settling into place
    wobble_hz: float = 0.0
    wobble_depth: float = 0.0

    def at(self, t: float) -> np.ndarray:
        x = min(max((t - self.t0) / max(self.t1 - self.t0, 1e-6), 0.0), 1.0)
        eased = 1.0 - (1.0 - x) ** self.ease
        value = self.start + (self.end - self.start) * eased
        if self.wobble_depth:
            envelope = np.sin(np.pi * x)  # wobbles swell and fade
            value = value + self.wobble_depth * envelope * np.sin(
                2 * np.pi * self.wobble_hz * (t - self.t0)
            )
        return np.clip(value, 0.0, 1.0)


class Performer:
    """Plays performances of ``dimension - 1`` controls; seeded, so reproducible."""

    def __init__(
        self, dimension: int, *, style: Style | None = None, seed: int | None = None
    ) -> None:
        if dimension < 2:
            raise ValueError("dimension must be at least 2 (dt and one control)")
        self.dimension = dimension
        self.controls = dimension - 1
        self.style: Style = style or default_style(dimension)
        self.rng = np.random.default_rng(seed)

    # -- the score: what the hands do ------------------------------------------------
    def _group(self, n: int) -> np.ndarray:
        """Which of ``n`` controls play together: mostly one or two neighbours."""
        size = min(n, int(self.rng.choice([1, 1, 1, 1, 2, 2, 3])))
        if self.rng.random() < 0.7:  # neighbours, as fingers on adjacent faders
            first = int(self.rng.integers(0, n - size + 1))
            return np.arange(first, first + size)
        return np.sort(self.rng.choice(n, size, replace=False))

    def _target(self, current: np.ndarray) -> np.ndarray:
        """Somewhere worth going: usually far across the range, sometimes to an end stop."""
        rng = self.rng
        far = np.where(
            current < 0.5,
            rng.uniform(0.55, 1.0, current.shape),
            rng.uniform(0.0, 0.45, current.shape),
        )
        near = np.clip(current + rng.normal(0, 0.2, current.shape), 0, 1)
        target = np.where(rng.random(current.shape) < 0.7, far, near)
        stops = rng.random(current.shape)
        target = np.where(stops < 0.12, 0.0, np.where(stops > 0.9, 1.0, target))
        if len(target) > 1 and rng.random() < 0.3:  # contrary motion
            target[1::2] = 1.0 - target[0::2][: len(target[1::2])]
        return target

    def _phrase(self, t: float, state: np.ndarray, *, land: bool) -> tuple[list[_Motion], float]:
        """A few gestures on one group of controls; returns them and the phrase's end.

        With ``land``, the hand may come down somewhere new (a touch surface): every
        control jumps at the phrase's start.
        """
        rng = self.rng
        group = self._group(len(state))
        motions = []
        if land and rng.random() < 0.5:
            where = rng.uniform(0, 1, len(state))
            motions.append(_Motion(np.arange(len(state)), state.copy(), where, t, t, 1.0))
            state[:] = where
        for _ in range(int(rng.integers(1, 7))):
            kind = rng.choice(["sweep", "sweep", "sweep", "wobble", "burst", "hold"])
            start = state[group].copy()
            if kind == "sweep":
                end = self._target(start)
                length = float(rng.lognormal(np.log(1.6), 0.6))
                for k in range(len(group)):  # fingers never move quite together
                    lag = 0.0 if k == 0 else float(rng.uniform(0, 0.08))
                    motions.append(
                        _Motion(
                            group[k : k + 1],
                            start[k : k + 1],
                            end[k : k + 1],
                            t + lag,
                            t + lag + length,
                            float(rng.uniform(1, 3)),
                        )
                    )
                state[group] = end
            elif kind == "wobble":
                length = float(rng.uniform(0.5, 2.5))
                depth = float(rng.uniform(0.05, 0.25))
                motions.append(
                    _Motion(
                        group, start, start, t, t + length, 1.0, float(rng.uniform(1.5, 7)), depth
                    )
                )
            elif kind == "burst":
                for _ in range(int(rng.integers(3, 12))):
                    hit = rng.uniform(0, 1, len(group))
                    step = float(rng.lognormal(np.log(0.12), 0.5))
                    motions.append(_Motion(group, start, hit, t, t + 0.02, 1.0))
                    start = hit
                    t += step
                state[group] = start
                length = 0.0
            else:
                length = float(rng.uniform(0.1, 1.2))
            t += length + float(rng.lognormal(np.log(0.15), 0.7))  # a breath between gestures
        return motions, t

    def _score(
        self, seconds: float, voices: int, *, land: bool = False
    ) -> Iterator[tuple[float, float, list[_Motion]]]:
        """Phrases of ``voices`` parts as (start, end, motions) until ``seconds`` pass."""
        state = self.rng.uniform(0, 1, voices)
        t = float(self.rng.uniform(0.2, 1.0))
        while t < seconds:
            motions, end = self._phrase(t, state, land=land)
            yield t, end, motions
            t = end + float(self.rng.lognormal(np.log(1.2), 0.9))  # a pause, sometimes long

    # -- the instrument: how the hands become events ---------------------------------
    def performance(self, seconds: float) -> np.ndarray:
        """About ``seconds`` of playing as (N, D) float32 rows ``[dt, v1, ...]``.

        The first row's dt is the time from the start of the recording.
        """
        if self.style == "knobs":
            times, rows = self._knobs(seconds)
        else:
            times, rows = self._sensor(seconds)
        dt = np.diff(np.concatenate([[0.0], times]))
        return np.concatenate([dt[:, None], rows], axis=1).astype(np.float32)

    def _knobs(self, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        rng = self.rng
        sent = np.round(rng.uniform(0, 1, self.controls) * MIDI_STEPS)  # what the synth last got
        times: list[float] = []
        rows: list[np.ndarray] = []
        for start, end, motions in self._score(seconds, self.controls):
            t = start
            while t < end:
                now = sent.copy()
                for motion in motions:
                    if motion.t0 <= t <= motion.t1 + 0.05:
                        now[motion.controls] = np.round(motion.at(t) * MIDI_STEPS)
                changed = np.flatnonzero(now != sent)
                rng.shuffle(changed)
                at = t
                for control in changed:  # one message per control, back to back
                    sent[control] = now[control]
                    times.append(at)
                    rows.append(sent / MIDI_STEPS)
                    at += float(rng.uniform(0.0002, 0.0009))
                t = max(at, t + float(rng.lognormal(np.log(0.016), 0.35)))  # the next scan
        return np.array(times), np.array(rows).reshape(-1, self.controls)

    def _sensor(self, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        rng = self.rng
        n = self.controls
        # A few hand motions drive every control: each follows one motion (some upside
        # down) blended with a little of another, as a tilt moves two axes at once or an
        # XY pad is mapped onto many synth parameters.
        voices = min(3, n)
        follows = np.concatenate([np.arange(voices), rng.integers(0, voices, n - voices)])
        rng.shuffle(follows)
        flipped = (rng.random(n) < 0.4) & (np.arange(n) >= voices)
        blended = (follows + rng.integers(1, voices, n)) % voices if voices > 1 else follows
        blend = rng.uniform(0.0, 0.3, n) if voices > 1 else np.zeros(n)
        times: list[float] = []
        rows: list[np.ndarray] = []
        hand = np.full(voices, 0.5)
        controls = np.full(n, 0.5)
        for start, end, motions in self._score(seconds, voices, land=True):
            t = start
            while t < end:
                for motion in motions:
                    if motion.t0 <= t <= motion.t1 + 0.05:
                        hand[motion.controls] = motion.at(t)
                main = np.where(flipped, 1.0 - hand[follows], hand[follows])
                now = (1.0 - blend) * main + blend * hand[blended]
                moving = np.abs(now - controls).max() > 0.004
                controls = now
                tremor = rng.normal(0, 0.0003, n) + rng.normal(0, 0.0002)  # a steady hand
                times.append(t)
                rows.append(np.clip(np.round(controls + tremor, 4), 0.0, 1.0))
                if rng.random() < 0.04:  # two reports in one packet
                    t += float(rng.uniform(0.0002, 0.002))
                else:  # reports come faster while the hand moves
                    t += float(rng.lognormal(np.log(0.014 if moving else 0.026), 0.3))
        return np.array(times), np.array(rows).reshape(-1, n)


def write_logs(
    directory: str | Path,
    dimension: int,
    performances: int,
    minutes: float,
    *,
    style: Style | None = None,
    seed: int | None = None,
    started: datetime | None = None,
) -> list[Path]:
    """Record ``performances`` synthetic performances as IMPSY-format log files, dated
    one after another from ``started`` (now by default). Each says ``# source: synthetic``,
    so datasets leave them out unless asked to take them."""
    performer = Performer(dimension, style=style, seed=seed)
    when = started or datetime.now()
    paths = []
    for _ in range(performances):
        events = performer.performance(minutes * 60)
        paths.append(write_events(directory, events, started=when, origin="synthetic"))
        when += timedelta(seconds=float(events[:, 0].sum()) + 60)
    return paths
