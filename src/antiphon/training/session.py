"""`antiphon train` from start to end: settings, names, progress, saving, resuming.

A run writes ``models/<name>.checkpoint.pt`` after every epoch. It is removed when the
run ends on its own (early stopping, the epoch limit); after Ctrl-C or ``--max-minutes``
it stays, and ``antiphon train --resume <checkpoint>`` continues exactly where the
last epoch ended. Either way the best weights so far are saved as a model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from antiphon.data import dataset as datasets
from antiphon.errors import AntiphonError, needs_extra
from antiphon.model import files
from antiphon.training.progress import JsonLinesReporter, Reporters, RichReporter
from antiphon.training.train import (
    CHECKPOINT_SUFFIX,
    IMPSY_SETTINGS,
    Run,
    Settings,
    Trainer,
    TrainingError,
    fit,
    run_name,
    save_model,
    unused_path,
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

RESUMABLE_CHANGES = {"numepochs", "patience", "earlystopping", "device", "threads"}


def settings_from_options(options: dict[str, Any], given: set[str]) -> Settings:
    """Settings from the options the user gave; the rest are antiphon's defaults, or
    IMPSY's with ``--like-impsy``."""
    chosen: dict[str, Any] = dict(IMPSY_SETTINGS) if options.get("like_impsy") else {}
    for option, name in OPTION_FIELDS.items():
        if option in given:
            chosen[name] = options[option]
    return Settings(**chosen)


def train_from_options(
    options: dict[str, Any],
    given: set[str],
    find_dataset: Callable[[Path, int | None], Path],
    echo: Callable[[str], None] = print,
) -> Path:
    """Run `antiphon train`; returns the model file written."""
    resume: Path | None = options.get("resume")
    if resume is not None:
        refused = given & (set(OPTION_FIELDS) - RESUMABLE_CHANGES)
        if refused:
            raise AntiphonError(
                f"a resumed run keeps its settings; --{', --'.join(sorted(refused))} cannot "
                "change (only --numepochs, --patience, --earlystopping, --device, --threads)"
            )
        state = Trainer.read_checkpoint(resume)
        dataset_path = Path(state["context"]["dataset_path"])
        data = datasets.load(dataset_path)
        changes = {OPTION_FIELDS[o]: options[o] for o in given & RESUMABLE_CHANGES}
        trainer = Trainer.resume(state, data, **changes)
        model_path = Path(state["context"]["model_path"])
        checkpoint = resume
        echo(f"resuming {model_path.stem} after epoch {trainer.epoch}")
    else:
        dataset_path = find_dataset(options["source"], options.get("dimension"))
        data = datasets.load(dataset_path)
        trainer = Trainer(data, settings_from_options(options, given))
        destination: Path = options["destination"]
        destination.mkdir(parents=True, exist_ok=True)
        name = run_name(data.dimension, trainer.settings.size, dataset_path.stem)
        model_path = unused_path(destination, name, files.SUFFIX)
        checkpoint = model_path.with_name(model_path.stem + CHECKPOINT_SUFFIX)
        trainer.context = {
            "dataset_path": str(dataset_path.resolve()),
            "model_path": str(model_path.resolve()),
        }
    _describe(trainer, dataset_path, data, checkpoint, echo)

    progress_file: Path | None = options.get("progress_file")
    listener = JsonLinesReporter(progress_file, trainer.settings.epochs) if progress_file else None
    if listener:
        listener.write("start", model=str(model_path.resolve()), epochs=trainer.settings.epochs)
    plot = options.get("plot", True)
    try:
        with RichReporter(trainer.settings.epochs, options.get("max_minutes")) as terminal:
            reporter = Reporters(terminal, listener) if listener else terminal
            try:
                run = fit(
                    trainer,
                    max_minutes=options.get("max_minutes"),
                    reporter=reporter,
                    checkpoint=checkpoint,
                )
            except TrainingError as exc:
                if exc.run is not None:
                    saved = _save(exc.run, model_path, dataset_path, data, plot, echo)
                    if listener:
                        listener.write(
                            "done", model=str(saved.resolve()), stopped=str(exc), message=str(exc)
                        )
                raise
        path = _save(run, model_path, dataset_path, data, plot, echo)
        if listener:
            listener.write(
                "done",
                model=str(path.resolve()),
                stopped=run.stopped,
                message=f"{run.stopped}; best validation NLL {run.best_val_nll:.3f} "
                f"at epoch {run.best_epoch}",
            )
    finally:
        if listener:
            listener.close()
    if run.stopped in ("interrupted",) or run.stopped.startswith("time limit"):
        echo(f"to continue this run: antiphon train --resume {checkpoint}")
    else:
        checkpoint.unlink(missing_ok=True)
    return path


def _describe(
    trainer: Trainer,
    dataset_path: Path,
    data: datasets.Dataset,
    checkpoint: Path,
    echo: Callable[[str], None],
) -> None:
    s = trainer.settings
    summary = data.summary()
    arch = trainer.architecture
    echo(
        f"dataset     {dataset_path}: {summary.performances} performances, "
        f"{summary.events:,} events"
    )
    echo(f"validation  {trainer.split.description}")
    echo(f"model       {arch.describe()} ({arch.parameter_count:,} parameters)")
    echo(
        f"training    {s.describe()}; seed {s.seed}; {s.device}"
        + (f" with {_threads()} threads" if s.device == "cpu" else "")
    )
    echo(f"checkpoint  {checkpoint}")


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _save(
    run: Run,
    model_path: Path,
    dataset_path: Path,
    data: datasets.Dataset,
    plot: bool,
    echo: Callable[[str], None],
) -> Path:
    if model_path.exists():  # an earlier session of this run saved here
        model_path = unused_path(model_path.parent, model_path.stem, files.SUFFIX)
    path, png = save_model(run, model_path, dataset_path.name, data, plot=plot)
    minutes, seconds = divmod(round(run.seconds), 60)
    echo(f"stopped     {run.stopped}")
    echo(
        f"best        validation NLL {run.best_val_nll:.3f} per event (x10-scaled, as IMPSY "
        f"reports; {run.best_val_nll_unscaled:.3f} unscaled) at epoch {run.best_epoch} of "
        f"{len(run.history)}, after {minutes} min {seconds:02d} s of training"
    )
    echo(f"wrote       {path}")
    if png is not None:
        echo(f"wrote       {png}")
    elif plot:
        echo(f"(no loss plot: {needs_extra('it needs matplotlib', 'plot')})")
    return path
