"""Training progress: on a terminal, a bar per epoch then one line with its losses; for
another program (the web UI), JSON lines appended to a file it reads as they come."""

from __future__ import annotations

import time
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from antiphon.training import progress_format
from antiphon.training.train import EpochRecord, Reporter


class RichReporter(Reporter):
    """``epochs`` and ``max_minutes`` bound the run; early stopping may end it sooner,
    so the time left shown after each epoch is an upper bound."""

    def __init__(
        self, epochs: int, max_minutes: float | None = None, console: Console | None = None
    ) -> None:
        self.epochs = epochs
        self.max_minutes = max_minutes
        self.session_start: float | None = None
        self.session_epochs = 0
        self.console = console or Console()
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("train NLL {task.fields[nll]:>7.3f}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self.task = None
        self._sum = 0.0
        self._count = 0

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()

    def begin_epoch(self, epoch: int, batches: int) -> None:
        if self.session_start is None:
            self.session_start = time.monotonic()
        if self.task is not None:
            self.progress.remove_task(self.task)
        self._sum, self._count = 0.0, 0
        self.task = self.progress.add_task(
            "", total=batches, epoch=epoch, epochs=self.epochs, nll=float("nan")
        )

    def advance(self, train_nll: float) -> None:
        self._sum += train_nll
        self._count += 1
        self.progress.update(self.task, advance=1, nll=self._sum / self._count)

    def end_epoch(self, record: EpochRecord, best: bool) -> None:
        self.session_epochs += 1
        elapsed = time.monotonic() - (self.session_start or time.monotonic())
        left = elapsed / self.session_epochs * (self.epochs - record.epoch)
        if self.max_minutes is not None:
            left = min(left, max(self.max_minutes * 60 - elapsed, 0.0))
        self.console.print(
            f"epoch {record.epoch:>3}  train {record.train_nll:8.3f}  "
            f"validation {record.val_nll:8.3f}{' best' if best else '     '}  "
            f"lr {record.learning_rate:.1e}  {_clock(record.seconds)}, "
            f"at most {_clock(left)} left",
            highlight=False,
        )

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False)


class JsonLinesReporter(Reporter):
    """Appends one record of ``progress_format`` per line and flushes it, so a reader
    polling the file never sees half a record; batches at most every ``min_interval``
    seconds."""

    def __init__(self, path: Path, epochs: int, min_interval: float = 0.5) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file: IO[str] = path.open("a", encoding="utf-8")
        self.epochs = epochs
        self.min_interval = min_interval
        self.epoch = 0
        self.total = 0
        self.done = 0
        self._last_write = 0.0

    def write(self, record: progress_format.Event) -> None:
        self.file.write(progress_format.encode(record))
        self.file.flush()

    def begin_run(self, model: Path) -> None:
        self.write(progress_format.Start(str(model), self.epochs))

    def end_run(self, model: Path, stopped: str, message: str) -> None:
        self.write(progress_format.Done(str(model), stopped, message))

    def begin_epoch(self, epoch: int, batches: int) -> None:
        self.epoch, self.total, self.done = epoch, batches, 0

    def advance(self, train_nll: float) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self._last_write >= self.min_interval or self.done == self.total:
            self._last_write = now
            self.write(
                progress_format.Batch(self.epoch, self.epochs, self.done, self.total, train_nll)
            )

    def end_epoch(self, record: EpochRecord, best: bool) -> None:
        self.write(
            progress_format.Epoch(
                epoch=record.epoch,
                epochs=self.epochs,
                train_nll=record.train_nll,
                val_nll=record.val_nll,
                best=best,
                seconds=record.seconds,
                learning_rate=record.learning_rate,
            )
        )

    def note(self, text: str) -> None:
        self.write(progress_format.Note(text))

    def close(self) -> None:
        self.file.close()


class Reporters(Reporter):
    """Tells every one of several reporters."""

    def __init__(self, *reporters: Reporter) -> None:
        self.reporters = reporters

    def begin_run(self, model: Path) -> None:
        for r in self.reporters:
            r.begin_run(model)

    def end_run(self, model: Path, stopped: str, message: str) -> None:
        for r in self.reporters:
            r.end_run(model, stopped, message)

    def begin_epoch(self, epoch: int, batches: int) -> None:
        for r in self.reporters:
            r.begin_epoch(epoch, batches)

    def advance(self, train_nll: float) -> None:
        for r in self.reporters:
            r.advance(train_nll)

    def end_epoch(self, record: EpochRecord, best: bool) -> None:
        for r in self.reporters:
            r.end_epoch(record, best)

    def note(self, text: str) -> None:
        for r in self.reporters:
            r.note(text)


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
