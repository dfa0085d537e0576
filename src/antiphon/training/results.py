"""What a training run leaves: its name, the model file with how it was trained, and a
picture of its loss curves."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from antiphon.data import plot as plotting
from antiphon.data.dataset import Dataset
from antiphon.model import files
from antiphon.training.train import Run


def run_name(dimension: int, size: str, dataset_name: str, when: datetime | None = None) -> str:
    """A name that tells runs apart: what, on which data, when."""
    when = when or datetime.now()
    return f"mdrnn-dim{dimension}-{size}-{dataset_name}-{when:%Y-%m-%dT%H-%M-%S}"


def unused_path(directory: Path, stem: str, suffix: str) -> Path:
    path, n = directory / f"{stem}{suffix}", 1
    while path.exists():
        n += 1
        path = directory / f"{stem}-{n}{suffix}"
    return path


def metadata(run: Run, dataset_name: str, dataset: Dataset) -> dict[str, Any]:
    s = run.settings
    summary = dataset.summary()
    return {
        "trained_on": f"{dataset_name}: {summary.performances} performances, "
        f"{summary.events:,} events, {summary.seconds / 60:.0f} min",
        "validation_nll": round(run.best_val_nll, 4),
        "training": {
            "dataset": {"file": dataset_name, **summary.to_dict()},
            "split": run.split,
            "epochs": len(run.history),
            "best_epoch": run.best_epoch,
            "best_val_nll_scaled": run.best_val_nll,
            "best_val_nll_unscaled": run.best_val_nll_unscaled,
            "loss_units": "NLL per event; scaled: of the x10 events as IMPSY reports; "
            "unscaled = scaled - D*ln(10)",
            "seconds": round(run.seconds, 1),
            "stopped": run.stopped,
            "settings": dataclasses.asdict(s),
            "history": [
                [r.epoch, round(r.train_nll, 4), round(r.val_nll, 4), round(r.seconds, 1)]
                for r in run.history
            ],
            "torch": torch.__version__,
        },
    }


def save_model(run: Run, path: Path, dataset_name: str, dataset: Dataset) -> Path:
    """Write the best weights as a model file (atomically, never overwriting one)."""
    return files.save(path, files.ModelFile(run.best_weights, metadata(run, dataset_name, dataset)))


def save_loss_plot(run: Run, path: Path) -> Path | None:
    """A PNG of the loss curves (atomically), or None without matplotlib."""
    try:
        return plotting.loss_curves(
            path,
            [(r.epoch, r.train_nll, r.val_nll) for r in run.history],
            run.best_epoch,
            f"{run.architecture.describe()}\nbest validation NLL {run.best_val_nll:.3f} "
            f"({run.best_val_nll_unscaled:.3f} unscaled); {run.stopped}",
        )
    except plotting.PlotUnavailable:
        return None
