"""The training loop: epochs of windows, validation, early stopping, checkpoints.

Read top to bottom: ``Settings`` says how to train, ``Trainer`` owns the network,
optimiser and random streams and runs one epoch at a time, and ``fit`` decides when to
stop. ``training/results.py`` saves what a run found.

What makes it quicker than IMPSY on the same data (see docs/benchmarks.md), without
a smaller model: windows at a stride of 50 instead of 1, so a pass computes each event
once instead of fifty times; small batches (16) at Adam 2e-3, so those passes give
many optimiser steps; and evaluating and keeping a moving average of the weights,
which smooths out the noise of those steps (the learning rate also halves when
validation stalls). The average's decay is min(0.998, (1 + t) / (10 + t)) at step t,
so early on it averages over the recent tenth of training. ``IMPSY_SETTINGS`` train
exactly as IMPSY does, for comparisons.

Losses are negative log-likelihoods per event of the x10-scaled targets, as IMPSY
reports them; subtract D*ln(10) for the unscaled value.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import math
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from antiphon import __version__
from antiphon.data.dataset import Dataset
from antiphon.errors import AntiphonError
from antiphon.model.mdrnn import Weights
from antiphon.model.presets import SCALE_FACTOR, Architecture
from antiphon.training import windows
from antiphon.training.net import MDRNNNet, from_weights, mdn_nll, to_weights

CHECKPOINT_SUFFIX = ".checkpoint.pt"


@dataclass
class Settings:
    """How to train. The defaults are antiphon's; ``IMPSY_SETTINGS`` are IMPSY's."""

    size: str = "s"
    batch_size: int = 16
    learning_rate: float = 2e-3
    stride: int = windows.WINDOW  # between window starts; IMPSY uses 1
    split: windows.SplitMethod = "performances"
    epochs: int = 100
    early_stopping: bool = True
    patience: int = 10  # epochs without improvement before stopping
    lr_patience: int | None = 3  # halve the learning rate after this many; None: never
    epoch_windows: int = 8192  # an epoch holds at least this many windows (small datasets)
    clip: float | None = 10.0  # gradient norm limit
    average: float | None = 0.998  # decay of the weight average that is evaluated and kept
    seed: int | None = None
    device: str = "cpu"
    threads: int | None = None  # torch CPU threads; None: every core (see training/__init__)

    def describe(self) -> str:
        lr = f"lr {self.learning_rate:g}" + (
            f", halved after {self.lr_patience} epochs without improvement"
            if self.lr_patience
            else ""
        )
        average = f", weights averaged (decay {self.average:g})" if self.average else ""
        return f"size {self.size}, batch {self.batch_size}, stride {self.stride}, {lr}{average}"


IMPSY_SETTINGS = {
    "batch_size": 64,
    "learning_rate": 1e-3,
    "stride": 1,
    "split": "impsy",
    "lr_patience": None,
    "epoch_windows": 0,
    "clip": None,
    "average": None,
}
"""What IMPSY's ``train`` does: every window, batch 64, constant Adam 1e-3, its split."""

RESUMABLE = ("epochs", "patience", "early_stopping", "device", "threads")
"""The settings a resumed run may change: they decide how long and where it trains,
not the maths of a step, so the run continues exactly as it would have."""


@dataclass
class EpochRecord:
    epoch: int
    train_nll: float  # mean over the epoch's batches
    val_nll: float
    seconds: float  # training time since the start of the run, at the end of this epoch
    learning_rate: float
    windows: int


@dataclass
class Run:
    """A finished (or stopped) training run: the best weights and how they were found."""

    settings: Settings
    architecture: Architecture
    split: str
    history: list[EpochRecord]
    best_epoch: int
    best_val_nll: float
    best_weights: Weights
    stopped: str  # why training ended
    seconds: float

    @property
    def best_val_nll_unscaled(self) -> float:
        return self.best_val_nll - self.architecture.dimension * math.log(SCALE_FACTOR)


class TrainingError(AntiphonError):
    """Training could not go on; ``run`` holds the best model so far, if any."""

    def __init__(self, message: str, run: Run | None = None) -> None:
        super().__init__(message)
        self.run = run


class Reporter:
    """Hears about progress; the command line shows it as a progress bar."""

    def begin_run(self, model: Path) -> None:
        """Training begins (or resumes); its model will be saved as ``model``."""

    def end_run(self, model: Path, stopped: str, message: str) -> None:
        """Training ended and saved ``model``."""

    def begin_epoch(self, epoch: int, batches: int) -> None: ...

    def advance(self, train_nll: float) -> None: ...

    def end_epoch(self, record: EpochRecord, best: bool) -> None: ...

    def note(self, text: str) -> None: ...


def available_devices() -> list[str]:
    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        found.append("mps")
    return found


def fingerprint(dataset: Dataset) -> str:
    """Identifies a dataset's content, so a checkpoint resumes on the same data."""
    digest = hashlib.sha256(dataset.events.tobytes())
    digest.update(dataset.offsets.tobytes())
    return digest.hexdigest()[:16]


class Trainer:
    """The network, its optimiser and every random stream of one run."""

    def __init__(self, dataset: Dataset, settings: Settings) -> None:
        if settings.seed is None:
            settings = dataclasses.replace(
                settings, seed=int(np.random.SeedSequence().entropy % 2**31)
            )
        if settings.device not in available_devices():
            raise AntiphonError(
                f"device {settings.device!r} is not available here; available: "
                f"{', '.join(available_devices())}"
            )
        self.settings = settings
        self.dataset = dataset
        self.device = torch.device(settings.device)
        torch.set_num_threads(settings.threads or os.cpu_count() or 1)
        torch.manual_seed(settings.seed)
        self.rng = np.random.default_rng(settings.seed)
        self.architecture = Architecture.from_size(dataset.dimension, settings.size)
        self.split = windows.split(dataset, settings.split)
        self.validation = torch.from_numpy(self.split.validation).to(self.device)
        # Keras' initialisation (as IMPSY's): Glorot kernels, orthogonal recurrences,
        # forget-gate bias 1.
        self.net = from_weights(Weights.random(self.architecture, settings.seed)).to(self.device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=settings.learning_rate)
        # The weights evaluated and kept: an exponential moving average of the trained
        # ones when ``average`` is set (it smooths out the optimiser's last steps).
        self.averaged = copy.deepcopy(self.net) if settings.average else self.net
        self.steps = 0
        self.epoch = 0
        self.seconds = 0.0  # training time so far, over every session of this run
        self.history: list[EpochRecord] = []
        self.best_val = math.inf
        self.best_epoch = 0
        self.best_state = copy.deepcopy(self.averaged.state_dict())
        self.stalled = 0  # epochs since the last improvement
        self.context: dict[str, Any] = {}  # the caller's notes, kept in checkpoints

    # -- one epoch -----------------------------------------------------------------------
    def train_epoch(self, reporter: Reporter, deadline: float | None = None) -> tuple[float, int]:
        """Train one epoch (or until ``deadline``); mean training NLL and windows used."""
        s = self.settings
        batches = windows.plan_epoch(
            self.split.train,
            stride=s.stride,
            batch_size=s.batch_size,
            min_windows=s.epoch_windows,
            rng=self.rng,
        )
        reporter.begin_epoch(self.epoch + 1, len(batches))
        self.net.train()
        total, used = 0.0, 0
        for batch in batches:
            value = self.step(batch)
            total += value * len(batch)
            used += len(batch)
            reporter.advance(value)
            if deadline is not None and time.monotonic() > deadline:
                break
        return total / max(used, 1), used

    def step(self, batch: np.ndarray) -> float:
        """One optimiser step on a batch of windows (B, WINDOW + 1, D); its mean NLL."""
        w = torch.from_numpy(batch).to(self.device)  # (B, WINDOW + 1, D)
        mdn, _ = self.net(w[:, :-1])  # (B, WINDOW, M*(2D+1))
        loss = mdn_nll(mdn, w[:, 1:], self.architecture).mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the training loss became {loss.item()}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.settings.clip:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.settings.clip)
        self.optimizer.step()
        self._update_average()
        return loss.item()

    @torch.no_grad()
    def _update_average(self) -> None:
        self.steps += 1
        if self.averaged is self.net:
            return
        decay = min(self.settings.average or 0.0, (1 + self.steps) / (10 + self.steps))
        for mean, value in zip(self.averaged.parameters(), self.net.parameters(), strict=True):
            mean.lerp_(value, 1.0 - decay)

    @torch.no_grad()
    def evaluate(self) -> float:
        """Mean NLL per event over every validation window, each from a zero state."""
        self.averaged.eval()
        total = 0.0
        for i in range(0, len(self.validation), 1024):
            w = self.validation[i : i + 1024]
            mdn, _ = self.averaged(w[:, :-1])
            total += mdn_nll(mdn, w[:, 1:], self.architecture).double().sum().item()
        return total / (len(self.validation) * windows.WINDOW)

    @property
    def learning_rate(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def end_epoch(self, train_nll: float, val_nll: float, used: int, seconds: float) -> bool:
        """Record an epoch; keep its weights if they are the best. True if they were."""
        self.epoch += 1
        self.seconds = seconds
        self.history.append(
            EpochRecord(self.epoch, train_nll, val_nll, seconds, self.learning_rate, used)
        )
        if val_nll < self.best_val:
            self.best_val, self.best_epoch, self.stalled = val_nll, self.epoch, 0
            self.best_state = copy.deepcopy(self.averaged.state_dict())
            return True
        self.stalled += 1
        lr_patience = self.settings.lr_patience
        if lr_patience and self.stalled % lr_patience == 0:
            for group in self.optimizer.param_groups:
                group["lr"] *= 0.5
        return False

    def run(self, stopped: str) -> Run:
        """The run so far, with the best weights."""
        best = MDRNNNet(self.architecture)
        best.load_state_dict(self.best_state)
        return Run(
            settings=self.settings,
            architecture=self.architecture,
            split=self.split.description,
            history=list(self.history),
            best_epoch=self.best_epoch,
            best_val_nll=self.best_val,
            best_weights=to_weights(best.cpu()),
            stopped=stopped,
            seconds=self.seconds,
        )

    # -- checkpoints ---------------------------------------------------------------------
    def save_checkpoint(self, path: Path) -> None:
        """Everything needed to continue exactly where this epoch ended (atomic)."""
        state = {
            "format": "antiphon-checkpoint",
            "version": __version__,
            "settings": dataclasses.asdict(self.settings),
            "dataset": fingerprint(self.dataset),
            "epoch": self.epoch,
            "seconds": self.seconds,
            "history": [dataclasses.asdict(r) for r in self.history],
            "best_val": self.best_val,
            "best_epoch": self.best_epoch,
            "stalled": self.stalled,
            "net": self.net.state_dict(),
            "averaged": self.averaged.state_dict(),
            "steps": self.steps,
            "best_state": self.best_state,
            "optimizer": self.optimizer.state_dict(),
            "numpy_rng": json.dumps(self.rng.bit_generator.state),
            "torch_rng": torch.get_rng_state(),
            "context": json.dumps(self.context),
        }
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            torch.save(state, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @staticmethod
    def read_checkpoint(path: Path) -> dict[str, Any]:
        """A checkpoint's contents (loaded without running code from the file)."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a bad file
            raise AntiphonError(f"{path} is not a readable checkpoint ({exc})") from None
        if not isinstance(state, dict) or state.get("format") != "antiphon-checkpoint":
            raise AntiphonError(f"{path} is not an antiphon training checkpoint")
        state["context"] = json.loads(state["context"])
        return state

    @classmethod
    def resume(
        cls, state: dict[str, Any], dataset: Dataset, changes: Mapping[str, Any] | None = None
    ) -> Trainer:
        """A trainer continuing a checkpointed run on the same dataset; ``changes``
        replace settings named in ``RESUMABLE``."""
        changes = changes or {}
        if state["dataset"] != fingerprint(dataset):
            raise AntiphonError(
                "this checkpoint was trained on different data than this dataset; resume "
                "with the dataset it started on"
            )
        if set(changes) - set(RESUMABLE):
            raise AntiphonError(
                f"a resumed run keeps its settings; only {', '.join(RESUMABLE)} may change"
            )
        settings = dataclasses.replace(Settings(**state["settings"]), **changes)
        trainer = cls(dataset, settings)
        trainer.net.load_state_dict(state["net"])
        trainer.averaged.load_state_dict(state["averaged"])
        trainer.steps = state["steps"]
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.best_state = state["best_state"]
        trainer.best_val = state["best_val"]
        trainer.best_epoch = state["best_epoch"]
        trainer.stalled = state["stalled"]
        trainer.epoch = state["epoch"]
        trainer.seconds = state["seconds"]
        trainer.history = [EpochRecord(**r) for r in state["history"]]
        trainer.rng.bit_generator.state = json.loads(state["numpy_rng"])
        torch.set_rng_state(state["torch_rng"])
        trainer.context = state["context"]
        return trainer


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""Ctrl-C, and a service manager or a shutting-down computer asking a run to end."""


@contextlib.contextmanager
def _sigterm_is_ctrl_c() -> Iterator[None]:
    """SIGTERM stops a run as Ctrl-C does, keeping the best model so far: a web UI, a
    service manager or a computer shutting down asks with SIGTERM."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _ctrl_c_waits() -> Iterator[None]:
    """Hold a Ctrl-C (or SIGTERM) until the block ends, so that an epoch's record, its
    best weights and its checkpoint are all written or none are: a run resumed from the
    checkpoint then continues from the same epoch the saved model reports."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {
        signum: signal.signal(signum, lambda signum, frame: held.append(signum))
        for signum in STOP_SIGNALS
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if held:
        handler = previous[held[0]]
        if callable(handler):
            handler(held[0], None)  # Python's own handler raises KeyboardInterrupt here
        else:
            signal.raise_signal(held[0])  # as it would have acted (SIG_DFL or SIG_IGN)


def fit(
    trainer: Trainer,
    *,
    max_minutes: float | None = None,
    reporter: Reporter | None = None,
    checkpoint: Path | None = None,
) -> Run:
    """Train until early stopping, the epoch limit, ``max_minutes``, Ctrl-C or SIGTERM.

    Returns the run with its best weights. Ctrl-C stops after the current batch and
    still returns the best so far. A loss that becomes NaN or infinite raises
    TrainingError carrying the best run so far.
    """
    reporter = reporter or Reporter()
    s = trainer.settings
    zero = time.monotonic() - trainer.seconds  # the run's start, over all its sessions
    deadline = time.monotonic() + max_minutes * 60 if max_minutes else None
    stopped = f"reached {s.epochs} epochs" if trainer.epoch >= s.epochs else None
    try:
        with _sigterm_is_ctrl_c():
            while stopped is None:
                train_nll, used = trainer.train_epoch(reporter, deadline)
                val_nll = trainer.evaluate()
                if not math.isfinite(val_nll):
                    raise FloatingPointError(f"the validation loss became {val_nll}")
                with _ctrl_c_waits():
                    improved = trainer.end_epoch(train_nll, val_nll, used, time.monotonic() - zero)
                    reporter.end_epoch(trainer.history[-1], improved)
                    if checkpoint is not None:
                        trainer.save_checkpoint(checkpoint)
                stopped = _reason_to_stop(trainer, deadline, max_minutes)
    except KeyboardInterrupt:
        stopped = "interrupted"
        reporter.note("interrupted: keeping the best model so far")
    except FloatingPointError as exc:
        run = trainer.run("diverged") if trainer.best_epoch else None
        raise TrainingError(
            f"training diverged in epoch {trainer.epoch + 1}: {exc}. Try a lower learning "
            "rate (--lr) or check the dataset for extreme values.",
            run,
        ) from None
    if not trainer.best_epoch:
        raise TrainingError("training stopped before the first epoch ended: no model to save")
    return trainer.run(stopped)


def _reason_to_stop(
    trainer: Trainer, deadline: float | None, max_minutes: float | None
) -> str | None:
    """Why training ends after this epoch, or None to go on."""
    s = trainer.settings
    if s.early_stopping and trainer.stalled >= s.patience:
        return f"early stopping: no improvement for {s.patience} epochs"
    if deadline is not None and time.monotonic() >= deadline:
        return f"time limit of {max_minutes:g} minutes"
    if trainer.epoch >= s.epochs:
        return f"reached {s.epochs} epochs"
    return None
