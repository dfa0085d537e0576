"""Writing a file so that it is either all old or all new, never half written.

A power cut (an instrument is unplugged, not shut down) or a full disk while saving a
config, a model or a dataset must not leave a truncated file that stops the next
start. The data goes to a temporary file beside the target, is flushed to the disk,
and then replaces the target in one rename.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

SHARED = 0o644
"""What a new file gets: readable by other users (a Docker bind mount's owner on the
host, a backup), like the logs."""


def write_atomically(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace ``path`` with ``data``; ``mode`` defaults to the old file's, else SHARED."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            mode = SHARED
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
