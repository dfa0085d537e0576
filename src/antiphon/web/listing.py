"""Summaries of the files in a workspace, for the web UI's tables.

Reading a log or a model header takes milliseconds to tens of milliseconds, so
summaries are cached per (name, size, mtime) and computed in a worker thread by the
pages, never on the event loop.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from antiphon.data import logs
from antiphon.errors import AntiphonError


@dataclass(frozen=True)
class FileInfo:
    name: str
    size: int
    modified: datetime

    @property
    def size_text(self) -> str:
        return human_size(self.size)


@dataclass(frozen=True)
class LogInfo(FileInfo):
    dimension: int | None
    events: int
    duration: float  # seconds
    problem: str = ""  # why it could not be read
    origin: str = ""  # where its rows came from (logs.LogFile.describe_origin)
    played: bool = True  # by a person: datasets use it

    @property
    def duration_text(self) -> str:
        minutes, seconds = divmod(round(self.duration), 60)
        return f"{minutes}:{seconds:02d}"


@dataclass(frozen=True)
class ModelInfo(FileInfo):
    kind: str  # "antiphon" or "IMPSY ..." or "unreadable"
    architecture: str
    dimension: int | None
    dataset: str
    val_nll: float | None
    problem: str = ""


def human_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError


LOG_SUFFIXES = (".log",)
DATASET_SUFFIXES = (".npz",)


def files_in(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Plain files (no hidden ones, no symlinks leaving the folder), newest first; a
    file deleted while the folder is read is left out, not an error."""
    if not folder.is_dir():
        return []
    base = folder.resolve()
    found = []
    for p in folder.iterdir():
        if p.suffix not in suffixes or p.name.startswith("."):
            continue
        try:
            if p.is_file() and p.resolve().parent == base:
                found.append((p.stat().st_mtime, p))
        except OSError:
            continue
    return [p for _, p in sorted(found, key=lambda found: found[0], reverse=True)]


def stat(path: Path) -> tuple[int, int]:
    """(size, mtime in ns): what summaries are cached by."""
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def modified(mtime_ns: int) -> datetime:
    return datetime.fromtimestamp(mtime_ns / 1e9)


def performed_at(path: Path) -> datetime | None:
    """When a performance started, from its IMPSY-style file name (if it is a date)."""
    match = logs.NAME_PATTERN.search(path.name)
    try:
        return datetime.strptime(match[1], "%Y-%m-%dT%H-%M-%S") if match else None
    except ValueError:  # 2024-13-45T...: the pattern's digits are not a date
        return None


def log_infos(folder: Path) -> list[LogInfo]:
    infos = []
    for path in files_in(folder, LOG_SUFFIXES):
        try:
            infos.append(log_info(path))
        except OSError:  # deleted since the folder was read
            continue
    return infos


def log_info(path: Path) -> LogInfo:
    return _log_info(path, *stat(path))


@functools.lru_cache(maxsize=4096)
def _log_info(path: Path, size: int, mtime_ns: int) -> LogInfo:
    when = performed_at(path) or modified(mtime_ns)
    try:
        log = logs.read_log(path)
    except AntiphonError as exc:
        problem = str(exc).replace(f"{path}: ", "")
        return LogInfo(path.name, size, when, None, 0, 0.0, problem)
    return LogInfo(
        name=path.name,
        size=size,
        modified=when,
        dimension=log.dimension,
        events=len(log.times),
        duration=log.duration,
        origin=log.describe_origin(),
        played=log.played,
    )


def log_series(path: Path, max_points: int = 2000) -> dict[str, Any]:
    """A log as plot data: time (s from start) and each control, thinned evenly."""
    log = logs.read_log(path)
    keep = np.arange(len(log.times))
    if len(keep) > max_points:
        keep = np.linspace(0, len(keep) - 1, max_points).astype(int)
    times = log.times[keep] - (log.times[0] if len(log.times) else 0)
    return {
        "name": path.name,
        "dimension": log.dimension,
        "events": len(log.times),
        "skipped": sum(log.skipped.values()),
        "t": np.round(times, 4).tolist(),
        "values": np.round(log.values[keep].T.astype(np.float64), 4).tolist(),
        "sources": [log.sources[i] for i in keep],
    }


def model_infos(folder: Path) -> list[ModelInfo]:
    from antiphon.model.loader import SUFFIXES

    return [model_info(p) for p in files_in(folder, SUFFIXES)]


def model_info(path: Path) -> ModelInfo:
    return _model_info(path, *stat(path))


@functools.lru_cache(maxsize=1024)
def _model_info(path: Path, size: int, mtime_ns: int) -> ModelInfo:
    changed = modified(mtime_ns)
    try:
        kind, arch, metadata = describe_model(path)
    except AntiphonError as exc:
        return ModelInfo(path.name, size, changed, "unreadable", "", None, "", None, str(exc))
    training = metadata.get("training") if isinstance(metadata.get("training"), dict) else {}
    dataset = training.get("dataset") or metadata.get("imported_from") or ""
    if isinstance(dataset, dict):
        dataset = dataset.get("file", "")
    val = training.get("best_val_nll_scaled", training.get("best_val_nll"))
    return ModelInfo(
        name=path.name,
        size=size,
        modified=changed,
        kind=kind,
        architecture=short_architecture(arch),
        dimension=arch.dimension,
        dataset=str(dataset),
        val_nll=float(val) if isinstance(val, int | float) else None,
    )


def short_architecture(arch: Any) -> str:
    size = arch.size or "custom"
    return f"{size} · {arch.dimension}-D · {arch.layers}×{arch.units} LSTM"


def describe_model(path: Path) -> tuple[str, Any, dict[str, Any]]:
    """(kind, architecture, metadata) of any model file antiphon reads."""
    from antiphon.model import loader

    if path.suffix == ".tflite":
        predictor = loader.open_model(path)
        return "IMPSY .tflite", predictor.architecture, {}
    loaded = loader.read_model(path)
    kind = "antiphon" if path.suffix == ".safetensors" else f"IMPSY {path.suffix}"
    return kind, loaded.architecture, loaded.metadata
