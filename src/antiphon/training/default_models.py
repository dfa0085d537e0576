"""The bundled default models, rebuilt by ``make models``.

A fresh install plays these: D=9 (8 controls) for ``antiphon run`` and D=4 (3
controls) for the workshop's Pure Data and micro:bit examples, both size s. Each is
trained on performances of the procedural performer with fixed seeds, a fixed number
of CPU threads and a fixed epoch budget, so rebuilding on the same PyTorch version
gives the same files.

Both learn from the performer's ``sensor`` style, where every event carries every
control. Models learnt from ``knobs`` logs (one control per event, 7-bit steps) play
timidly at the usual low sigmatemp: a small error in copying seven unchanged controls
accumulates into a drift larger than the one-step moves, so nothing sweeps.

    python -m antiphon.training.default_models [--dimension 9] [--dimension 4]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from antiphon.data.dataset import Dataset
from antiphon.data.performer import Performer, Style
from antiphon.model.loader import BUNDLED, bundled_name
from antiphon.training.results import save_model
from antiphon.training.train import EpochRecord, Reporter, Settings, Trainer, fit


@dataclass(frozen=True)
class Recipe:
    dimension: int
    performances: int
    minutes: float  # per performance
    epochs: int
    style: Style = "sensor"
    seed: int = 2024
    threads: int = 2


RECIPES = {
    9: Recipe(dimension=9, performances=40, minutes=3, epochs=30),
    4: Recipe(dimension=4, performances=30, minutes=3, epochs=30),
}


def performer_dataset(recipe: Recipe) -> Dataset:
    performer = Performer(recipe.dimension, style=recipe.style, seed=recipe.seed)
    performances = [
        performer.performance(recipe.minutes * 60)[1:] for _ in range(recipe.performances)
    ]
    names = [f"performer {recipe.seed}/{i + 1}" for i in range(recipe.performances)]
    return Dataset.from_performances(performances, names)


def build(recipe: Recipe, directory: Path = BUNDLED) -> Path:
    """Train one default model and write it to ``directory`` (replacing the old one)."""

    class Lines(Reporter):
        def end_epoch(self, record: EpochRecord, best: bool) -> None:
            print(
                f"  D={recipe.dimension} epoch {record.epoch:>3}: train {record.train_nll:7.3f} "
                f"validation {record.val_nll:7.3f}{' best' if best else ''}",
                flush=True,
            )

    data = performer_dataset(recipe)
    settings = Settings(size="s", seed=recipe.seed, epochs=recipe.epochs, threads=recipe.threads)
    started = time.monotonic()
    run = fit(Trainer(data, settings), reporter=Lines())
    path = directory / bundled_name(recipe.dimension)
    path.unlink(missing_ok=True)
    save_model(run, path, f"procedural performer (seed {recipe.seed})", data)
    print(
        f"wrote {path}: validation NLL {run.best_val_nll:.3f} at epoch {run.best_epoch}, "
        f"{time.monotonic() - started:.0f} s"
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dimension", type=int, action="append", choices=sorted(RECIPES))
    parser.add_argument("--directory", type=Path, default=BUNDLED)
    args = parser.parse_args()
    for dimension in args.dimension or sorted(RECIPES, reverse=True):
        build(RECIPES[dimension], args.directory)


if __name__ == "__main__":
    main()
