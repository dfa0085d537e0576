"""`antiphon train` from start to end: settings, names, progress, saving, resuming.

A run writes ``models/<name>.checkpoint.pt`` after every epoch. It is removed when the
run ends on its own (early stopping, the epoch limit); after Ctrl-C, SIGTERM or
``--max-minutes`` it stays, and ``antiphon train --resume <checkpoint>`` continues
exactly where the last epoch ended. Either way the best weights so far are saved as a
model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from antiphon.data import dataset as datasets
from antiphon.errors import AntiphonError, needs_extra
from antiphon.model import files
from antiphon.training.progress import JsonLinesReporter, Reporters, RichReporter
from antiphon.training.results import run_name, save_loss_plot, save_model, unused_path
from antiphon.training.train import (
    CHECKPOINT_SUFFIX,
    IMPSY_SETTINGS,
    RESUMABLE,
    Reporter,
    Run,
    Settings,
    Trainer,
    TrainingError,
    fit,
)

OPTION_FIELDS = {
    "modelsize": "size",
    "batchsize": "batch_size",
    "lr": "learning_rate",
    "stride": "stride",
    "epoch_windows": "epoch_windows",
    "split": "split",
    "numepochs": "epochs",
    "earlystopping": "early_stopping",
    "patience": "patience",
    "seed": "seed",
    "device": "device",
    "threads": "threads",
}
"""Command-line option -> Settings field."""

FindDataset = Callable[[Path, int | None], Path]
"""(--source, --dimension) -> the dataset file to train on."""


@dataclass(frozen=True)
class Request:
    """What `antiphon train` was asked to do. ``chosen`` holds the settings the person
    gave (Settings field -> value); the rest are antiphon's defaults, or IMPSY's."""

    chosen: Mapping[str, Any] = field(default_factory=dict)
    like_impsy: bool = False
    source: Path = Path("datasets")
    dimension: int | None = None
    destination: Path = Path("models")
    resume: Path | None = None  # a checkpoint to continue
    max_minutes: float | None = None
    plot: bool = True
    progress_file: Path | None = None  # JSON lines for the web UI (see progress_format)

    @classmethod
    def from_options(cls, options: Mapping[str, Any], given: set[str]) -> Request:
        """From the command line's options; ``given`` names those not left at their
        default (only those change a setting)."""
        return cls(
            chosen={OPTION_FIELDS[o]: options[o] for o in given if o in OPTION_FIELDS},
            like_impsy=bool(options.get("like_impsy")),
            source=Path(options.get("source") or "datasets"),
            dimension=options.get("dimension"),
            destination=Path(options.get("destination") or "models"),
            resume=options.get("resume"),
            max_minutes=options.get("max_minutes"),
            plot=options.get("plot", True),
            progress_file=options.get("progress_file"),
        )

    def settings(self) -> Settings:
        """A new run's settings."""
        return Settings(**{**(IMPSY_SETTINGS if self.like_impsy else {}), **self.chosen})


@dataclass
class Plan:
    """A run about to train: its trainer, its data and where its files go."""

    trainer: Trainer
    dataset_path: Path
    data: datasets.Dataset
    model_path: Path
    checkpoint: Path


def train_from_options(
    options: dict[str, Any],
    given: set[str],
    find_dataset: FindDataset,
    echo: Callable[[str], None] = print,
) -> Path:
    """Run `antiphon train` with the command line's options; returns the model file."""
    return train(Request.from_options(options, given), find_dataset, echo)


def train(request: Request, find_dataset: FindDataset, echo: Callable[[str], None] = print) -> Path:
    """Run `antiphon train`; returns the model file written."""
    plan = resumed(request, echo) if request.resume else started(request, find_dataset)
    _describe(plan, echo)
    with _reporter(request, plan.trainer.settings.epochs) as reporter:
        reporter.begin_run(plan.model_path.resolve())
        try:
            run = fit(
                plan.trainer,
                max_minutes=request.max_minutes,
                reporter=reporter,
                checkpoint=plan.checkpoint,
            )
        except TrainingError as exc:  # diverged: keep the best before it did
            if exc.run is not None:
                saved = _save(exc.run, plan, echo)
                reporter.end_run(saved.resolve(), str(exc), str(exc))
                _plot(exc.run, saved, request.plot, echo)
            raise
        path = _save(run, plan, echo)
        reporter.end_run(
            path.resolve(),
            run.stopped,
            f"{run.stopped}; best validation NLL {run.best_val_nll:.3f} at epoch {run.best_epoch}",
        )
    # The model is saved and said so before its picture is drawn: a run stopped as
    # antiphon stops may be killed while matplotlib loads (seconds on a busy machine).
    _plot(run, path, request.plot, echo)
    if run.stopped == "interrupted" or run.stopped.startswith("time limit"):
        echo(f"to continue this run: antiphon train --resume {plan.checkpoint}")
    else:
        plan.checkpoint.unlink(missing_ok=True)
    return path


def started(request: Request, find_dataset: FindDataset) -> Plan:
    """A new run: its dataset found and loaded, its model named."""
    dataset_path = find_dataset(request.source, request.dimension)
    data = datasets.load(dataset_path)
    trainer = Trainer(data, request.settings())
    request.destination.mkdir(parents=True, exist_ok=True)
    name = run_name(data.dimension, trainer.settings.size, dataset_path.stem)
    model_path = unused_path(request.destination, name, files.SUFFIX)
    trainer.context = {
        "dataset_path": str(dataset_path.resolve()),
        "model_path": str(model_path.resolve()),
    }
    checkpoint = model_path.with_name(model_path.stem + CHECKPOINT_SUFFIX)
    return Plan(trainer, dataset_path, data, model_path, checkpoint)


def resumed(request: Request, echo: Callable[[str], None]) -> Plan:
    """A checkpointed run continuing on its own dataset, with only RESUMABLE changes."""
    assert request.resume is not None
    refused = set(request.chosen) - set(RESUMABLE)
    if refused:
        option = {field: f"--{option}" for option, field in OPTION_FIELDS.items()}
        raise AntiphonError(
            f"a resumed run keeps its settings; {', '.join(sorted(option[f] for f in refused))} "
            f"cannot change (only {', '.join(option[f] for f in RESUMABLE)})"
        )
    state = Trainer.read_checkpoint(request.resume)
    dataset_path = Path(state["context"]["dataset_path"])
    data = datasets.load(dataset_path)
    trainer = Trainer.resume(state, data, request.chosen)
    model_path = Path(state["context"]["model_path"])
    echo(f"resuming {model_path.stem} after epoch {trainer.epoch}")
    return Plan(trainer, dataset_path, data, model_path, request.resume)


@contextlib.contextmanager
def _reporter(request: Request, epochs: int) -> Iterator[Reporter]:
    """The terminal's progress bar, and the progress file when one was asked for."""
    with RichReporter(epochs, request.max_minutes) as terminal:
        if request.progress_file is None:
            yield terminal
            return
        listener = JsonLinesReporter(request.progress_file, epochs)
        try:
            yield Reporters(terminal, listener)
        finally:
            listener.close()


def _describe(plan: Plan, echo: Callable[[str], None]) -> None:
    s = plan.trainer.settings
    summary = plan.data.summary()
    arch = plan.trainer.architecture
    echo(
        f"dataset     {plan.dataset_path}: {summary.performances} performances, "
        f"{summary.events:,} events"
    )
    echo(f"validation  {plan.trainer.split.description}")
    echo(f"model       {arch.describe()} ({arch.parameter_count:,} parameters)")
    echo(
        f"training    {s.describe()}; seed {s.seed}; {s.device}"
        + (f" with {_threads()} threads" if s.device == "cpu" else "")
    )
    echo(f"checkpoint  {plan.checkpoint}")


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _save(run: Run, plan: Plan, echo: Callable[[str], None]) -> Path:
    model_path = plan.model_path
    if model_path.exists():  # an earlier session of this run saved here
        model_path = unused_path(model_path.parent, model_path.stem, files.SUFFIX)
    path = save_model(run, model_path, plan.dataset_path.name, plan.data)
    minutes, seconds = divmod(round(run.seconds), 60)
    echo(f"stopped     {run.stopped}")
    echo(
        f"best        validation NLL {run.best_val_nll:.3f} per event (x10-scaled, as IMPSY "
        f"reports; {run.best_val_nll_unscaled:.3f} unscaled) at epoch {run.best_epoch} of "
        f"{len(run.history)}, after {minutes} min {seconds:02d} s of training"
    )
    echo(f"wrote       {path}")
    return path


def _plot(run: Run, model: Path, plot: bool, echo: Callable[[str], None]) -> None:
    if not plot:
        return
    png = save_loss_plot(run, model.with_suffix(".png"))
    if png is not None:
        echo(f"wrote       {png}")
    else:
        echo(f"(no loss plot: {needs_extra('it needs matplotlib', 'plot')})")
