"""The performance log, written in batches so that logging never delays an event.

Every row keeps the time it happened; rows are handed to the log writer's thread
a few times a second rather than one by one. Waking that thread for each event
makes it compete with the engine for the Python interpreter at exactly the moment
an answer is due (it cost about 0.4 ms per event on the development machine).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from antiphon.data.logs import LogWriter

FLUSH_INTERVAL = 0.1
"""Seconds between hand-overs to the writer thread (a crash loses at most this much)."""

MAX_BATCH = 10_000
"""Rows waiting for a hand-over at most; more are dropped and counted."""


class Recorder:
    def __init__(self, directory: Path, dimension: int, loop: asyncio.AbstractEventLoop) -> None:
        self._writer = LogWriter(directory, dimension)
        self._loop = loop
        self._rows: list[tuple[str, Sequence[float], datetime]] = []
        self._timer: asyncio.TimerHandle | None = None
        self.dropped = 0

    @property
    def path(self) -> Path:
        return self._writer.path

    def write(self, source: str, values: Sequence[float]) -> None:
        if len(self._rows) >= MAX_BATCH:
            self.dropped += 1
            return
        self._rows.append((source, values, datetime.now()))
        if self._timer is None:
            self._timer = self._loop.call_later(FLUSH_INTERVAL, self.flush)

    def flush(self) -> None:
        self._timer = None
        rows, self._rows = self._rows, []
        for source, values, when in rows:
            self._writer.write(source, values, when)

    def close(self) -> int:
        """Write everything, sync and close (blocks: call it from a thread); returns
        how many rows were lost because the disk or the hand-over could not keep up."""
        if self._timer is not None:
            self._timer.cancel()
        self.flush()
        self._writer.close()
        return self.dropped + self._writer.dropped
