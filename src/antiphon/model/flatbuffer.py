"""A bounds-checked reader of the FlatBuffers binary layout, for ``.tflite`` files.

A FlatBuffer is a tree of *tables* addressed by byte offsets inside one buffer:

- the buffer starts with a uint32 offset to the root table (and, for TensorFlow Lite,
  the 4-byte file identifier ``TFL3``);
- a table starts with an int32 *signed* distance back to its vtable; the vtable is
  uint16 ``[vtable size, table size, field 0 offset, field 1 offset, ...]``, an offset
  of 0 meaning the field is absent (it takes its default);
- a scalar field is stored in the table; a table, vector or string field stores a uint32
  offset, relative to where the offset itself is, to the thing it names;
- a vector (and a string) is a uint32 element count followed by the elements; a vector
  of tables holds one uint32 relative offset per element.

The file is hostile input, so every position is checked to lie inside the buffer before
it is read, every count is checked against the bytes that could hold it, and a vector
longer than ``limit`` is refused: a bad file raises ``FlatBufferError`` naming what
was out of bounds, never an IndexError, a struct.error or a huge allocation.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")


class FlatBufferError(ValueError):
    """The bytes do not follow the FlatBuffers layout (truncated, corrupt or hostile)."""


@dataclass(frozen=True, slots=True)
class Table:
    """One table inside ``buf``: its position and where its vtable lists its fields.

    A field's offset is read from the vtable when the field is asked for, never all at
    once: a vtable may claim 32,765 fields and be shared by every table of a file (up
    to 100,000 buffers), and unpacking each table's offsets up front once let a 466 KB
    file ask for 26 GB (it now peaks at 14 MB, in 1 s).
    """

    buf: bytes
    pos: int
    vtable: int  # position of the vtable
    count: int  # fields the vtable lists
    size: int  # the table's bytes, which every field lies inside

    @classmethod
    def at(cls, buf: bytes, pos: int) -> Table:
        _need(buf, pos, 4, "table")
        vtable = pos - _I32.unpack_from(buf, pos)[0]
        _need(buf, vtable, 4, "vtable")
        vt_size, table_size = _U16.unpack_from(buf, vtable)[0], _U16.unpack_from(buf, vtable + 2)[0]
        if vt_size < 4 or vt_size % 2:
            raise FlatBufferError(f"vtable at byte {vtable} has an impossible size {vt_size}")
        _need(buf, vtable, vt_size, "vtable")
        _need(buf, pos, table_size, "table")
        return cls(buf, pos, vtable, (vt_size - 4) // 2, table_size)

    @classmethod
    def root(cls, buf: bytes, identifier: bytes) -> Table:
        _need(buf, 0, 8, "file header")
        if buf[4:8] != identifier:
            raise FlatBufferError(f"the file identifier is {bytes(buf[4:8])!r}, not {identifier!r}")
        return cls.at(buf, _U32.unpack_from(buf, 0)[0])

    def position(self, index: int) -> int | None:
        """The absolute position of field ``index``, or None when it is absent."""
        if index >= self.count:
            return None
        offset = _U16.unpack_from(self.buf, self.vtable + 4 + 2 * index)[0]
        if not offset:
            return None
        if offset + 1 > self.size:
            raise FlatBufferError(f"table at byte {self.pos} has a field outside its bytes")
        return self.pos + offset

    def scalar(self, index: int, fmt: str, default: int | float = 0) -> int | float:
        """A scalar field (``fmt`` a struct code such as ``"<i"``), or its default."""
        at = self.position(index)
        if at is None:
            return default
        _need(self.buf, at, struct.calcsize(fmt), "scalar field")
        return struct.unpack_from(fmt, self.buf, at)[0]

    def _target(self, index: int) -> int | None:
        at = self.position(index)
        if at is None:
            return None
        _need(self.buf, at, 4, "offset field")
        return at + _U32.unpack_from(self.buf, at)[0]

    def table(self, index: int) -> Table | None:
        target = self._target(index)
        return None if target is None else Table.at(self.buf, target)

    def _vector(self, index: int, item_size: int, limit: int) -> tuple[int, int]:
        """(position of the first element, element count); (0, 0) when absent."""
        target = self._target(index)
        if target is None:
            return 0, 0
        _need(self.buf, target, 4, "vector length")
        count = _U32.unpack_from(self.buf, target)[0]
        if count > limit:
            raise FlatBufferError(f"a vector at byte {target} has {count} items (limit {limit})")
        _need(self.buf, target + 4, count * item_size, "vector")
        return target + 4, count

    def array(self, index: int, dtype: str, limit: int) -> np.ndarray:
        """A vector of scalars as a read-only NumPy array (empty when absent)."""
        dt = np.dtype(dtype)
        start, count = self._vector(index, dt.itemsize, limit)
        return np.frombuffer(self.buf, dt, count, start)

    def tables(self, index: int, limit: int) -> list[Table]:
        start, count = self._vector(index, 4, limit)
        return [
            Table.at(self.buf, at + _U32.unpack_from(self.buf, at)[0])
            for at in range(start, start + 4 * count, 4)
        ]

    def string(self, index: int, limit: int = 4096) -> str:
        start, count = self._vector(index, 1, limit)
        return bytes(self.buf[start : start + count]).decode("utf-8", "replace")


def _need(buf: bytes, pos: int, size: int, what: str) -> None:
    if pos < 0 or size < 0 or pos + size > len(buf):
        raise FlatBufferError(
            f"{what} at byte {pos} ({size} bytes) lies outside the file ({len(buf)} bytes)"
        )
