"""The performance log, written in batches so that logging never delays an event.

Every row keeps the time it happened; rows are handed to the log writer's thread
a few times a second rather than one by one. Waking that thread for each event
makes it compete with the engine for the Python interpreter at exactly the moment
an answer is due (it cost about 0.4 ms per event on the development machine).

The first channel that plays into the log names it (``...-browser-9d-mdrnn.log``, see
``data.logs``), so the Logs page can tell a performance in the browser from one over
OSC, and a dataset can leave out logs no one played.

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

from antiphon.config import Config
from antiphon.data.logs import LogWriter, origin_of
from antiphon.errors import AntiphonError

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
        self._named = False  # a performer's channel has named the log
        self.dropped = 0

    @property
    def path(self) -> Path:
        """The log being written; before the first event, the name it will have."""
        return self._writer.path

    @property
    def problem(self) -> str | None:
        """Why events are not reaching the log right now (the disk is full...), or None."""
        return self._writer.problem

    def write(self, source: str, values: Sequence[float], channel: str | None = None) -> None:
        """One row; the first performer's ``channel`` gives the log its origin."""
        if channel is not None and not self._named:
            self._named = True
            self._writer.origin = origin_of(channel)  # read by the writer thread
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


class Logbook:
    """The performance log of a run, as the config asks: what the performer played
    (``log_input``) and what the model played (``log_predictions``), in one file per
    run, or per take (the Play page's record button). Switching files never waits for
    the disk on the loop: the old file is closed in a thread."""

    def __init__(self, warn: Callable[[str, str], None]) -> None:
        self._warn = warn
        self._recorder: Recorder | None = None
        self._inputs = self._outputs = False
        self._take_started: float | None = None

    # -- the hot path -----------------------------------------------------------------------
    def heard(self, values: Sequence[float], channel: str) -> None:
        if self._inputs and self._recorder is not None:
            self._recorder.write("interface", values, channel)

    def played(self, values: Sequence[float]) -> None:
        if self._outputs and self._recorder is not None:
            self._recorder.write("rnn", values)

    # -- files ------------------------------------------------------------------------------
    def open(self, config: Config, directory: Path) -> None:
        """Start logging as ``config`` says (the file itself appears at the first row)."""
        self._inputs, self._outputs = config.log_input, config.log_predictions
        self._directory, self._dimension = directory, config.model.dimension
        if self._inputs or self._outputs:
            self._fresh()

    async def reopen(self, config: Config, directory: Path) -> None:
        """Follow a new config: a new file when the dimension or the folder changed."""
        same = self._recorder is not None and (directory, config.model.dimension) == (
            self._directory,
            self._dimension,
        )
        self._inputs, self._outputs = config.log_input, config.log_predictions
        if not same or not (self._inputs or self._outputs):
            await self._replace(lambda: self.open(config, directory))

    async def close(self) -> None:
        """Write everything and close (the blocking part in a thread)."""
        await self._replace(lambda: None)

    async def new_take(self, now: float) -> str:
        """Record what is played from now on in a log of its own."""
        if self._recorder is None:
            raise AntiphonError("logging is off (log_input and log_predictions in config.toml)")
        await self._replace(self._fresh)
        self._take_started = now
        return f"recording a take in {self.path.name}"

    async def stop_take(self) -> str:
        """End the take: its log is closed, what is played next goes to a new log."""
        if self._take_started is None or self._recorder is None:
            return "no take is being recorded"
        path = self.path
        self._take_started = None
        await self._replace(self._fresh)
        return f"take recorded in {path.name}"

    # -- what the status shows ----------------------------------------------------------------
    @property
    def path(self) -> Path:
        assert self._recorder is not None
        return self._recorder.path

    def as_dict(self, now: float) -> dict[str, object]:
        recorder = self._recorder
        return {
            "log": str(recorder.path) if recorder else None,
            "log_problem": recorder.problem if recorder else None,
            "take_seconds": None if self._take_started is None else now - self._take_started,
        }

    def _fresh(self) -> None:
        loop = asyncio.get_running_loop()
        self._recorder = Recorder(self._directory, self._dimension, loop, self._warn)

    async def _replace(self, opening: Callable[[], None]) -> None:
        """Close the log being written (if any) and open another (if ``opening`` does):
        a take recording into it ends with it."""
        closing, self._recorder = self._recorder, None
        self._take_started = None
        opening()
        if closing is not None:
            closing.flush()  # on the loop, then the blocking part in a thread
            dropped = await asyncio.get_running_loop().run_in_executor(None, closing.close)
            if dropped:
                log.warning("%d log lines were dropped (disk too slow)", dropped)
