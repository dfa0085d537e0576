"""Reading zip archives that came from someone else (``.npz`` datasets, ``.keras`` models).

A zip states how large each member is once decompressed, and deflate shrinks a run of
zeros about a thousandfold: a 1 MB upload can unpack to 1 GB (measured: such a
dataset took the engine process to 1.55 GB before this check). So nothing is
decompressed until the central directory has been read and every size checked
against the caller's limit, and then each member is read with a bounded read, so a
member whose stated size is a lie still stops at the limit (``ZipFile.read`` would
decompress it whole before noticing). The central directory itself is bounded
before ``zipfile`` parses it: a million tiny entries would cost hundreds of MB as
``ZipInfo`` objects.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from antiphon.errors import AntiphonError

MAX_DIRECTORY_BYTES = 1 << 20
"""Central directory size at most; an .npz of three arrays needs about 200 bytes."""

METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
"""What NumPy and Keras write; other compressors are refused rather than trusted."""

_END = b"PK\x05\x06"
_END64_LOCATOR = b"PK\x06\x07"
_END64 = b"PK\x06\x06"


class ArchiveError(AntiphonError):
    """An archive that is unreadable or larger, once unpacked, than allowed."""


def human(size: int) -> str:
    return f"{size / (1 << 20):,.0f} MB" if size >= 1 << 20 else f"{size:,} bytes"


class Archive:
    """A zip opened for checked reading: ``members`` maps each name to its stated size;
    ``what`` names the kind of file in messages."""

    def __init__(
        self, path: Path, max_member: int, max_total: int | None = None, what: str = "zip archive"
    ) -> None:
        self.path = path
        self.max_member = max_member
        try:
            with path.open("rb") as f:
                directory = _directory_size(f)
            if directory > MAX_DIRECTORY_BYTES:
                raise ArchiveError(
                    f"{path}: its zip directory is {human(directory)}; antiphon reads at "
                    f"most {human(MAX_DIRECTORY_BYTES)} (far more files than a "
                    "dataset or model holds)"
                )
            self._zip = zipfile.ZipFile(path)
        # zipfile says "a zip it cannot read" in many ways: a newer format version or
        # an unknown compression (NotImplementedError), an encrypted member (RuntimeError)
        except (OSError, zipfile.BadZipFile, struct.error, ValueError, NotImplementedError) as exc:
            raise ArchiveError(f"{path} is not a readable {what} ({exc})") from None
        infos = self._zip.infolist()
        self.members = {info.filename: info.file_size for info in infos}
        for info in infos:
            if info.compress_type not in METHODS:
                self.close()
                raise ArchiveError(
                    f"{path}: {info.filename} uses zip compression method "
                    f"{info.compress_type}; antiphon reads stored or deflated members only"
                )
            if info.file_size > max_member:
                self.close()
                raise ArchiveError(
                    f"{path}: {info.filename} unpacks to {human(info.file_size)}; antiphon "
                    f"reads at most {human(max_member)} from one file (a compressed bomb, "
                    "or far larger than an instrument can use)"
                )
        total = sum(self.members.values())
        if max_total is not None and total > max_total:
            self.close()
            raise ArchiveError(
                f"{path} unpacks to {human(total)}; antiphon reads at most {human(max_total)}"
            )

    def read(self, name: str, head: int | None = None) -> bytes:
        """One member, never more than its stated size (and so the limit); with ``head``,
        only its first ``head`` bytes."""
        stated = self.members[name]
        try:
            with self._zip.open(name) as f:
                data = f.read(stated + 1 if head is None else min(head, stated))
        except (
            OSError,
            zipfile.BadZipFile,
            EOFError,
            ValueError,
            zlib.error,
            NotImplementedError,
            RuntimeError,
        ) as exc:
            raise ArchiveError(f"{self.path}: {name} cannot be unpacked ({exc})") from None
        if head is None and len(data) != stated:
            raise ArchiveError(
                f"{self.path}: {name} unpacks to more or less than its stated "
                f"{human(stated)}; the archive is corrupt or crafted"
            )
        return data

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _directory_size(f: BinaryIO) -> int:
    """The central directory's size in bytes, from the end-of-archive records."""
    f.seek(0, 2)
    size = f.tell()
    tail_start = max(0, size - (22 + 0xFFFF))
    f.seek(tail_start)
    tail = f.read()
    at = tail.rfind(_END)
    if at < 0 or len(tail) - at < 22:
        raise zipfile.BadZipFile("no end of central directory record")
    directory = struct.unpack("<I", tail[at + 12 : at + 16])[0]
    locator = at - 20
    if directory == 0xFFFFFFFF and locator >= 0 and tail[locator : locator + 4] == _END64_LOCATOR:
        offset = struct.unpack("<Q", tail[locator + 8 : locator + 16])[0]
        f.seek(offset)
        record = f.read(56)
        if record[:4] != _END64:
            raise zipfile.BadZipFile("no zip64 end of central directory record")
        directory = struct.unpack("<Q", record[40:48])[0]
    return directory
