"""A stream of MIDI bytes as mido messages, for a wire from outside (serial MIDI).

Feed it bytes as they come, in pieces of any size; it returns each message once its
last byte has arrived. It raises nothing, whatever the bytes, and holds at most
``MAX_SYSEX`` bytes however long a message claims to be.

Why not ``mido.Parser``: it keeps every byte of a System Exclusive message until the
closing F7, so a device sending 4 MB of SysEx without one (a noisy line, a bulk dump
to the wrong port) grows memory by 4 MB; and it ignores running status, with which
hardware senders leave out repeated status bytes (a fast knob sends ``B0 07 10 07 11
07 12``), so it loses all but the first of such messages. The MIDI 1.0 rules followed
here:

- a channel message's status byte may be left out while it stays the same (running
  status); system common messages and SysEx cancel it;
- real-time bytes (F8-FF) are single-byte messages that may appear anywhere, even
  inside another message, without disturbing it;
- any other status byte ends a SysEx that has no F7 (it is dropped unfinished), and
  data bytes with no status before them are ignored.
"""

from __future__ import annotations

import mido

MAX_SYSEX = 8192
"""Bytes of one SysEx message (F0 and F7 included) at most; a longer one is dropped
(and counted).

antiphon itself uses no SysEx; the bound is there so that one cannot grow memory.
8 KiB passes whole the bulk dumps people forward through a MIDI thru (a 32-voice DX7
bank is 4,104 bytes)."""

_SYSEX, _EOX = 0xF0, 0xF7
_COMMON_LENGTH = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0}  # other F1-F7: undefined or stray
_UNDEFINED_REALTIME = (0xF9, 0xFD)


class Parser:
    """MIDI bytes in, mido messages out; ``oversized`` counts SysEx dropped for length
    (as soon as one is too long, not when it ends: it may never end)."""

    def __init__(self, max_sysex: int = MAX_SYSEX) -> None:
        self.max_sysex = max_sysex
        self.oversized = 0
        self._status = 0  # the message being read (0: none)
        self._running = False  # whether _status stays for the next message
        self._length = 0  # data bytes it takes
        self._data: list[int] = []
        self._sysex: bytearray | None = None  # inside a SysEx: what was kept of it
        self._too_long = False  # inside a SysEx beyond max_sysex: skipping to its end

    def feed(self, data: bytes) -> list[mido.Message]:
        """The messages completed by ``data``."""
        out: list[mido.Message] = []
        for byte in data:
            if byte >= 0xF8:
                if byte not in _UNDEFINED_REALTIME:
                    out.append(mido.Message.from_bytes([byte]))
            elif self._sysex is not None and byte < 0x80:
                if self._too_long:
                    continue
                if len(self._sysex) < self.max_sysex - 1:  # room for F7 at the end
                    self._sysex.append(byte)
                else:
                    self._too_long = True
                    self._sysex = bytearray()  # release what was kept
                    self.oversized += 1
            elif self._sysex is not None and byte == _EOX:
                self._end_sysex(out)
            elif byte >= 0x80:
                self._end_sysex(None)  # a status byte ends an unfinished SysEx
                self._start(byte, out)
            elif self._status:
                self._data.append(byte)
                if len(self._data) == self._length:
                    out.append(mido.Message.from_bytes([self._status, *self._data]))
                    self._data = []
                    if not self._running:
                        self._status = 0
        return out

    def _start(self, status: int, out: list[mido.Message]) -> None:
        self._data = []
        self._status, self._running, self._length = 0, False, 0
        if status < 0xF0:  # a channel message: 1 data byte for C0-DF, else 2
            self._status, self._running = status, True
            self._length = 1 if 0xC0 <= status < 0xE0 else 2
        elif status == _SYSEX:
            self._sysex, self._too_long = bytearray([_SYSEX]), False
        elif status in _COMMON_LENGTH:
            if _COMMON_LENGTH[status] == 0:
                out.append(mido.Message.from_bytes([status]))
            else:
                self._status, self._length = status, _COMMON_LENGTH[status]

    def _end_sysex(self, out: list[mido.Message] | None) -> None:
        """Leave a SysEx: complete it into ``out``, or (None) drop it unfinished."""
        if self._sysex is None:
            return
        if out is not None and not self._too_long:
            out.append(mido.Message.from_bytes([*self._sysex, _EOX]))
        self._sysex, self._too_long = None, False
