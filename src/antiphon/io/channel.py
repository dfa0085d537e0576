"""The one small interface every I/O channel implements.

A channel opens (given somewhere to deliver its inputs), sends played values, and
closes (ending any sounding notes). Everything runs on the engine's event loop;
a channel whose device comes from a thread (MIDI) hands messages over through a
bounded buffer. A channel never raises into the engine because of what arrives on
its wire: bad input is dropped or repaired and reported with ``warn``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class Inputs(Protocol):
    """Where a channel delivers what arrives (the engine)."""

    def on_input(self, source: str, values: Sequence[Any], detail: str | None = None) -> None:
        """A whole dense vector (D-1 values) from the performer."""

    def on_controls(
        self, source: str, updates: Sequence[tuple[int, float]], detail: str | None = None
    ) -> None:
        """Some controls changed (MIDI-like channels send one control at a time)."""

    def on_command(self, address: str, args: Sequence[Any], source: str) -> None:
        """An ``/impsy/...`` command."""

    def warn(self, kind: str, message: str) -> None:
        """Bad input or a device problem: counted and reported, rate-limited."""


class Channel:
    """Base class: a named channel with no-op hooks."""

    name = "channel"
    input_labels: list[str] | None = None  # how this channel names each control
    output_labels: list[str] | None = None
    echoes_thru = True  # input_thru sends the performer's input here too

    async def open(self, inputs: Inputs) -> None:
        """Start listening/sending. Raise AntiphonError only for a fatal setup problem."""

    def send(self, values: Sequence[float]) -> None:
        """Play one event; never blocks (drops and warns if the device cannot keep up)."""

    def heard(self, values: Sequence[float]) -> None:
        """The performer's input, for channels that show it (the monitor); most ignore it."""

    def describe(self, values: Sequence[float]) -> str | None:
        """What ``send(values)`` puts on the wire, for people (MIDI numbers), if useful."""
        return None

    async def close(self) -> None:
        """Stop: end sounding notes, release the device."""

    @property
    def state(self) -> str:
        """A few words for the dashboard: "open", "waiting for /dev/ttyACM0", ..."""
        return "open"


class Backoff:
    """Retry delays for a device that is missing: 0.5 s doubling to at most 30 s."""

    def __init__(self, first: float = 0.5, longest: float = 30.0) -> None:
        self.first, self.longest = first, longest
        self.attempts = 0

    def next(self) -> float:
        delay = min(self.longest, self.first * 2**self.attempts)
        self.attempts += 1
        return delay

    def reset(self) -> None:
        self.attempts = 0
