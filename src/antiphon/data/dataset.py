"""Datasets: the performances a model learns from, collected from log files.

antiphon's dataset file is an ``.npz`` that loads without pickle:

- ``events``: float32 (N, D), every performance's rows ``[dt, v1, ...]`` end to end;
- ``offsets``: int64 (P+1,), performance i is ``events[offsets[i]:offsets[i+1]]``;
- ``info``: a JSON string (format, version, the logs it came from, rows skipped).

IMPSY's ``perfs`` files load as well (through a restricted unpickler, see
``impsy_npz``) and can be written for IMPSY users with ``format="impsy"``. Both use
IMPSY's name, ``training-dataset-{D}d.npz``; ``load`` tells them apart by content.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from antiphon.data import impsy_npz, npz
from antiphon.data.logs import (
    INTERFACE,
    MADE,
    MAX_DIMENSION,
    MIN_DIMENSION,
    dimension_from_name,
    origin_from_name,
    read_log,
    recording_order,
)
from antiphon.errors import AntiphonError
from antiphon.storage import write_atomically

FORMAT = "antiphon-dataset"
FORMAT_VERSION = 1
MIN_TRAINING_EVENTS = 52
"""Performances shorter than this hold no full training window and are not trained on
(IMPSY's rule: a window is 51 events)."""

Format = Literal["antiphon", "impsy"]

MADE_LOGS = "synthetic or generated logs"
MADE_HINT = "use them too with `antiphon dataset --synthetic` (or the Datasets page's checkbox)"


def default_name(dimension: int) -> str:
    return f"training-dataset-{dimension}d.npz"


@dataclass
class Dataset:
    """Performances of one dimension, stored end to end."""

    events: np.ndarray  # (N, D) float32, rows [dt, v1, ...]
    offsets: np.ndarray  # (P+1,) int64
    names: list[str] = field(default_factory=list)  # where each performance came from
    skipped: dict[str, int] = field(default_factory=dict)  # log rows skipped, by reason

    @classmethod
    def from_performances(
        cls,
        performances: list[np.ndarray],
        names: list[str] | None = None,
        skipped: dict[str, int] | None = None,
    ) -> Dataset:
        if not performances:
            raise AntiphonError("a dataset needs at least one performance")
        dimension = performances[0].shape[1]
        if any(p.ndim != 2 or p.shape[1] != dimension for p in performances):
            raise AntiphonError("every performance of a dataset must have the same dimension")
        lengths = [len(p) for p in performances]
        events = np.concatenate(performances).astype(np.float32, copy=False)
        _check_finite(events)
        return cls(
            events=events,
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            names=list(names) if names else [f"performance {i + 1}" for i in range(len(lengths))],
            skipped=dict(skipped or {}),
        )

    @property
    def dimension(self) -> int:
        return int(self.events.shape[1])

    @property
    def performances(self) -> list[np.ndarray]:
        """Views of each performance's rows."""
        return [self.events[a:b] for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)]

    def summary(self) -> Summary:
        dt = self.events[:, 0].astype(np.float64)
        lengths = np.diff(self.offsets)
        quantiles = (5, 25, 50, 75, 95, 99)
        return Summary(
            dimension=self.dimension,
            performances=len(lengths),
            trainable=int((lengths >= MIN_TRAINING_EVENTS).sum()),
            events=len(self.events),
            seconds=float(dt.sum()),
            dt_percentiles=(
                {
                    f"p{q}": float(v)
                    for q, v in zip(quantiles, np.percentile(dt, quantiles), strict=True)
                }
                if len(dt)
                else {}
            ),
            simultaneous=float((dt < 0.001).mean()) if len(dt) else 0.0,
            skipped_rows=dict(self.skipped),
        )


@dataclass
class Summary:
    """What a dataset holds, as printed by ``antiphon dataset`` and kept in model files."""

    dimension: int
    performances: int
    trainable: int  # performances long enough to train on
    events: int
    seconds: float  # total time: the sum of dt
    dt_percentiles: dict[str, float]  # seconds
    simultaneous: float  # fraction of dt under 1 ms
    skipped_rows: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "performances": self.performances,
            "trainable_performances": self.trainable,
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "dt_percentiles_ms": {k: round(v * 1e3, 3) for k, v in self.dt_percentiles.items()},
            "simultaneous_fraction": round(self.simultaneous, 4),
            "skipped_rows": self.skipped_rows,
        }

    def lines(self) -> list[str]:
        short = self.performances - self.trainable
        dts = ", ".join(f"{k} {_ms(v)}" for k, v in self.dt_percentiles.items())
        skipped = sum(self.skipped_rows.values())
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped_rows.items()))
        return [
            f"dimension    {self.dimension} (dt + {self.dimension - 1} controls)",
            f"performances {self.performances}"
            + (
                f" ({short} shorter than {MIN_TRAINING_EVENTS} events, not trained on)"
                if short
                else ""
            ),
            f"events       {self.events:,}",
            f"total time   {_duration(self.seconds)}",
            f"dt           {dts or 'none'}",
            f"simultaneous {self.simultaneous:.1%} of events come < 1 ms after the previous one",
            f"rows skipped {skipped}" + (f" ({reasons})" if skipped else ""),
        ]


def _check_finite(events: np.ndarray, where: str = "the dataset") -> None:
    bad = int((~np.isfinite(events)).any(axis=1).sum())
    if bad:
        raise AntiphonError(f"{where} has {bad} events with NaN or infinite values")


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _duration(seconds: float) -> str:
    minutes, s = divmod(round(seconds), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min {s:02d} s" if hours else f"{m} min {s:02d} s"


# -- from logs ---------------------------------------------------------------------------


@dataclass
class Collected:
    dataset: Dataset
    logs: int  # log files of this dimension that were read
    empty: list[str]  # of those, the ones without two interface events
    unreadable: dict[str, str] = field(default_factory=dict)  # log -> why it was left out
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)  # log -> rows skipped
    made: list[str] = field(default_factory=list)  # synthetic or generated: left out

    def notes(self, most: int = 5) -> list[str]:
        """What was left out, by log name: a bad row or file costs only itself."""
        notes = []
        if self.made:
            notes.append(f"left out {len(self.made)} {MADE_LOGS}: {MADE_HINT}")
        for name, why in list(self.unreadable.items())[:most]:
            notes.append(f"left out {name}: {why}")
        for name, reasons in list(self.skipped.items())[:most]:
            rows = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
            notes.append(f"skipped rows in {name}: {rows}")
        hidden = max(0, len(self.unreadable) - most) + max(0, len(self.skipped) - most)
        if hidden:
            notes.append(f"and {hidden} more logs like these")
        return notes


def log_dimensions(source: str | Path) -> Counter[int]:
    """How many logs of each dimension a folder holds, judged by file name."""
    found: Counter[int] = Counter()
    for path in Path(source).glob("*.log"):
        dimension = dimension_from_name(path)
        if dimension is not None:
            found[dimension] += 1
    return found


def only_dimension(source: str | Path) -> int:
    """The dimension of the logs in ``source`` when they all share one."""
    source = Path(source)
    if not source.is_dir():
        raise AntiphonError(f"no log folder {source}: give the folder with --source")
    found = log_dimensions(source)
    if len(found) != 1:
        listing = ", ".join(f"{d}d ({n} files)" for d, n in sorted(found.items()))
        raise AntiphonError(
            "say which logs to collect with --dimension"
            + (f"; {source} has logs of dimension {listing}" if found else f"; {source} has none")
        )
    return next(iter(found))


def from_logs(
    source: str | Path,
    dimension: int,
    on_log: Callable[[int, int], None] | None = None,
    *,
    made: bool = False,
) -> Collected:
    """Every ``*-{D}d-mdrnn.log`` in ``source``, in time order, as one dataset.

    Only the performer's (``interface``) rows are used; dt is measured between them.
    Logs no one played (``data synth``'s, ``generate``'s: see ``logs.MADE``) are left
    out unless ``made``: a model should learn from people playing. Their names say so,
    so they are left out before they are read.
    ``on_log(done, total)`` hears after each log is read.
    """
    source = Path(source)
    if not source.is_dir():
        raise AntiphonError(
            f"no log folder {source}: play with antiphon to record logs there, or give the "
            "folder with --source"
        )
    paths = sorted(
        (p for p in source.glob("*.log") if dimension_from_name(p) == dimension),
        key=recording_order,
    )
    if not paths:
        found = log_dimensions(source)
        if found:
            listing = ", ".join(f"{d}d ({n} files)" for d, n in sorted(found.items()))
            raise AntiphonError(
                f"no {dimension}d logs in {source}; it has logs of dimension {listing}: "
                f"use --dimension {found.most_common(1)[0][0]}"
            )
        raise AntiphonError(
            f"no performance logs (*-{dimension}d-mdrnn.log) in {source}: play with "
            "antiphon to record some, or make synthetic ones with `antiphon data synth`"
        )
    performances, names, empty, left_out = [], [], [], []
    unreadable: dict[str, str] = {}
    skipped_by_log: dict[str, dict[str, int]] = {}
    skipped: Counter[str] = Counter()
    for done, path in enumerate(paths, 1):
        if not made and origin_from_name(path) in MADE:
            left_out.append(path.name)
            if on_log is not None:
                on_log(done, len(paths))
            continue
        try:
            log = read_log(path, dimension)
        except AntiphonError as exc:  # one unreadable file must not cost the others
            unreadable[path.name] = str(exc).replace(f"{path}: ", "")
            continue
        finally:
            if on_log is not None:
                on_log(done, len(paths))
        skipped.update(log.skipped)
        if log.skipped:
            skipped_by_log[path.name] = dict(log.skipped)
        events = log.events(INTERFACE)
        if len(events) == 0:
            empty.append(path.name)
            continue
        performances.append(events)
        names.append(path.name)
    if not performances:
        if left_out and len(left_out) + len(unreadable) == len(paths):
            raise AntiphonError(
                f"the {len(paths)} {dimension}d logs in {source} are all {MADE_LOGS}: "
                f"play some, or {MADE_HINT}"
            )
        raise AntiphonError(
            f"the {len(paths)} {dimension}d logs in {source} hold no performer events "
            f"(rows skipped: {dict(skipped) or 'none'}"
            + (f"; unreadable: {', '.join(unreadable)}" if unreadable else "")
            + (f"; {len(left_out)} {MADE_LOGS} left out" if left_out else "")
            + ")"
        )
    return Collected(
        Dataset.from_performances(performances, names, skipped),
        len(paths),
        empty,
        unreadable,
        skipped_by_log,
        left_out,
    )


# -- files -------------------------------------------------------------------------------


def save(path: str | Path, dataset: Dataset, format: Format = "antiphon") -> Path:
    """Write a dataset atomically (replacing an older one: datasets are rebuilt from logs)."""
    path = Path(path)
    if format == "impsy":
        data = impsy_npz.to_bytes(dataset.performances)
    else:
        info = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "names": dataset.names,
            "skipped_rows": dataset.skipped,
        }
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, events=dataset.events, offsets=dataset.offsets, info=np.array(json.dumps(info))
        )
        data = buffer.getvalue()
    write_atomically(path, data)
    return path


def load(path: str | Path) -> Dataset:
    """Read an antiphon or IMPSY dataset file; never runs code from the file, and checks
    every size before it allocates (see ``npz``)."""
    path = Path(path)
    if not path.is_file():
        raise AntiphonError(f"no dataset file {path}: make one with `antiphon dataset`")
    with npz.open_archive(path) as archive:
        members = set(archive.members)
        if f"{impsy_npz.KEY}.npy" in members:
            impsy = True
        elif {"events.npy", "offsets.npy", "info.npy"} <= members:
            impsy = False
            events = npz.member(archive, "events").numeric(path)
            offsets = npz.member(archive, "offsets").numeric(path)
            info = _info(path, npz.member(archive, "info").text(path))
        else:
            raise AntiphonError(
                f"{path} is neither an antiphon nor an IMPSY dataset (it holds "
                f"{', '.join(sorted(members)) or 'nothing'})"
            )
    if impsy:
        performances = impsy_npz.read(path)
        if not performances:
            raise AntiphonError(f"{path} holds no performances")
        _check_dimension(path, performances[0].shape[1])
        for performance in performances:
            _check_finite(performance, str(path))
        return Dataset.from_performances(
            performances, [f"{path.name}[{i}]" for i in range(len(performances))]
        )
    ok = (
        events.ndim == 2
        and offsets.ndim == 1
        and offsets.dtype.kind in "iu"
        and 2 <= len(offsets) <= npz.MAX_PERFORMANCES + 1
        and offsets[0] == 0
        and offsets[-1] == len(events)
        and bool(np.all(np.diff(offsets.astype(np.int64)) >= 0))
    )
    if not ok:
        raise AntiphonError(f"{path}: events and offsets do not agree; rebuild the dataset")
    _check_dimension(path, events.shape[1])
    _check_finite(events, str(path))
    names = info.get("names")
    if not (
        isinstance(names, list)
        and len(names) == len(offsets) - 1
        and all(isinstance(n, str) for n in names)
    ):
        names = [f"performance {i + 1}" for i in range(len(offsets) - 1)]
    skipped = info.get("skipped_rows")
    if not (
        isinstance(skipped, dict)
        and all(isinstance(k, str) and isinstance(v, int) for k, v in skipped.items())
    ):
        skipped = {}
    return Dataset(
        events=events.astype(np.float32, copy=False),
        offsets=offsets.astype(np.int64, copy=False),
        names=names,
        skipped=dict(skipped),
    )


def _info(path: Path, text: str) -> dict[str, Any]:
    """The ``info`` JSON of an antiphon dataset: its format and version are required."""
    try:
        info = json.loads(text)
    except ValueError:
        info = None
    if not isinstance(info, dict):
        raise AntiphonError(f"{path}: its info is not a JSON object; it is not an antiphon dataset")
    version = info.get("format_version")
    if info.get("format") != FORMAT:
        raise AntiphonError(f"{path} says it is {info.get('format')!r}, not an {FORMAT} file")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise AntiphonError(f"{path}: its format_version {version!r} is not a version number")
    if version > FORMAT_VERSION:
        raise AntiphonError(
            f"{path} uses dataset format {version}; this antiphon reads {FORMAT} up to "
            f"{FORMAT_VERSION}: upgrade antiphon"
        )
    return info


def _check_dimension(path: Path, dimension: int) -> None:
    if not MIN_DIMENSION <= dimension <= MAX_DIMENSION:
        raise AntiphonError(
            f"{path} has dimension {dimension}; antiphon reads {MIN_DIMENSION} to "
            f"{MAX_DIMENSION} (dt and at least one control)"
        )
