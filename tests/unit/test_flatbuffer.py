"""The FlatBuffers reader keeps every read inside the file and says what was wrong."""

import struct

import numpy as np
import pytest

from antiphon.model.flatbuffer import FlatBufferError, Table


def small_buffer(count: int = 3, vtable_fields: tuple[int, ...] = (4, 8)) -> bytes:
    """A root table with field 0 a vector of int32 and field 1 an int32 scalar 7.

    0: root offset (16)   4: identifier   8: vtable   16: table   28: the vector
    """
    size = 4 + 2 * len(vtable_fields)
    vtable = struct.pack(f"<HH{len(vtable_fields)}H", size, 12, *vtable_fields).ljust(8, b"\0")
    table = struct.pack("<iIi", 16 - 8, 28 - 20, 7)  # soffset to vtable, vector offset, 7
    vector = struct.pack(f"<I{count}i", count, *range(10, 10 + count))
    return struct.pack("<I", 16) + b"TEST" + vtable + table + vector


def test_a_well_formed_buffer_reads_back():
    root = Table.root(small_buffer(), b"TEST")
    assert root.array(0, "<i4", 10).tolist() == [10, 11, 12]
    assert root.scalar(1, "<i") == 7
    assert root.scalar(5, "<i", default=-1) == -1  # a field the vtable does not list
    assert root.table(5) is None and len(root.array(5, "<i4", 10)) == 0


def test_every_truncation_is_a_flatbuffer_error():
    data = small_buffer()
    for cut in range(len(data)):
        with pytest.raises(FlatBufferError):
            root = Table.root(data[:cut], b"TEST")
            root.array(0, "<i4", 10)


def test_counts_are_bounded_by_the_file_and_by_the_caller():
    data = bytearray(small_buffer())
    struct.pack_into("<I", data, 28, 2**31)  # the vector claims 2 G items
    with pytest.raises(FlatBufferError, match="limit"):
        Table.root(bytes(data), b"TEST").array(0, "<i4", 1000)
    with pytest.raises(FlatBufferError, match="outside the file"):
        Table.root(bytes(data), b"TEST").array(0, "<i4", 2**32)
    with pytest.raises(FlatBufferError, match="limit"):
        Table.root(small_buffer(count=3), b"TEST").array(0, "<i4", 2)


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        (0, 2**32 - 1, "outside the file"),  # root offset past the end
        (16, -(2**30), "outside the file"),  # vtable far after the table
        (16, 2**30, "outside the file"),  # vtable far before the start
        (8, 3, "impossible size"),  # odd vtable size
    ],
)
def test_offsets_outside_the_file_are_refused(where, value, message):
    data = bytearray(small_buffer())
    fmt = "<H" if where == 8 else ("<i" if where == 16 else "<I")
    struct.pack_into(fmt, data, where, value)
    with pytest.raises(FlatBufferError, match=message):
        Table.root(bytes(data), b"TEST")


def test_a_field_beyond_its_table_is_refused():
    root = Table.root(small_buffer(vtable_fields=(4, 40)), b"TEST")
    assert root.array(0, "<i4", 10).tolist() == [10, 11, 12]  # the fields inside still read
    with pytest.raises(FlatBufferError, match="field outside"):
        root.scalar(1, "<i")


def test_the_identifier_is_checked():
    with pytest.raises(FlatBufferError, match="identifier"):
        Table.root(small_buffer(), b"TFL3")


def test_random_bytes_never_escape_as_other_errors():
    rng = np.random.default_rng(0)
    base = small_buffer()
    for _ in range(2000):
        data = bytearray(base)
        for at in rng.integers(0, len(data), 3):
            data[at] = int(rng.integers(0, 256))
        try:
            root = Table.root(bytes(data), b"TEST")
            root.array(0, "<i4", 100)
            root.scalar(1, "<i")
            root.string(0)
        except FlatBufferError:
            pass
