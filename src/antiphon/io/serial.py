"""Serial text (a micro:bit on USB): one event per line, comma-separated numbers.

In: ``0.5,0.25,1.0\\n`` (``\\r\\n`` too; spaces allowed). Out: the same with four
decimals, as IMPSY writes it. Partial lines wait for their end, garbage bytes and
unreadable lines are dropped and counted, and a device that disappears (unplugged,
reset) is reopened with backoff while everything else keeps playing.

The port is read with the event loop's own reader callback on its file descriptor:
no thread and no polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence

import serial as pyserial

from antiphon.config import SerialConfig
from antiphon.io.channel import Backoff, Channel, Inputs

MAX_LINE = 1024
"""Bytes without a newline after which the buffer is dropped as garbage."""


class SerialDevice(Channel):
    """A serial port that reconnects by itself; subclasses parse and format bytes."""

    name = "serial"

    def __init__(self, port: str, baudrate: int) -> None:
        self.port = port
        self.baudrate = baudrate
        self._inputs: Inputs | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._serial: pyserial.Serial | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._backoff = Backoff()
        self._problem = "not opened yet"
        self._closing = False

    async def open(self, inputs: Inputs) -> None:
        self._inputs = inputs
        self._loop = asyncio.get_running_loop()
        self._connect()

    @property
    def state(self) -> str:
        if self._serial is not None:
            return f"open {self.port} at {self.baudrate} baud"
        return f"waiting for {self.port} ({self._problem})"

    def _connect(self) -> None:
        self._retry = None
        try:
            device = pyserial.Serial(self.port, self.baudrate, timeout=0, write_timeout=0)
        except (pyserial.SerialException, OSError, ValueError) as exc:
            self._wait(f"cannot open it: {_reason(exc)}")
            return
        assert self._loop is not None and self._inputs is not None
        self._serial = device
        self._loop.add_reader(device.fileno(), self._readable)
        if self._backoff.attempts:
            self._inputs.warn(f"device {self.name}", f"{self.name}: {self.port} is back")
        self._backoff.reset()
        self._opened()

    def _wait(self, problem: str) -> None:
        assert self._loop is not None and self._inputs is not None
        self._problem = problem
        delay = self._backoff.next()
        if self._backoff.attempts == 1:  # say it once; the dashboard shows the state
            self._inputs.warn(
                f"device {self.name}",
                f"{self.name}: {self.port}: {problem}; retrying in the background "
                "(everything else keeps playing)",
            )
        self._retry = self._loop.call_later(delay, self._connect)

    def _disconnect(self) -> None:
        device, self._serial = self._serial, None
        if device is not None:
            assert self._loop is not None
            self._loop.remove_reader(device.fileno())
            with contextlib.suppress(pyserial.SerialException, OSError):
                device.close()

    def _lost(self, reason: str) -> None:
        self._disconnect()
        if not self._closing:
            self._backoff.reset()
            self._wait(f"lost it: {reason}")

    def _readable(self) -> None:
        assert self._serial is not None
        try:
            data = os.read(self._serial.fileno(), 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(_reason(exc))
            return
        if not data:
            self._lost("the device closed")
            return
        self._received(data)

    def write(self, data: bytes) -> None:
        """Write without blocking; what the device cannot take now is dropped and counted."""
        if self._serial is None:
            return
        try:
            written = os.write(self._serial.fileno(), data)
        except BlockingIOError:
            written = 0
        except OSError as exc:
            self._lost(_reason(exc))
            return
        if written < len(data) and self._inputs is not None:
            self._inputs.warn(
                f"overflow {self.name}", f"{self.name}: {self.port} is not reading fast enough"
            )

    async def close(self) -> None:
        self._closing = True
        if self._retry is not None:
            self._retry.cancel()
        self._goodbye()
        self._disconnect()

    # -- what subclasses provide -----------------------------------------------------------
    def _opened(self) -> None:
        """Called after each (re)connection."""

    def _received(self, data: bytes) -> None:
        raise NotImplementedError

    def _goodbye(self) -> None:
        """Last bytes to write before closing (note-offs)."""


class SerialChannel(SerialDevice):
    """Comma-separated values, one line per event."""

    name = "serial"

    def __init__(self, config: SerialConfig) -> None:
        super().__init__(config.port, config.baudrate)
        self._buffer = b""

    def _opened(self) -> None:
        self._buffer = b""  # whatever was half-received before belongs to nobody

    def _received(self, data: bytes) -> None:
        assert self._inputs is not None
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        if len(self._buffer) > MAX_LINE:
            self._inputs.warn(
                "serial-garbage",
                f"serial: dropped {len(self._buffer)} bytes without a line end",
            )
            self._buffer = b""
        for raw in lines:
            line = raw.strip(b"\r\t\x00 ")
            if line:
                self._line(line)

    def _line(self, line: bytes) -> None:
        assert self._inputs is not None
        try:
            values = [float(part) for part in line.decode("ascii").split(",")]
        except (UnicodeDecodeError, ValueError):
            self._inputs.warn(
                "serial-garbage",
                f"serial: dropped a line that is not comma-separated numbers: {line[:60]!r}",
            )
            return
        self._inputs.on_input(self.name, values)

    def send(self, values: Sequence[float]) -> None:
        self.write((",".join(f"{v:.4f}" for v in values) + "\n").encode("ascii"))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
