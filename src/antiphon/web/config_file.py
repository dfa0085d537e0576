"""Changing ``config.toml`` safely: validate first, keep comments, back up, write atomically."""

from __future__ import annotations

import ipaddress
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path

import tomlkit

from antiphon import config as config_schema
from antiphon.model.files import write_atomically
from antiphon.web import sessions

BACKUP_SUFFIX = ".bak"


def save_text(path: Path, text: str, client: str | None = None) -> config_schema.Config:
    """Write ``text`` as the new config if it is valid; the old file becomes ``.bak``.

    Raises ConfigError (and leaves the file untouched) when it is not valid, or when it
    would lock out ``client``, the address the change came from. A new web UI password
    is saved hashed.
    """
    text = sessions.hash_new_password(text, _password(path))
    checked = config_schema.parse(text, path)
    if client is not None and _remote(client) and _loopback(checked.webui.host):
        raise config_schema.ConfigError(
            f'[webui] host = "{checked.webui.host}" would let only this computer reach the '
            f"web UI once antiphon restarts, and you are on {client}: set "
            'host = "0.0.0.0" in [webui] to keep reaching it from here'
        )
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


def _password(path: Path) -> str | None:
    """``[webui] password`` of the config saved at ``path`` now, if any."""
    try:
        webui = tomllib.loads(path.read_text(encoding="utf-8")).get("webui", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    password = webui.get("password") if isinstance(webui, dict) else None
    return password if isinstance(password, str) else None


def saved_message(path: Path) -> str:
    return f"Saved {path.name} (the previous one is {path.name}.bak)."


def _remote(client: str) -> bool:
    try:
        return not ipaddress.ip_address(client).is_loopback
    except ValueError:  # not an address (a test client): nothing to lock out
        return False


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
