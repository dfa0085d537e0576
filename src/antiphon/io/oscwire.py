"""Open Sound Control 1.0 packets: read defensively, written exactly.

Every datagram that reaches an OSC port (the ``[osc]`` port, the command port) is
hostile until this module has read it, and this module is the only code that reads
received OSC bytes. ``parse`` returns the messages of a datagram (bundles flattened,
their time tags ignored, as documented in docs/protocols.md) or raises one
``ParseError`` with a short reason; it raises nothing else, whatever the bytes.

Why not python-osc's parser: it trusts sizes. A bundle element of size -4 makes its
reader step backwards and loop forever on one datagram (the process hangs); invalid
UTF-8 in an address or string and bundles nested 1,500 deep escape as
UnicodeDecodeError and RecursionError. Here:

- every size is checked before it is used: a datagram is at most ``MAX_DATAGRAM``
  bytes; a bundle element's size is positive, a multiple of 4 and within what
  remains; a string's padding and a blob's bytes lie inside the packet;
- every loop moves forward by at least four bytes, so a datagram is read in time
  proportional to its size;
- bundles nest at most ``MAX_DEPTH`` deep, a datagram holds at most
  ``MAX_MESSAGES`` messages and a message at most ``MAX_ARGUMENTS`` arguments: each
  message may become a model prediction, so a datagram must not be able to ask for
  thousands of them;
- strings must be valid UTF-8; unknown type tags are refused, not skipped (their
  size is unknown, so nothing after them could be trusted).

NaN and infinite floats are passed on: they are valid OSC, and the engine drops them
with a counted warning.

Writing: ``encode`` builds what python-osc's builder builds for the same Python
values (a test checks it byte for byte), and ``floats`` builds float-only messages
from a cached header, since every played event goes through it.

Speed (benchmarks/osc_wire.py, best runs on the shared 2-core development VM): an
8-float ``/interface`` message parses in about 2 µs, against 6 µs with python-osc;
a malformed datagram is refused in about 1.7 µs; ``floats`` builds a message in
about 0.5 µs. A flood of 20,000 malformed datagrams a second costs `antiphon run`
about 30 % of one core, no memory, and one warning line every 5 seconds.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from typing import NamedTuple

MAX_DATAGRAM = 65536
"""Bytes in one datagram at most (UDP over IPv4 carries 65,507 at most anyway)."""

MAX_DEPTH = 8
"""Bundles inside bundles at most. Real senders nest one level, if any."""

MAX_MESSAGES = 32
"""Messages in one datagram at most, counted through every bundle."""

MAX_ARGUMENTS = 256
"""Arguments of one message at most (``/interface`` carries dimension - 1)."""

Argument = int | float | str | bytes | bool | None
"""What an argument becomes: i h t -> int, f d I -> float, s S -> str, b -> bytes,
T F -> bool, N -> None."""


class Message(NamedTuple):
    address: str
    args: tuple[Argument, ...]


class ParseError(ValueError):
    """The datagram is not OSC this parser accepts; the message says why, briefly."""


BUNDLE = b"#bundle\x00"
_BUNDLE_HEADER = len(BUNDLE) + 8  # the tag and a 64-bit time tag
_SIZE = struct.Struct(">i")
_FIXED = {"i": "i", "f": "f", "h": "q", "d": "d", "t": "Q"}  # tag -> struct code
_ONE = {tag: struct.Struct(">" + code) for tag, code in _FIXED.items()}
_NO_DATA: dict[str, Argument] = {"T": True, "F": False, "N": None, "I": float("inf")}


def parse(data: bytes) -> list[Message]:
    """The messages in one datagram, in order; raises ParseError and nothing else."""
    if len(data) > MAX_DATAGRAM:
        raise ParseError(f"larger than {MAX_DATAGRAM} bytes")
    messages: list[Message] = []
    _element(data, 0, len(data), 0, messages)
    return messages


def _element(data: bytes, start: int, end: int, depth: int, out: list[Message]) -> None:
    if data.startswith(BUNDLE, start, end):
        _bundle(data, start, end, depth + 1, out)
    elif data.startswith(b"/", start, end):
        if len(out) == MAX_MESSAGES:
            raise ParseError(f"more than {MAX_MESSAGES} messages")
        out.append(_message(data, start, end))
    else:
        raise ParseError("neither a message (/...) nor a bundle (#bundle)")


def _bundle(data: bytes, start: int, end: int, depth: int, out: list[Message]) -> None:
    if depth > MAX_DEPTH:
        raise ParseError(f"bundles nested more than {MAX_DEPTH} deep")
    position = start + _BUNDLE_HEADER
    if position > end:
        raise ParseError("bundle header cut short")
    while position < end:
        if end - position < 4:
            raise ParseError("bundle element size cut short")
        (size,) = _SIZE.unpack_from(data, position)
        position += 4
        if size <= 0 or size % 4 or size > end - position:
            raise ParseError(f"bundle element size {size} is impossible here")
        _element(data, position, position + size, depth, out)
        position += size


def _message(data: bytes, start: int, end: int) -> Message:
    address, position = _string(data, start, end, "address")
    if position >= end:  # no type tag string: an old-style message without arguments
        return Message(address, ())
    if data[position] != 0x2C:  # ","
        raise ParseError("no type tag string after the address")
    tags, position = _string(data, position, end, "type tag string")
    tags = tags[1:]
    if len(tags) > MAX_ARGUMENTS:
        raise ParseError(f"more than {MAX_ARGUMENTS} arguments")
    layout = _layout(tags)
    if layout is not None:  # numbers only (the usual case): one unpack
        if position + layout.size > end:
            raise ParseError("arguments cut short")
        return Message(address, layout.unpack_from(data, position))
    args: list[Argument] = []
    for tag in tags:
        number = _ONE.get(tag)
        if number is not None:
            if position + number.size > end:
                raise ParseError("arguments cut short")
            args.append(number.unpack_from(data, position)[0])
            position += number.size
        elif tag in _NO_DATA:
            args.append(_NO_DATA[tag])
        elif tag in "sS":
            text, position = _string(data, position, end, "string argument")
            args.append(text)
        elif tag == "b":
            if position + 4 > end:
                raise ParseError("blob size cut short")
            (size,) = _SIZE.unpack_from(data, position)
            position += 4
            padded = (size + 3) & ~3
            if size < 0 or padded > end - position:
                raise ParseError(f"blob size {size} is impossible here")
            args.append(data[position : position + size])
            position += padded
        else:
            raise ParseError(f"unsupported type tag {tag!r}")
    return Message(address, tuple(args))


@functools.lru_cache(maxsize=64)  # bounded: tag strings come from outside
def _layout(tags: str) -> struct.Struct | None:
    """One struct for a tag string of fixed-size numbers only, else None."""
    if not tags or any(tag not in _FIXED for tag in tags):
        return None
    return struct.Struct(">" + "".join(_FIXED[tag] for tag in tags))


def _string(data: bytes, start: int, end: int, what: str) -> tuple[str, int]:
    """A null-terminated, 4-byte padded string and the position after its padding."""
    nul = data.find(b"\x00", start, end)
    if nul < 0:
        raise ParseError(f"{what} is not terminated")
    after = start + ((nul - start) // 4 + 1) * 4
    if after > end:
        raise ParseError(f"{what} padding runs past the end")
    try:
        return data[start:nul].decode("utf-8"), after
    except UnicodeDecodeError:
        raise ParseError(f"{what} is not UTF-8") from None


# -- writing ---------------------------------------------------------------------------


def encode(address: str, args: Sequence[Argument]) -> bytes:
    """One OSC message: bool -> T/F, None -> N, int -> i (h beyond 32 bits),
    float -> f (32-bit, as Pd expects), str -> s, bytes -> b."""
    tags = [","]
    data = []
    for value in args:
        if value is True or value is False:
            tags.append("T" if value else "F")
        elif value is None:
            tags.append("N")
        elif isinstance(value, int):
            small = -(2**31) <= value < 2**31
            tags.append("i" if small else "h")
            data.append(struct.pack(">i" if small else ">q", value))
        elif isinstance(value, float):
            tags.append("f")
            data.append(struct.pack(">f", value))
        elif isinstance(value, str):
            tags.append("s")
            data.append(_padded(value.encode("utf-8")))
        elif isinstance(value, bytes):
            tags.append("b")
            data.append(_SIZE.pack(len(value)) + value + b"\x00" * (-len(value) % 4))
        else:
            raise TypeError(f"OSC cannot carry {type(value).__name__} {value!r}")
    return _padded(address.encode("utf-8")) + _padded("".join(tags).encode()) + b"".join(data)


def _padded(text: bytes) -> bytes:
    return text + b"\x00" * (4 - len(text) % 4)


@functools.lru_cache(maxsize=32)
def _float_header(address: str, count: int) -> bytes:
    return _padded(address.encode("utf-8")) + _padded(b"," + b"f" * count)


def floats(address: str, values: Sequence[float]) -> bytes:
    """The same datagram as ``encode`` for float-only messages, several times faster:
    every played event is built this way, so it is on the hot path."""
    return _float_header(address, len(values)) + struct.pack(f">{len(values)}f", *values)
