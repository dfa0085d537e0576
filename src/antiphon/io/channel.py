"""The one small interface every I/O channel implements, as mido's ports do.

A channel is made from its config section, opened (given somewhere to deliver its
inputs), sends played values, and is closed (ending any sounding notes)::

    async with OSCChannel(config) as channel:  # closed on leaving, whatever happens
        await channel.open(engine)
        channel.send([0.5, 0.25, 0.75])

Its life is new -> open -> closed, and only that way. As with a mido port, closing
twice is harmless and sending on a channel that is not open raises ``ChannelClosed``
(a ``ValueError``, as mido raises for ``send()`` on a closed port): the engine only
sends to channels it has opened, so such a send is a bug to see, not a message to
lose quietly. A closed channel is not reopened; build a new one (a reload does).

Subclasses implement ``_open``, ``_send`` and ``_close``; the public methods keep the
state. ``port`` means in each channel what its config section calls ``port``: the
device's path for ``[serial]`` and ``[serialmidi]``; OSC and WebSocket channels have
``server_port`` (the port listened on) instead, and a MIDI port is a mido port.

Everything runs on the engine's event loop; a channel whose device comes from a
thread (MIDI) hands messages over through a bounded buffer. A channel never raises
into the engine because of what arrives on its wire: bad input is dropped or repaired
and reported with ``warn``, under a kind from a fixed set (never text that arrived,
so the warnings' bookkeeping cannot grow with what a sender invents).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Protocol, Self

from antiphon.errors import Substitution


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
        """Bad input or a device problem: counted and reported, rate-limited per kind."""


class ChannelClosed(ValueError):
    """``send`` on a channel that is not open (not yet, or no longer)."""


class Channel:
    """Base class: a named channel with the lifecycle; subclasses fill in the hooks."""

    name = "channel"
    input_labels: list[str] | None = None  # how this channel names each control
    output_labels: list[str] | None = None
    echoes_thru = True  # input_thru sends the performer's input here too
    substitutions: Sequence[Substitution] = ()  # used in place of what the config asks
    dropped = 0  # inputs lost before antiphon could read them (a UDP flood)
    _phase = "new"  # -> "open" -> "closed"

    @property
    def closed(self) -> bool:
        return self._phase == "closed"

    async def open(self, inputs: Inputs) -> None:
        """Start listening/sending. Raise AntiphonError only for a fatal setup problem
        (the channel is then closed)."""
        if self._phase != "new":
            raise ChannelClosed(f"{self.name}: a channel opens once (this one is {self._phase})")
        try:
            await self._open(inputs)
        except BaseException:
            await self.close()
            raise
        self._phase = "open"

    def send(self, values: Sequence[float]) -> None:
        """Play one event; never blocks (drops and warns if the device cannot keep up)."""
        if self._phase != "open":
            raise ChannelClosed(f"{self.name}: send() on a channel that is {self._phase}")
        self._send(values)

    async def close(self) -> None:
        """Stop: end sounding notes, release the device. Closing again does nothing."""
        if self._phase == "closed":
            return
        self._phase = "closed"
        await self._close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def heard(self, values: Sequence[float]) -> None:
        """The performer's input, for channels that show it (the monitor); most ignore it."""

    def describe(self, values: Sequence[float]) -> str | None:
        """What ``send(values)`` puts on the wire, for people (MIDI numbers), if useful."""
        return None

    @property
    def state(self) -> str:
        """A few words for the dashboard: "open", "waiting for /dev/ttyACM0", ..."""
        return self._phase

    # -- what subclasses provide -----------------------------------------------------------
    async def _open(self, inputs: Inputs) -> None:
        """Acquire sockets or devices."""

    def _send(self, values: Sequence[float]) -> None:
        """Put one event on the wire."""

    async def _close(self) -> None:
        """End sounding notes, release everything ``_open`` acquired (also after a
        failed ``_open``, so release only what exists)."""


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


class Reconnect:
    """Keeps a device that may be missing connected: tries now, then with backoff.

    ``connect()`` tries once and returns None when connected, else what is wrong
    ("no such device (not plugged in?)"). Each problem is said once, with ``kind``
    (a fixed warning kind): when the device is first missing, when it is lost
    (``lost``), and when it is back; the dashboard shows ``problem`` meanwhile. Used
    by every channel with a device that comes and goes (MIDI ports, serial).
    """

    def __init__(
        self,
        inputs: Inputs,
        kind: str,
        what: str,
        connect: Callable[[], str | None],
        backoff: Backoff | None = None,
    ) -> None:
        self._inputs, self._kind, self._what, self._connect = inputs, kind, what, connect
        self._backoff = backoff or Backoff()
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self.problem: str | None = "not opened yet"

    def start(self) -> None:
        """Try now; on failure say so once and keep trying in the background."""
        self.cancel()
        problem = self._connect()
        if problem is None:
            if self._backoff.attempts:
                self._inputs.warn(self._kind, f"{self._what} is connected again")
            self._backoff.reset()
            self.problem = None
            return
        if self._backoff.attempts == 0:
            self._inputs.warn(
                self._kind,
                f"{self._what}: {problem}; retrying in the background "
                "(everything else keeps playing)",
            )
        self.problem = problem
        self._timer = self._loop.call_later(self._backoff.next(), self.start)

    def lost(self, reason: str) -> None:
        """The device went away: say so, and wait for it to come back."""
        self.cancel()
        self._inputs.warn(self._kind, f"{self._what}: lost it ({reason}); waiting for it")
        self.problem = f"lost it: {reason}"
        self._backoff.reset()
        self._timer = self._loop.call_later(self._backoff.next(), self.start)

    def cancel(self) -> None:
        """Stop trying (on close)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
