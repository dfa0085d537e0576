"""The arrays of an ``.npz`` dataset file, read without trusting the file.

``np.load`` believes a member's header: a header promising a (30 000 000, 9) array
makes it allocate a gigabyte before the data is found to be missing. Here every
member's unpacked size is checked against the limits below in the zip's directory
(see ``antiphon.archives``), and an array's shape and type against the bytes that
are actually there, before an array is made; numeric arrays are then views of those
bytes (read-only), not copies.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from antiphon.archives import Archive, ArchiveError, human

MAX_DATASET_BYTES = 256 << 20
"""Unpacked size of a whole dataset file at most: about 7 million 9-D events, some 200
hours of playing (IMPSY's largest shipped dataset is 103 250 events, 4 MB), and what
a Raspberry Pi with 1 GB can still summarise and plot beside the engine."""

MAX_PICKLED_BYTES = 64 << 20
"""Unpacked size of a pickled (IMPSY) array at most: unpickled Python objects take up to
four times their pickled size (IMPSY's 9-D dataset is 3.4 MB)."""

MAX_PERFORMANCES = 100_000
"""Performances (log files) in one dataset at most."""

NUMERIC_KINDS = "fiu"
HEADER_BYTES = 16 << 10
"""Enough of a member for its .npy header (NumPy refuses headers over 10 000 bytes)."""


@dataclass(frozen=True)
class Member:
    """One ``.npy`` member: its header, and where its data starts in ``data``."""

    name: str
    shape: tuple[int, ...]
    fortran: bool
    dtype: np.dtype
    data: bytes
    offset: int

    def numeric(self, path: Path) -> np.ndarray:
        """The array, when it is a plain number array whose size agrees with its bytes."""
        if self.dtype.kind not in NUMERIC_KINDS or self.dtype.fields is not None:
            raise ArchiveError(f"{path}: {self.name} holds {self.dtype}, not numbers")
        count = int(np.prod(self.shape, dtype=object))
        if count * self.dtype.itemsize != len(self.data) - self.offset:
            raise ArchiveError(
                f"{path}: {self.name} says {self.shape} {self.dtype} but holds "
                f"{human(len(self.data) - self.offset)}; the file is corrupt"
            )
        flat = np.frombuffer(self.data, self.dtype, count, self.offset)
        return flat.reshape(self.shape, order="F" if self.fortran else "C")

    def text(self, path: Path) -> str:
        """A 0-d unicode array (how NumPy stores a string) as a str."""
        if self.dtype.kind != "U" or self.shape != ():
            raise ArchiveError(f"{path}: {self.name} should be a text, not {self.dtype}")
        if self.dtype.itemsize != len(self.data) - self.offset:
            raise ArchiveError(f"{path}: {self.name} is cut short; the file is corrupt")
        return str(np.frombuffer(self.data, self.dtype, 1, self.offset)[0])

    @property
    def pickled(self) -> io.BytesIO:
        """The pickle stream of an object array, positioned after the header."""
        stream = io.BytesIO(self.data)
        stream.seek(self.offset)
        return stream


def open_archive(path: Path) -> Archive:
    """An .npz opened for reading, its whole unpacked size checked first."""
    return Archive(path, MAX_DATASET_BYTES, MAX_DATASET_BYTES, ".npz dataset")


def member(archive: Archive, name: str) -> Member:
    """The ``.npy`` member ``name`` (without its suffix), read and its header parsed."""
    file = f"{name}.npy"
    stated = archive.members[file]
    head = _header(archive.path, name, archive.read(file, head=HEADER_BYTES))
    if head.dtype.hasobject and stated > MAX_PICKLED_BYTES:
        raise ArchiveError(
            f"{archive.path}: {name} is a pickled array of {human(stated)}; antiphon reads "
            f"at most {human(MAX_PICKLED_BYTES)} of pickled data"
        )
    return _header(archive.path, name, archive.read(file))


def _header(path: Path, name: str, data: bytes) -> Member:
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unknown .npy version {version}")
    except (ValueError, SyntaxError, TypeError) as exc:
        raise ArchiveError(f"{path}: {name} is not a NumPy array ({exc})") from None
    if any(n < 0 for n in shape):
        raise ArchiveError(f"{path}: {name} has a negative shape {shape}")
    return Member(name, tuple(shape), bool(fortran), dtype, data, stream.tell())
