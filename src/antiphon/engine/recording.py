"""The performance log, written in batches so that logging never delays an event.

Every row keeps the time it happened; rows are handed to the log writer's thread
a few times a second rather than one by one. Waking that thread for each event
makes it compete with the engine for the Python interpreter at exactly the moment
an answer is due (it cost about 0.4 ms per event on the development machine).

What happens to the file (deleted while recorded, the disk full) is the writer's
business (see ``data.logs``): the engine only ever hands rows over, reads
``problem`` for its status, and hears each change once through ``warn``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from antiphon.data.logs import LogWriter

FLUSH_INTERVAL = 0.1
"""Seconds between hand-overs to the writer thread (a crash loses at most this much)."""

MAX_BATCH = 10_000
"""Rows waiting for a hand-over at most; more are dropped and counted."""

log = logging.getLogger(__name__)


class Recorder:
    """Rows of the running performance, handed to a ``LogWriter`` in batches.

    ``warn(kind, message)`` (the engine's ``warn``) is called on the loop when the log
    is deleted, starts failing or works again; without it the message is logged.
    """

    def __init__(
        self,
        directory: Path,
        dimension: int,
        loop: asyncio.AbstractEventLoop,
        warn: Callable[[str, str], None] | None = None,
    ) -> None:
        self._loop = loop
        self._warn = warn
        self._writer = LogWriter(directory, dimension, report=self._report)
        self._rows: list[tuple[str, Sequence[float], datetime]] = []
        self._timer: asyncio.TimerHandle | None = None
        self.dropped = 0

    @property
    def path(self) -> Path:
        """The log being written; before the first event, the name it will have."""
        return self._writer.path

    @property
    def problem(self) -> str | None:
        """Why events are not reaching the log right now (the disk is full...), or None."""
        return self._writer.problem

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

    def _report(self, message: str) -> None:
        """From the writer thread: pass the news to the loop (or the log, without one)."""
        if self._warn is None:
            log.warning("%s", message)
            return
        # A problem and its end are each said at once, not folded into one another.
        kind = "log problem" if self._writer.problem else "log"
        with contextlib.suppress(RuntimeError):  # the loop has closed: the run is over
            self._loop.call_soon_threadsafe(self._warn, kind, message)
