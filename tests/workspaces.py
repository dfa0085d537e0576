"""What tests put in a workspace: untrained models, performer logs, and edits to a
config.toml. Shared by every kind of test (conftest's fixtures are built from these)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import tomlkit

from antiphon.data.logs import LogWriter
from antiphon.model import files
from antiphon.model.mdrnn import Weights
from antiphon.model.presets import Architecture


def save_model(
    path: Path,
    dimension: int = 4,
    size: str = "xs",
    seed: int = 0,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """An untrained model (random weights from ``seed``) saved at ``path``."""
    weights = Weights.random(Architecture.from_size(dimension, size), seed)
    return files.save(path, files.ModelFile(weights, metadata or {}))


def model_in(directory: Path, dimension: int = 4, size: str = "xs", seed: int = 0) -> Path:
    """An untrained model in ``directory``, named by what it is (made once)."""
    path = directory / f"model-dim{dimension}-{size}-{seed}.safetensors"
    if not path.exists():
        save_model(path, dimension, size, seed)
    return path


def write_log(folder: Path, start: datetime, dimension: int = 9, events: int = 30) -> Path:
    """A performer's log begun at ``start``: ``events`` inputs 0.1 s apart, every control
    stepping 0.0, 0.1, ... 0.9 and round again."""
    with LogWriter(folder, dimension, started=start) as writer:
        for i in range(events):
            values = [(i % 10) / 10] * (dimension - 1)
            writer.write("interface", values, start + timedelta(seconds=i / 10))
    return writer.path


# -- config edits ------------------------------------------------------------------------


def edited(
    text: str,
    changes: Mapping[str, Any] | None = None,
    *,
    adding: Mapping[str, Any] | None = None,
) -> str:
    """``text`` (a config.toml) with each dotted key of ``changes`` set to a new value and
    each of ``adding`` added, through tomlkit: comments and layout stay as they were.

    Loud on purpose: a key to change that is not there (or already has that value), a key
    to add that is already there, or a section that does not exist fails the test at once.
    A text replacement that silently matched nothing would leave the config as it was,
    and the test it serves unable to fail."""
    document = tomlkit.parse(text)
    for key, value in (changes or {}).items():
        table, name = _table(document, key)
        assert name in table, f"{key} is not in the config, so it cannot be changed"
        assert _value(text, key) != value, f"{key} is {value!r} already"
        table[name] = value
    for key, value in (adding or {}).items():
        table, name = _table(document, key)
        assert name not in table, f"{key} is in the config already; change it instead"
        table[name] = value
    result = tomlkit.dumps(document)
    for key, value in {**(changes or {}), **(adding or {})}.items():
        assert _value(result, key) == value, f"{key} reads back as {_value(result, key)!r}"
    return result


def edit_config(
    path: Path,
    changes: Mapping[str, Any] | None = None,
    *,
    adding: Mapping[str, Any] | None = None,
) -> str:
    """Edit the config at ``path`` in place, as ``edited`` does; the new text."""
    text = edited(path.read_text(encoding="utf-8"), changes, adding=adding)
    path.write_text(text, encoding="utf-8")
    return text


def _table(document: tomlkit.TOMLDocument, key: str) -> tuple[Any, str]:
    *sections, name = key.split(".")
    table: Any = document
    for section in sections:
        assert section in table, f"the config has no [{section}] for {key}"
        table = table[section]
    return table, name


def _value(text: str, key: str) -> Any:
    found: Any = tomllib.loads(text)
    for part in key.split("."):
        found = found.get(part) if isinstance(found, dict) else None
    return found
