"""MIDI ports (mido + python-rtmidi): several inputs and outputs, thru, feedback guard.

- ``in_device`` / ``out_device`` name ports; part of a name is enough ("X-TOUCH"
  matches "X-TOUCH MINI:X-TOUCH MINI MIDI 1 20:0").
- ``input."<port>"`` / ``output."<port>"`` map each control (see ``mapping``).
- ``thru_matrix."<in port>" = [out ports]`` translates at once, in every mode, as
  IMPSY does: a message from the input port is read through its input mapping, and the
  controls it moved are sent through each output port's mapping (the controller's
  third knob moves the synth's third control). Messages the input mapping does not
  know are not passed. Only the controls the message moved are sent, so turning a
  knob does not re-strike the synth's note (IMPSY sends the whole vector).
  ``thru_raw = true`` forwards every message as it came instead.
- ``feedback_protection``: a message arriving within ``feedback_threshold`` seconds
  of the same message being sent is an echo of ours (a device that loops its input
  back), and is ignored.
- A port missing at start, or unplugged later, is retried with backoff while the
  rest plays on; where there is no MIDI system at all (no ALSA sequencer in a
  container), one message says so and the other channels run.

rtmidi delivers input on its own thread; messages cross to the engine's loop through
a bounded buffer, so a flood of MIDI cannot grow memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import mido

from antiphon.config import MIDIConfig
from antiphon.io.channel import Channel, Inputs, Reconnect
from antiphon.io.mapping import Decoder, Encoder, describe, label
from antiphon.io.midiwire import MAX_SYSEX

WATCH_INTERVAL = 2.0
"""Seconds between checks that open ports are still plugged in."""

MAX_INCOMING = 1024
"""Messages waiting to cross from rtmidi's thread to the loop at most (each at most
``MAX_SYSEX`` bytes: longer SysEx is dropped on arrival, so this holds 8 MiB at worst)."""


def open_backend() -> Any:
    """The MIDI backend (tests replace this with a fake where no MIDI system exists)."""
    return mido.Backend("mido.backends.rtmidi", load=True)


def find_port(pattern: str, names: Sequence[str]) -> str | None:
    """The port called ``pattern``, else the first whose name contains it."""
    if pattern in names:
        return pattern
    return next((name for name in names if pattern in name), None)


class _Port:
    """One configured port: its ``pattern`` from the config, the ``name`` it was found
    under, and ``opened``, the open mido port (None while it is missing)."""

    def __init__(self, pattern: str, is_input: bool) -> None:
        self.pattern = pattern
        self.is_input = is_input
        self.kind = "input" if is_input else "output"
        self.opened: Any = None
        self.name: str | None = None
        self.reconnect: Reconnect | None = None


class MIDIChannel(Channel):
    name = "midi"

    def __init__(self, config: MIDIConfig) -> None:
        self.config = config
        self._decoders = {p: Decoder(m) for p, m in config.input.items()}
        self._encoders = {p: Encoder(m) for p, m in config.output.items()}
        self._ins = [_Port(p, True) for p in config.in_device]
        self._outs = [_Port(p, False) for p in config.out_device]
        first_in = next((d for p, d in self._decoders.items() if p in config.in_device), None)
        first_out = next((e for p, e in self._encoders.items() if p in config.out_device), None)
        self.input_labels = [label(m) for m in first_in.mappings] if first_in else None
        self.output_labels = [label(m) for m in first_out.mappings] if first_out else None
        self._backend: Any = None
        self._inputs: Inputs | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._incoming: deque[tuple[str, mido.Message]] = deque(maxlen=MAX_INCOMING)
        self._drain_scheduled = False
        self._flooded = 0  # messages dropped because the buffer was full (rtmidi's thread)
        self._oversized = 0  # SysEx messages dropped for length (rtmidi's thread)
        self._sent: dict[tuple[Any, ...], float] = {}
        self._watch: asyncio.TimerHandle | None = None
        self._unavailable: str | None = None
        self._latest: list[float] = []  # the performer's controls (``heard``), for thru
        self.echoes = 0  # messages ignored by feedback protection

    async def _open(self, inputs: Inputs) -> None:
        self._inputs = inputs
        self._loop = asyncio.get_running_loop()
        try:
            self._backend = open_backend()
            self._backend.get_output_names()
        except Exception as exc:  # rtmidi raises its own SystemError, ImportError, ...
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self._unavailable = reason
            inputs.warn(
                "midi-system",
                f"midi: no MIDI system on this machine ({reason}); the MIDI ports are "
                "switched off and the other channels keep running",
            )
            return
        for port in (*self._ins, *self._outs):
            port.reconnect = Reconnect(
                inputs,
                f"midi {port.kind} {port.pattern}",  # the config's names: a fixed set
                f"midi: {port.kind} port {port.pattern!r}",
                lambda port=port: self._connect(port),
            )
            port.reconnect.start()
        self._watch = self._loop.call_later(WATCH_INTERVAL, self._check_plugged)

    @property
    def state(self) -> str:
        if self._unavailable:
            return f"no MIDI system ({self._unavailable})"
        parts = [
            f"{'in' if p.is_input else 'out'} "
            f"{p.name if p.opened else p.pattern + ' (waiting for it)'}"
            for p in (*self._ins, *self._outs)
        ]
        return ", ".join(parts) or "no ports configured"

    # -- ports coming and going -----------------------------------------------------------
    def _connect(self, port: _Port) -> str | None:
        """Open ``port`` if it is there; what is wrong otherwise."""
        try:
            names = (
                self._backend.get_input_names()
                if port.is_input
                else self._backend.get_output_names()
            )
            name = find_port(port.pattern, names)
            if name is None:
                return "not connected"
            if port.is_input:
                port.opened = self._backend.open_input(
                    name, callback=lambda message, p=port.pattern: self._arrived(p, message)
                )
            else:
                port.opened = self._backend.open_output(name)
                encoder = self._encoders.get(port.pattern)
                if encoder is not None:
                    encoder.resend()  # a device plugged in (again) has heard nothing yet
        except Exception as exc:  # a port vanishing between listing and opening
            return str(exc) or type(exc).__name__
        port.name = name
        return None

    def _check_plugged(self) -> None:
        assert self._loop is not None
        try:
            present = set(self._backend.get_input_names()) | set(self._backend.get_output_names())
        except Exception:
            present = set()
        for port in (*self._ins, *self._outs):
            if port.opened is not None and port.name not in present:
                self._close_port(port)
                assert port.reconnect is not None
                port.reconnect.lost(f"{port.name} was unplugged")
        self._watch = self._loop.call_later(WATCH_INTERVAL, self._check_plugged)

    def _close_port(self, port: _Port) -> None:
        if port.opened is not None:
            with contextlib.suppress(Exception):
                port.opened.close()
        port.opened = None

    # -- input ------------------------------------------------------------------------------
    def _arrived(self, pattern: str, message: mido.Message) -> None:
        """Called on rtmidi's thread: hand over to the loop, never block, never grow."""
        loop = self._loop
        assert loop is not None
        if message.type == "sysex" and len(message.data) + 2 > MAX_SYSEX:
            self._oversized += 1
        elif len(self._incoming) == MAX_INCOMING:
            self._flooded += 1
        else:
            self._incoming.append((pattern, message))
        if not self._drain_scheduled:
            self._drain_scheduled = True
            with contextlib.suppress(RuntimeError):  # the loop has closed: shutting down
                loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        assert self._inputs is not None
        self._drain_scheduled = False
        while self._incoming:
            pattern, message = self._incoming.popleft()
            self.received(pattern, message)
        flooded, self._flooded = self._flooded, 0
        if flooded:
            self._inputs.warn(
                "midi-flood",
                f"midi: input arrives faster than it can be used; dropped {flooded} messages",
            )
        oversized, self._oversized = self._oversized, 0
        if oversized:
            self._inputs.warn(
                "midi-sysex", f"midi: dropped {oversized} SysEx messages over {MAX_SYSEX} bytes"
            )

    def received(self, pattern: str, message: mido.Message) -> None:
        """One message from the input port configured as ``pattern`` (on the loop)."""
        assert self._inputs is not None
        if self.config.feedback_protection and self._is_echo(message):
            self.echoes += 1
            return
        targets = self.config.thru_matrix.get(pattern, ())
        if self.config.thru_raw:
            self._thru(targets, lambda port: [message])
        decoder = self._decoders.get(pattern)
        updates = decoder.decode(message) if decoder else []
        if not updates:
            return
        self._inputs.on_controls(f"midi {pattern}", updates, describe(message))  # -> heard()
        if targets and not self.config.thru_raw:
            moved = sorted({index for index, _ in updates})
            self._thru(targets, lambda port: self._translated(port, moved))

    def heard(self, values: Sequence[float]) -> None:
        """The performer's controls from every channel: a note's velocity control may
        have been set on another one."""
        self._latest = list(values)

    def _translated(self, port: _Port, moved: Sequence[int]) -> list[mido.Message]:
        encoder = self._encoders.get(port.pattern)
        if encoder is None or len(self._latest) < len(encoder.mappings):
            return []
        return encoder.encode(self._latest, only=[i for i in moved if i < len(encoder.mappings)])

    def _thru(self, targets: Sequence[str], messages: Any) -> None:
        for out_pattern in targets:
            for port in self._outs:
                if port.pattern == out_pattern and port.opened is not None:
                    for message in messages(port):
                        self._put(port, message)

    def _is_echo(self, message: mido.Message) -> bool:
        sent = self._sent.get(_key(message))
        return sent is not None and time.monotonic() - sent <= self.config.feedback_threshold

    # -- output -----------------------------------------------------------------------------
    def _send(self, values: Sequence[float]) -> None:
        remember = self.config.feedback_protection
        now = time.monotonic()
        for port in self._outs:
            encoder = self._encoders.get(port.pattern)
            if encoder is None:
                continue
            messages = encoder.encode(values)  # keeps note state even while unplugged
            if port.opened is None:
                continue
            for message in messages:
                self._put(port, message)
                if remember:
                    self._sent[_key(message)] = now
        if remember and len(self._sent) > 512:
            horizon = now - self.config.feedback_threshold
            self._sent = {k: t for k, t in self._sent.items() if t >= horizon}

    def _put(self, port: _Port, message: mido.Message) -> None:
        """Send on an open output; one that fails is treated as unplugged."""
        if port.opened is None:
            return  # failed earlier in the same batch
        try:
            port.opened.send(message)
        except Exception as exc:  # rtmidi's errors, a port closed under us
            self._close_port(port)
            assert port.reconnect is not None
            port.reconnect.lost(str(exc) or type(exc).__name__)

    def describe(self, values: Sequence[float]) -> str | None:
        parts = [
            f"{port.pattern}: {self._encoders[port.pattern].describe(values)}"
            for port in self._outs
            if port.pattern in self._encoders
        ]
        return "; ".join(parts) or None

    async def _close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        for port in self._outs:
            encoder = self._encoders.get(port.pattern)
            if port.opened is not None and encoder is not None:
                for message in encoder.note_offs():
                    self._put(port, message)
        for port in (*self._ins, *self._outs):
            if port.reconnect is not None:
                port.reconnect.cancel()
            self._close_port(port)


def _key(message: mido.Message) -> tuple[Any, ...]:
    return tuple(message.bytes())
