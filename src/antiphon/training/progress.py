"""Training progress on a terminal: a bar per epoch, then one line with its losses."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from antiphon.training.train import EpochRecord, Reporter


class RichReporter(Reporter):
    def __init__(self, epochs: int, console: Console | None = None) -> None:
        self.epochs = epochs
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
        minutes, seconds = divmod(int(record.seconds), 60)
        self.console.print(
            f"epoch {record.epoch:>3}  train {record.train_nll:8.3f}  "
            f"validation {record.val_nll:8.3f}{' best' if best else '     '}  "
            f"lr {record.learning_rate:.1e}  {minutes:d}:{seconds:02d}",
            highlight=False,
        )

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False)
