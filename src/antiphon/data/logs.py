"""Performance logs: IMPSY-compatible text files, one per run, one line per event.

A file is named ``{YYYY-MM-DDTHH-MM-SS}-{D}d-mdrnn.log`` (local time) and each line is
``<ISO-8601 timestamp>,<source>,<v1>,...,<v_{D-1}>`` where source is ``interface``
(the performer) or ``rnn`` (a prediction that was played). dt is not stored: it is the
difference of consecutive timestamps.

Writing never blocks the caller: lines are queued to a writer thread that writes each
batch as soon as it can and syncs the file to disk after it, so a crash loses nothing
already written and a power cut loses at most the lines being written. The file is
created with the first line (a run in which nothing was played leaves no empty log),
and the writer thread survives whatever the disk does:

- a log deleted while it is written (from the web UI's Logs page, or a shell) is
  noticed before the next batch (the open file has no name left: ``st_nlink`` is 0)
  and the batch goes to a new file, so nothing played afterwards is lost;
- a full disk or an I/O error loses the batch it hit (counted), cuts the file back to
  its last whole line, and sets ``problem`` until a write works again; the caller
  plays on, and ``close`` never waits more than ``CLOSE_TIMEOUT`` for the thread.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType

import numpy as np

from antiphon.errors import AntiphonError
from antiphon.storage import FILE_MODE

INTERFACE = "interface"
RNN = "rnn"
NAME_PATTERN = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2})(?:-(\d+))?-(\d+)d-mdrnn\.log$")
"""IMPSY's log name; a second log started in the same second gets a counter after the time."""
MIN_DIMENSION = 2
"""dt and at least one control."""
MAX_DIMENSION = 1024
"""Far more controls than any instrument has; a larger number in a file name is not a
dimension antiphon can read."""
CLOSE_TIMEOUT = 10.0
"""Seconds ``close`` waits for the writer thread (a hung disk must not hang a stop)."""
MAX_LINE = 1 << 16
"""Characters of a log line read at most; longer lines are skipped."""
FLOAT32_MAX = float(np.finfo(np.float32).max)

Report = Callable[[str], None]
"""Hears, from the writer thread, what happened to the log: deleted, failing, recovered."""


def log_name(when: datetime, dimension: int) -> str:
    return f"{when:%Y-%m-%dT%H-%M-%S}-{dimension}d-mdrnn.log"


def format_line(when: datetime, source: str, values: Sequence[float]) -> str:
    return ",".join([when.isoformat(), source, *(repr(float(v)) for v in values)]) + "\n"


class LogWriter:
    """Appends events to a new log file from any thread, without blocking it.

    Use as a context manager or call ``close()``: it drains the queue and syncs.
    ``path`` is the file being written (or, before the first event, the name it will
    have); ``problem`` says why lines are being lost, while they are.
    """

    def __init__(
        self,
        directory: str | Path,
        dimension: int,
        *,
        started: datetime | None = None,
        max_pending: int = 10_000,
        sync: bool = True,
        report: Report | None = None,
    ) -> None:
        self.dimension = dimension
        self.directory = Path(directory)
        self.path = self.directory / log_name(started or datetime.now(), dimension)
        self.written = 0
        self.problem: str | None = None
        self._full = 0  # lines the queue had no room for (counted by the callers' thread)
        self._failed = 0  # lines the disk refused (counted by the writer thread)
        self._sync = sync
        self._report = report
        self._fd: int | None = None
        self._whole = 0  # bytes of whole lines in the file
        self._queue: queue.Queue[str | None] = queue.Queue(max_pending)
        self._closed = False
        self._thread = threading.Thread(target=self._drain, name="antiphon-log", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        """Lines lost: the disk could not keep up, or refused them."""
        return self._full + self._failed

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
            self._full += 1

    def close(self) -> None:
        """Write everything queued, sync it to disk and close the file."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=CLOSE_TIMEOUT)
        self._thread.join(CLOSE_TIMEOUT)
        if self._thread.is_alive():
            self._full += self._queue.qsize()
            self._say(
                f"the log {self.path.name} could not be finished: the disk did not answer "
                f"for {CLOSE_TIMEOUT:g} s"
            )

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the writer thread -----------------------------------------------------------------
    def _drain(self) -> None:
        q, done = self._queue, False
        while not done:
            line = q.get()
            batch: list[str] = []
            while line is not None:
                batch.append(line)
                try:
                    line = q.get_nowait()
                except queue.Empty:
                    break
            done = line is None
            if batch:
                self._write(batch)
        if self._fd is not None:
            with contextlib.suppress(OSError):
                if self._whole == 0 and os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                    self.path.unlink()  # created, then nothing fitted on the disk
                os.close(self._fd)

    def _write(self, batch: list[str]) -> None:
        try:
            data = "".join(batch).encode("utf-8", "replace")
            if self._fd is not None and self._vanished():
                self._start_file(f"the log {self.path.name} was deleted while it was recorded")
            elif self._fd is None:
                self._start_file(None)
            self._put(data)
            if self._vanished():  # deleted during this batch: keep the batch in a new file
                self._start_file(f"the log {self.path.name} was deleted while it was recorded")
                self._put(data)
        except Exception as exc:  # never let the thread die: the next batch may work
            self._failed += len(batch)
            self._cut_back()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            if self.problem is None:
                self.problem = (
                    f"cannot write the log {self.path.name} ({reason}): events are being "
                    "lost, the music goes on"
                )
                self._say(self.problem)
            return
        self.written += len(batch)
        if self.problem is not None:
            self.problem = None
            self._say(
                f"the log {self.path.name} is being written again ({self._failed} events were lost)"
            )

    def _put(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        if self._sync:
            os.fsync(self._fd)  # on the disk: survives a power cut
        self._whole += len(data)

    def _vanished(self) -> bool:
        assert self._fd is not None
        return os.fstat(self._fd).st_nlink == 0

    def _start_file(self, why: str | None) -> None:
        """Create the log (named for now, after a deletion) and make it current; a log
        replacing a deleted one never takes its name, so that it is not mistaken for it."""
        deleted = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd, deleted = None, self.path
            self.path = self.directory / log_name(datetime.now(), self.dimension)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._fd, self.path = _create(self.path, deleted)
        self._whole = 0
        if why is not None:
            self._say(f"{why}; recording goes on in {self.path.name}")

    def _cut_back(self) -> None:
        """Remove the part of a line a failed write left behind."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self._whole)

    def _say(self, message: str) -> None:
        if self._report is not None:
            self._report(message)


def _create(path: Path, taken: Path | None = None) -> tuple[int, Path]:
    """Open a new file at ``path``, or the next free variant of it (mode FILE_MODE)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
    base = path
    while True:
        path = _unused(base, taken)
        try:
            fd = os.open(path, flags, FILE_MODE)
        except FileExistsError:
            continue
        os.fchmod(fd, FILE_MODE)
        return fd, path


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


def _unused(path: Path, taken: Path | None = None) -> Path:
    """Two runs in the same second get distinct files rather than one merged log; the
    counter goes before the dimension so the name keeps IMPSY's ending. ``taken``
    counts as existing."""
    candidate, n = path, 1
    stamp, rest = path.name[:19], path.name[19:]  # YYYY-MM-DDTHH-MM-SS | -{D}d-mdrnn.log
    while candidate.exists() or candidate == taken:
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
    """The dimension in a log's name, when it is one antiphon can read."""
    match = NAME_PATTERN.search(Path(path).name)
    if not match or len(match[3]) > 5:
        return None
    dimension = int(match[3])
    return dimension if MIN_DIMENSION <= dimension <= MAX_DIMENSION else None


def recording_order(path: str | Path) -> tuple[str, int, str]:
    """Sort key putting logs in the order they were started."""
    name = Path(path).name
    match = NAME_PATTERN.search(name)
    return (match[1], int(match[2] or 1), name) if match else ("", 0, name)


def read_log(path: str | Path, dimension: int | None = None) -> LogFile:
    """Read a log, skipping (and counting) rows it cannot use; never raises on content.

    The dimension comes from the argument, else the file name, else the most common
    row length. Lines starting with ``#`` are comments (the IMPSY iOS app's header).
    Values beyond float32's range (which models and datasets use) are skipped too.
    The file is read line by line, so a long log costs only what it holds as numbers.
    """
    path = Path(path)
    dimension = dimension or dimension_from_name(path)
    try:
        if dimension is None:
            lengths = Counter(
                len(row) for row in _rows(path, Counter()) if 3 <= len(row) <= MAX_DIMENSION + 1
            )
            dimension = lengths.most_common(1)[0][0] - 1 if lengths else MIN_DIMENSION
        times: list[float] = []
        sources: list[str] = []
        values: list[list[float]] = []
        skipped: Counter[str] = Counter()
        for row in _rows(path, skipped):
            if len(row) != dimension + 1:
                skipped["wrong length"] += 1
                continue
            try:
                when = datetime.fromisoformat(row[0].strip()).timestamp()
                numbers = [float(v) for v in row[2:]]
            except (ValueError, OverflowError, OSError):
                skipped["unreadable"] += 1
                continue
            if not all(math.isfinite(v) for v in numbers):
                skipped["not finite"] += 1
                continue
            if not all(abs(v) <= FLOAT32_MAX for v in numbers):
                skipped["out of range"] += 1
                continue
            times.append(when)
            sources.append(row[1].strip())
            values.append(numbers)
    except OSError as exc:
        raise AntiphonError(f"{path}: cannot read the log ({exc.strerror or exc})") from None
    return LogFile(
        path=path,
        dimension=dimension,
        times=np.array(times, np.float64),
        sources=sources,
        values=np.array(values, np.float32).reshape(-1, dimension - 1),
        skipped=skipped,
    )


def _rows(path: Path, skipped: Counter[str]) -> Iterator[list[str]]:
    """Each line that is not blank or a comment, split at commas; overlong lines skipped."""
    with path.open(encoding="utf-8", errors="replace") as f:
        while line := f.readline(MAX_LINE):
            if len(line) == MAX_LINE and not line.endswith("\n"):
                skipped["too long"] += 1
                while (rest := f.readline(MAX_LINE)) and not rest.endswith("\n"):
                    pass
                continue
            if line.strip() and not line.startswith("#"):
                yield line.rstrip("\n").split(",")
