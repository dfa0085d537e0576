"""How antiphon writes files: whole or not at all, and readable by the people around it.

Files are mode 0644 whatever the process's umask or the temporary-file default
(0600): in Docker, antiphon runs as root and the musician opens the workspace as
themselves through a bind mount, and a dataset or model only root can read is of no
use to them. Logs, datasets, models, uploads and config.toml are all written this
way.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

FILE_MODE = 0o644


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, flush it to disk, then rename, so a
    crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), FILE_MODE)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
