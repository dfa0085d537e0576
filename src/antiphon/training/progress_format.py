"""The progress file of ``antiphon train --progress-file``: one JSON object per line.

The training process writes these records (``training/progress.py``) and the web UI
reads them (``web/jobs.py``); both go through ``encode`` and ``decode`` here, so a
field renamed on one side fails the other side's tests instead of silently freezing
the progress bar. A line names its record in ``"event"`` and carries the time it was
written (``"time"``, seconds since the epoch) beside the record's own fields:

    {"event": "batch", "time": 1732871234.5, "epoch": 2, "epochs": 100, "done": 40,
     "total": 512, "train_nll": -8.31}

This module is read by the instrument's web UI, so it imports no ML framework.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from typing import Any, ClassVar, get_type_hints


@dataclass(frozen=True)
class Start:
    """Training began (or resumed); the model will be saved as ``model``."""

    name: ClassVar[str] = "start"
    model: str  # the model file's absolute path
    epochs: int  # the most epochs this run trains


@dataclass(frozen=True)
class Batch:
    """A batch was trained (written at most a few times a second)."""

    name: ClassVar[str] = "batch"
    epoch: int  # counted from 1
    epochs: int
    done: int  # batches of this epoch trained
    total: int  # batches in this epoch
    train_nll: float  # this batch's

    @property
    def fraction(self) -> float:
        """How much of the whole run is done, 0..1."""
        return (self.epoch - 1 + self.done / max(1, self.total)) / max(1, self.epochs)


@dataclass(frozen=True)
class Epoch:
    """An epoch ended and was validated."""

    name: ClassVar[str] = "epoch"
    epoch: int
    epochs: int
    train_nll: float  # mean over the epoch's batches
    val_nll: float
    best: bool  # the best validation so far: its weights are kept
    seconds: float  # training time since the run began
    learning_rate: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Note:
    """Something to tell the person (Ctrl-C was heard, ...)."""

    name: ClassVar[str] = "note"
    message: str


@dataclass(frozen=True)
class Done:
    """The run ended and saved ``model``."""

    name: ClassVar[str] = "done"
    model: str
    stopped: str  # why it ended
    message: str  # a sentence for the person


Event = Start | Batch | Epoch | Note | Done
RECORDS: dict[str, type[Event]] = {r.name: r for r in (Start, Batch, Epoch, Note, Done)}


def encode(record: Event, when: float | None = None) -> str:
    """One line (with its newline) for ``record``."""
    fields = {"event": record.name, "time": time.time() if when is None else when}
    return json.dumps(fields | dataclasses.asdict(record)) + "\n"


def decode(line: str) -> Event:
    """The record a line holds; ValueError for anything that is not one."""
    try:
        fields = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise ValueError("not a JSON object")
    record = RECORDS.get(fields.get("event"))  # type: ignore[arg-type]
    if record is None:
        raise ValueError(f"unknown progress record {fields.get('event')!r}")
    values = {}
    for name, kind in _types(record).items():
        if name not in fields:
            raise ValueError(f"a {record.name} record without {name!r}")
        values[name] = _checked(fields[name], kind, f"{record.name}.{name}")
    return record(**values)


def _types(record: type[Event]) -> dict[str, type]:
    hints = get_type_hints(record)
    return {f.name: hints[f.name] for f in dataclasses.fields(record)}


def _checked(value: Any, kind: type, where: str) -> Any:
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind in (str, bool) and isinstance(value, kind):
        return value
    raise ValueError(f"{where} should be {kind.__name__}, not {type(value).__name__}")
