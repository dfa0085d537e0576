"""How performances become training windows: the split and the batches.

The network learns from windows of 51 consecutive events: it reads the first 50 from
a zero state and predicts the next event at every step (inputs ``w[:-1]``, targets
``w[1:]``, everything x10-scaled), the same objective as IMPSY's.

IMPSY cuts a window at *every* event (a stride of 1), so each event is computed 50
times per epoch, in nearly identical windows. antiphon's default stride is 50: each
event is a target once per pass, and each pass starts its windows at a new random
phase, so over passes the windows start at every offset IMPSY's do. A pass costs a
fiftieth of IMPSY's epoch; the optimiser sees the same kind of windows.

Validation is held out by whole performances by default (every 10th one), so the
validation loss says how well the model predicts playing it has never seen. The
``impsy`` split reproduces IMPSY's: the last 10 % of the stride-1 windows, unshuffled,
which share performances (and 50 events at the boundary) with the training windows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from antiphon.data.dataset import MIN_TRAINING_EVENTS, Dataset
from antiphon.errors import AntiphonError
from antiphon.model.presets import SCALE_FACTOR

WINDOW = 50
"""Time steps per training window (IMPSY's SEQ_LEN)."""

VALIDATION_FRACTION = 0.1

SplitMethod = Literal["performances", "impsy"]


@dataclass
class Split:
    train: list[np.ndarray]  # x10-scaled event runs to cut training windows from
    validation: np.ndarray  # (W, WINDOW + 1, D) x10-scaled windows
    description: str

    @property
    def train_events(self) -> int:
        return sum(len(run) for run in self.train)


def _trainable(dataset: Dataset) -> list[np.ndarray]:
    runs = [
        p.astype(np.float32) * np.float32(SCALE_FACTOR)
        for p in dataset.performances
        if len(p) >= MIN_TRAINING_EVENTS
    ]
    if not runs:
        raise AntiphonError(
            f"no performance in the dataset has {MIN_TRAINING_EVENTS} events or more; "
            "record longer performances to train on"
        )
    return runs


def all_windows(runs: list[np.ndarray], stride: int, phases: list[int] | None = None) -> np.ndarray:
    """Every window of WINDOW + 1 events at ``stride`` (starting at each run's phase)."""
    out = []
    for i, run in enumerate(runs):
        starts = np.arange(phases[i] if phases else 0, len(run) - WINDOW, stride)
        out.append(run[starts[:, None] + np.arange(WINDOW + 1)])  # (n, WINDOW + 1, D)
    dimension = runs[0].shape[1]
    return np.concatenate(out) if out else np.zeros((0, WINDOW + 1, dimension), np.float32)


def split(dataset: Dataset, method: SplitMethod) -> Split:
    runs = _trainable(dataset)
    return split_like_impsy(runs) if method == "impsy" else split_by_performance(runs)


def split_by_performance(runs: list[np.ndarray]) -> Split:
    """Hold out every 10th performance (the 10th, 20th, ...). With fewer than ten,
    hold out the one nearest to 10 % of the events; with one, its last 10 %."""
    if len(runs) == 1:
        run = runs[0]
        cut = max(WINDOW + 1, len(run) - max(WINDOW + 1, int(len(run) * VALIDATION_FRACTION)))
        if cut >= len(run) - WINDOW:
            raise AntiphonError(
                f"one performance of {len(run)} events is too short to hold out validation "
                f"data; record at least {3 * (WINDOW + 1)} events"
            )
        return Split(
            [run[:cut]],
            all_windows([run[cut:]], WINDOW),
            "one performance: its last 10 % held out for validation",
        )
    if len(runs) >= 10:
        held = list(range(9, len(runs), 10))
    else:
        total = sum(len(r) for r in runs)
        held = [
            min(range(len(runs)), key=lambda i: abs(len(runs[i]) - VALIDATION_FRACTION * total))
        ]
    train = [r for i, r in enumerate(runs) if i not in held]
    validation = all_windows([runs[i] for i in held], WINDOW)
    events = sum(len(runs[i]) for i in held)
    return Split(
        train,
        validation,
        f"{len(held)} of {len(runs)} performances held out for validation ({events:,} events)",
    )


def split_like_impsy(runs: list[np.ndarray]) -> Split:
    """IMPSY's split: of all stride-1 windows in order, the last 10 % validate."""
    counts = [len(r) - WINDOW for r in runs]  # stride-1 windows per run
    total = sum(counts)
    n_train = int(total * (1 - VALIDATION_FRACTION))
    train, validation, seen = [], [], 0
    for run, count in zip(runs, counts, strict=True):
        keep = min(max(n_train - seen, 0), count)  # this run's training windows
        if keep:
            train.append(run[: keep + WINDOW])
        if keep < count:
            validation.append(run[keep:])
        seen += count
    return Split(
        train,
        all_windows(validation, 1),
        f"IMPSY's split: the last 10 % of the {total:,} windows held out for validation",
    )


@dataclass
class Epoch:
    """One epoch's windows in a shuffled order, gathered a batch at a time."""

    events: np.ndarray  # every training run end to end
    starts: np.ndarray  # shuffled window starts into ``events``
    batch_size: int

    def __len__(self) -> int:
        return -(-len(self.starts) // self.batch_size)

    def __iter__(self) -> Iterator[np.ndarray]:
        """(B, WINDOW + 1, D) batches."""
        steps = np.arange(WINDOW + 1)
        for i in range(0, len(self.starts), self.batch_size):
            yield self.events[self.starts[i : i + self.batch_size, None] + steps]


def plan_epoch(
    runs: list[np.ndarray],
    *,
    stride: int,
    batch_size: int,
    min_windows: int,
    rng: np.random.Generator,
) -> Epoch:
    """The windows of one epoch: one pass over the training events, or as many passes
    as it takes to hold ``min_windows`` windows, so that small datasets still make
    epochs worth evaluating. Every pass draws a new phase for each run."""
    events = np.concatenate(runs)
    offsets = np.cumsum([0] + [len(r) for r in runs[:-1]])
    starts: list[np.ndarray] = []
    count = 0
    while count == 0 or count < min_windows:
        for offset, run in zip(offsets, runs, strict=True):
            phase = int(rng.integers(stride)) if stride > 1 else 0
            run_starts = offset + np.arange(phase, len(run) - WINDOW, stride)
            starts.append(run_starts)
            count += len(run_starts)
        if count == 0:
            raise AntiphonError("the training data holds no complete window")
    return Epoch(events, np.concatenate(starts)[rng.permutation(count)], batch_size)
