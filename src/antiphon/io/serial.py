"""Serial text (a micro:bit on USB): one event per line, comma-separated numbers.

In: ``0.5,0.25,1.0\\n`` (``\\r\\n`` too; spaces allowed). Out: the same with four
decimals, as IMPSY writes it. Partial lines wait for their end, garbage bytes and
unreadable lines are dropped and counted, a line longer than ``MAX_LINE`` is dropped
whole (a device that never sends a newline costs at most that much memory), and a
device that disappears (unplugged, reset) is reopened with backoff while everything
else keeps playing.

``Lines`` and ``parse_line`` are the pure parsers (bytes in, values out); the port is
read with the event loop's own reader callback on its file descriptor: no thread and
no polling. ``port`` is the device's path, as in ``[serial].port``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from collections.abc import Sequence

import serial as pyserial

from antiphon.config import SerialConfig
from antiphon.errors import shown
from antiphon.io.channel import Channel, Inputs, Reconnect

MAX_LINE = 1024
"""Bytes in one line at most (a line of 9 values with four decimals is 60)."""

READ_SIZE = 4096
"""Bytes read from the device at a time."""

MAX_PENDING = 4096
"""Bytes waiting for a device that takes them slower than they come, at most: about
1.3 s of MIDI at 31,250 baud. What would not fit is dropped in whole messages."""


class Lines:
    """Bytes in, complete lines out (without their newline); never holds more than
    ``limit`` bytes, dropping longer lines whole and counting them."""

    def __init__(self, limit: int = MAX_LINE) -> None:
        self.limit = limit
        self._partial = bytearray()
        self._skipping = False  # inside a line already too long: wait for its end

    def feed(self, data: bytes) -> tuple[list[bytes], int]:
        """The lines completed by ``data``, and how many too-long lines were dropped."""
        lines: list[bytes] = []
        dropped = 0
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            if self._skipping:
                self._skipping = False
            elif len(self._partial) + end - start > self.limit:
                dropped += 1
            else:
                lines.append(bytes(self._partial) + data[start:end])
            self._partial.clear()
            start = end + 1
        if not self._skipping and start < len(data):
            if len(self._partial) + len(data) - start > self.limit:
                self._partial.clear()
                self._skipping = True
                dropped += 1
            else:
                self._partial += data[start:]
        return lines, dropped

    def clear(self) -> None:
        """Forget a partial line (it belongs to a connection that is gone)."""
        self._partial.clear()
        self._skipping = False


def parse_line(line: bytes) -> list[float] | None:
    """One line's values; None for a blank line; ValueError if it is not numbers."""
    line = line.strip(b"\r\t\x00 ")
    if not line:
        return None
    try:
        return [float(part) for part in line.decode("ascii").split(",")]
    except (UnicodeDecodeError, ValueError):
        raise ValueError("not comma-separated numbers") from None


class SerialDevice(Channel):
    """A serial port that reconnects by itself; subclasses parse and format bytes."""

    name = "serial"

    def __init__(self, port: str, baudrate: int) -> None:
        self.port = port
        self.baudrate = baudrate
        self._inputs: Inputs | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._serial: pyserial.Serial | None = None
        self._reconnect: Reconnect | None = None
        self._pending = bytearray()  # written in part: the rest goes when the device can

    async def _open(self, inputs: Inputs) -> None:
        self._inputs = inputs
        self._loop = asyncio.get_running_loop()
        self._reconnect = Reconnect(
            inputs, f"device {self.name}", f"{self.name}: {self.port}", self._connect
        )
        self._reconnect.start()

    @property
    def state(self) -> str:
        if self._serial is not None:
            return f"open {self.port} at {self.baudrate} baud"
        problem = self._reconnect.problem if self._reconnect else self._phase
        return f"waiting for {self.port} ({problem})"

    def _connect(self) -> str | None:
        try:
            device = pyserial.Serial(self.port, self.baudrate, timeout=0, write_timeout=0)
        except (pyserial.SerialException, OSError, ValueError) as exc:
            return f"cannot open it: {_reason(exc)}"
        assert self._loop is not None
        self._serial = device
        self._loop.add_reader(device.fileno(), self._readable)
        self._opened()
        return None

    def _disconnect(self) -> None:
        device, self._serial = self._serial, None
        self._pending.clear()
        if device is not None:
            assert self._loop is not None
            self._loop.remove_reader(device.fileno())
            self._loop.remove_writer(device.fileno())
            with contextlib.suppress(pyserial.SerialException, OSError):
                device.close()

    def _lost(self, reason: str) -> None:
        self._disconnect()
        if self._reconnect is not None and not self.closed:
            self._reconnect.lost(reason)

    def _readable(self) -> None:
        assert self._serial is not None
        try:
            data = os.read(self._serial.fileno(), READ_SIZE)
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
        """Write ``data`` (whole messages or lines) without blocking. What the device
        cannot take now waits, up to ``MAX_PENDING`` bytes; beyond that a write is
        dropped whole and counted. Never half of one: the rest of a message cut off
        would make the device misread the next (MIDI's running status)."""
        if self._serial is None:
            return  # waiting for the device (said once by the reconnect)
        if self._pending:
            if len(self._pending) + len(data) > MAX_PENDING:
                self._overflow()
            else:
                self._pending += data
            return
        try:
            written = os.write(self._serial.fileno(), data)
        except BlockingIOError:
            written = 0
        except OSError as exc:
            self._lost(_reason(exc))
            return
        if written < len(data):
            self._pending += data[written:]
            assert self._loop is not None
            self._loop.add_writer(self._serial.fileno(), self._writable)

    def _writable(self) -> None:
        assert self._serial is not None
        try:
            written = os.write(self._serial.fileno(), self._pending)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(_reason(exc))
            return
        del self._pending[:written]
        if not self._pending:
            assert self._loop is not None
            self._loop.remove_writer(self._serial.fileno())

    def _overflow(self) -> None:
        if self._inputs is not None:
            self._inputs.warn(
                f"overflow {self.name}", f"{self.name}: {self.port} is not reading fast enough"
            )

    async def _close(self) -> None:
        if self._reconnect is not None:
            self._reconnect.cancel()
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
        self._lines = Lines()

    def _opened(self) -> None:
        self._lines.clear()  # whatever was half-received before belongs to nobody

    def _received(self, data: bytes) -> None:
        assert self._inputs is not None
        lines, dropped = self._lines.feed(data)
        if dropped:
            self._inputs.warn(
                "serial-garbage",
                f"serial: dropped {dropped} line(s) longer than {MAX_LINE} bytes",
            )
        for line in lines:
            try:
                values = parse_line(line)
            except ValueError:
                self._inputs.warn(
                    "serial-garbage",
                    "serial: dropped a line that is not comma-separated numbers: "
                    + shown(line, 60),
                )
                continue
            if values is not None:
                self._inputs.on_input(self.name, values)

    def _send(self, values: Sequence[float]) -> None:
        self.write((",".join(f"{v:.4f}" for v in values) + "\n").encode("ascii"))


_ADVICE = {
    errno.ENOENT: "no such device (not plugged in?)",
    errno.EACCES: "permission denied (on Linux, add yourself to the dialout group)",
    errno.EBUSY: "in use by another program",
    errno.EIO: "input/output error (unplugged?)",
}


def _reason(exc: BaseException) -> str:
    code = getattr(exc, "errno", None)
    if code in _ADVICE:
        return _ADVICE[code]
    if isinstance(exc, OSError) and isinstance(exc.strerror, str) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
