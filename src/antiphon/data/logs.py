"""Performance logs: IMPSY-compatible text files, one per run, one line per event.

A file is named ``{YYYY-MM-DDTHH-MM-SS}-{D}d-mdrnn.log`` (local time) and each line is
``<ISO-8601 timestamp>,<source>,<v1>,...,<v_{D-1}>`` where source is ``interface``
(the performer) or ``rnn`` (a prediction that was played). dt is not stored: it is the
difference of consecutive timestamps.

Writing never blocks the caller: lines are queued to a writer thread that writes each
one as soon as it can and syncs the file to disk after every batch, so a crash loses
nothing already written and a power cut loses at most the lines being written.
"""

from __future__ import annotations

import math
import os
import queue
import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType

import numpy as np

from antiphon.errors import AntiphonError

INTERFACE = "interface"
RNN = "rnn"
NAME_PATTERN = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2})(?:-(\d+))?-(\d+)d-mdrnn\.log$")
"""IMPSY's log name; a second log started in the same second gets a counter after the time."""


def log_name(when: datetime, dimension: int) -> str:
    return f"{when:%Y-%m-%dT%H-%M-%S}-{dimension}d-mdrnn.log"


def format_line(when: datetime, source: str, values: Sequence[float]) -> str:
    return ",".join([when.isoformat(), source, *(repr(float(v)) for v in values)]) + "\n"


class LogWriter:
    """Appends events to a new log file from any thread, without blocking it.

    Use as a context manager or call ``close()``: it drains the queue and syncs.
    """

    def __init__(
        self,
        directory: str | Path,
        dimension: int,
        *,
        started: datetime | None = None,
        max_pending: int = 10_000,
        sync: bool = True,
    ) -> None:
        self.dimension = dimension
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        started = started or datetime.now()
        self.path = _unused(directory / log_name(started, dimension))
        self.dropped = 0  # lines lost because the disk could not keep up
        self.written = 0
        self._sync = sync
        self._queue: queue.Queue[str | None] = queue.Queue(max_pending)
        self._file = self.path.open("x", encoding="utf-8")
        self._thread = threading.Thread(target=self._drain, name="antiphon-log", daemon=True)
        self._thread.start()
        self._closed = False

    def write(self, source: str, values: Sequence[float], when: datetime | None = None) -> None:
        """Queue one event; ``values`` are the D-1 controls."""
        if self._closed:
            raise ValueError(f"log {self.path} is closed")
        if len(values) != self.dimension - 1:
            raise ValueError(
                f"a {self.dimension}d log takes {self.dimension - 1} values, got {len(values)}"
            )
        try:
            self._queue.put_nowait(format_line(when or datetime.now(), source, values))
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        """Write everything queued, sync it to disk and close the file."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        self._file.close()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _drain(self) -> None:
        f, q = self._file, self._queue
        while True:
            line = q.get()
            done = line is None
            while line is not None:
                f.write(line)
                f.flush()  # in the OS's hands: survives a crash of this process
                self.written += 1
                try:
                    line = q.get_nowait()
                except queue.Empty:
                    break
                if line is None:
                    done = True
            if self._sync:
                os.fsync(f.fileno())  # on the disk: survives a power cut
            if done:
                return


def write_events(
    directory: str | Path,
    events: np.ndarray,
    *,
    source: str = INTERFACE,
    started: datetime | None = None,
) -> Path:
    """Write (N, D) rows ``[dt, v1, ...]`` as a log whose timestamps follow the dts.

    The first row is dated ``started`` plus its dt. Times are computed, not waited
    for, so an hour of events is written in a second.
    """
    dimension = events.shape[1]
    started = (started or datetime.now()).replace(microsecond=0)
    offsets = np.cumsum(events[:, 0].astype(np.float64))
    with LogWriter(directory, dimension, started=started, sync=False) as log:
        for offset, values in zip(offsets.tolist(), events[:, 1:].tolist(), strict=True):
            log.write(source, values, started + timedelta(seconds=offset))
    return log.path


def _unused(path: Path) -> Path:
    """Two runs in the same second get distinct files rather than one merged log; the
    counter goes before the dimension so the name keeps IMPSY's ending."""
    candidate, n = path, 1
    stamp, rest = path.name[:19], path.name[19:]  # YYYY-MM-DDTHH-MM-SS | -{D}d-mdrnn.log
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{stamp}-{n}{rest}")
    return candidate


# -- reading -----------------------------------------------------------------------------


@dataclass
class LogFile:
    """What a log file holds: each event's time, source and control values."""

    path: Path
    dimension: int
    times: np.ndarray  # (N,) float64 seconds since the epoch (local time)
    sources: list[str]
    values: np.ndarray  # (N, D-1) float32
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> rows skipped

    def events(self, source: str = INTERFACE) -> np.ndarray:
        """(N-1, D) float32 rows ``[dt, v1, ...]`` for one source, as models train on.

        The first row has no previous event to measure dt from and is dropped.
        """
        keep = np.array([s == source for s in self.sources], dtype=bool)
        times, values = self.times[keep], self.values[keep]
        if len(times) < 2:
            return np.zeros((0, self.dimension), np.float32)
        dt = np.diff(times)[:, None]
        return np.concatenate([dt, values[1:]], axis=1).astype(np.float32)

    @property
    def duration(self) -> float:
        return float(self.times[-1] - self.times[0]) if len(self.times) > 1 else 0.0


def dimension_from_name(path: str | Path) -> int | None:
    match = NAME_PATTERN.search(Path(path).name)
    return int(match[3]) if match else None


def recording_order(path: str | Path) -> tuple[str, int, str]:
    """Sort key putting logs in the order they were started."""
    name = Path(path).name
    match = NAME_PATTERN.search(name)
    return (match[1], int(match[2] or 1), name) if match else ("", 0, name)


def read_log(path: str | Path, dimension: int | None = None) -> LogFile:
    """Read a log, skipping (and counting) rows it cannot use; never raises on content.

    The dimension comes from the argument, else the file name, else the most common
    row length. Lines starting with ``#`` are comments (the IMPSY iOS app's header).
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise AntiphonError(f"{path}: cannot read the log ({exc.strerror})") from None
    rows = [line.split(",") for line in lines if line.strip() and not line.startswith("#")]
    dimension = dimension or dimension_from_name(path)
    if dimension is None:
        lengths = Counter(len(row) for row in rows if len(row) >= 3)
        dimension = lengths.most_common(1)[0][0] - 1 if lengths else 2
    times: list[float] = []
    sources: list[str] = []
    values: list[list[float]] = []
    skipped: Counter[str] = Counter()
    for row in rows:
        if len(row) != dimension + 1:
            skipped["wrong length"] += 1
            continue
        try:
            when = datetime.fromisoformat(row[0].strip()).timestamp()
            numbers = [float(v) for v in row[2:]]
        except ValueError:
            skipped["unreadable"] += 1
            continue
        if not all(math.isfinite(v) for v in numbers):
            skipped["not finite"] += 1
            continue
        times.append(when)
        sources.append(row[1].strip())
        values.append(numbers)
    return LogFile(
        path=path,
        dimension=dimension,
        times=np.array(times, np.float64),
        sources=sources,
        values=np.array(values, np.float32).reshape(-1, dimension - 1),
        skipped=skipped,
    )
