"""Hostile files for the tests (and benchmarks/upload_bombs.py): zip archives whose
members unpack a thousandfold, or whose directory lies about their size.

A gigabyte of zeros is deflated once per megabyte: a block of 1 MB of zeros ended by
a full flush is byte-aligned and independent of what came before, so repeating it
makes the deflate stream of any multiple of 1 MB in milliseconds.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

MB = 1 << 20
_ZEROS = bytes(MB)


def _deflate(data: bytes, final: bool) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(zlib.Z_FINISH if final else zlib.Z_FULL_FLUSH)


_MB_BLOCK = _deflate(_ZEROS, final=False)


class Member:
    """One member of a zip: its deflated bytes, CRC and true unpacked size."""

    def __init__(self, name: str, head: bytes = b"", zeros: int = 0, tail: bytes = b"") -> None:
        self.name = name
        parts = [_deflate(head, final=False)] if head else []
        crc = zlib.crc32(head)
        whole, rest = divmod(zeros, MB)
        parts += [_MB_BLOCK] * whole
        for _ in range(whole):
            crc = zlib.crc32(_ZEROS, crc)
        if rest:
            parts.append(_deflate(bytes(rest), final=False))
            crc = zlib.crc32(bytes(rest), crc)
        parts.append(_deflate(tail, final=True))
        self.crc = zlib.crc32(tail, crc)
        self.data = b"".join(parts)
        self.size = len(head) + zeros + len(tail)


def write_zip(
    path: Path, members: list[Member], stated_sizes: dict[str, int] | None = None
) -> Path:
    """A zip of deflated members; ``stated_sizes`` makes the directory lie about some."""
    stated_sizes = stated_sizes or {}
    out, directory = bytearray(), bytearray()
    for m in members:
        name = m.name.encode()
        size = stated_sizes.get(m.name, m.size)
        offset = len(out)
        fields = (20, 0, 8, 0, 0, m.crc, len(m.data), size, len(name), 0)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields) + name + m.data
        directory += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            *fields[:8],
            len(name),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        directory += name
    end = struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(directory), len(out), 0
    )
    path.write_bytes(bytes(out + directory + end))
    return path


def npy_header(shape: tuple[int, ...], dtype: str = "<f4") -> bytes:
    return _header({"descr": dtype, "fortran_order": False, "shape": shape})


def _header(fields: dict) -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, fields)
    return buffer.getvalue()


def dataset_bomb(path: Path, unpacked: int = 1024 * MB, dimension: int = 8) -> Path:
    """An antiphon dataset of zeros that is valid, and ``unpacked`` bytes once unpacked."""
    rows = unpacked // (4 * dimension)
    events = Member("events.npy", npy_header((rows, dimension)), rows * dimension * 4)
    offsets = np.array([0, rows], np.int64)
    info = np.array('{"format": "antiphon-dataset", "format_version": 1}')
    return write_zip(
        path,
        [
            events,
            Member("offsets.npy", npy_header((2,), "<i8") + offsets.tobytes()),
            Member(
                "info.npy", _header(np.lib.format.header_data_from_array_1_0(info)) + info.tobytes()
            ),
        ],
    )


def keras_bomb(path: Path, unpacked: int = 1024 * MB) -> Path:
    """A .keras model whose weights file is ``unpacked`` bytes of zeros."""
    return write_zip(
        path, [Member("config.json", b"{}"), Member("model.weights.h5", zeros=unpacked)]
    )
