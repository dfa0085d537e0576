"""Changing ``config.toml`` safely: validate first, keep comments, back up, write atomically."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import tomlkit

from antiphon import config as config_schema
from antiphon.model.files import write_atomically

BACKUP_SUFFIX = ".bak"


def save_text(path: Path, text: str) -> config_schema.Config:
    """Write ``text`` as the new config if it is valid; the old file becomes ``.bak``.

    Raises ConfigError (and leaves the file untouched) when it is not valid.
    """
    checked = config_schema.parse(text, path)
    if path.exists():
        shutil.copy2(path, path.with_name(path.name + BACKUP_SUFFIX))
    write_atomically(path, text.encode("utf-8"))
    return checked


def edit_config(path: Path, change: Callable[[tomlkit.TOMLDocument], None]) -> None:
    """Apply ``change`` to the parsed document (comments and layout survive) and save."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    document = tomlkit.parse(text)
    change(document)
    save_text(path, tomlkit.dumps(document))


def saved_message(path: Path) -> str:
    return f"Saved {path.name} (the previous one is {path.name}.bak)."
