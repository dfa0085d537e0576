"""Changing ``config.toml`` safely: check it completely, keep comments, keep history,
write atomically.

A config is saved only once everything in it has been checked as ``antiphon run``
would check it at start: its values, its mappings, and its model (the file exists,
loads, and has the config's dimension). A config that would stop the instrument at its
next start never replaces one that plays: under systemd that meant a Pi restarting in
a loop with its web UI down, which only SSH could fix. The configs it replaces are
kept in a history folder beside it (the last ``KEEP``), each one restorable from the
web UI.
"""

from __future__ import annotations

import ipaddress
import shutil
import tomllib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import tomlkit

from antiphon import config as config_schema
from antiphon.engine.setup import Overrides, prepare
from antiphon.storage import write_atomically
from antiphon.web import sessions

HISTORY = ".config-history"
KEEP = 10


def check_text(
    path: Path, text: str, overrides: Overrides | None = None, explicit: Path | None = None
) -> config_schema.Config:
    """Everything ``antiphon run`` checks, for ``text`` as if saved at ``path``.

    Raises AntiphonError (ConfigError for the file itself) with one clear message.
    Loads the model: call it in a thread.
    """
    return prepare(path, overrides or Overrides(), explicit, strict=True, text=text).config


def save_text(
    path: Path,
    text: str,
    client: str | None = None,
    overrides: Overrides | None = None,
    explicit: Path | None = None,
) -> config_schema.Config:
    """Write ``text`` as the new config once it is completely checked; the old one goes
    into the history.

    Raises AntiphonError (and leaves the file untouched) when it cannot be played, or
    when it would lock out ``client``, the address the change came from. A new web UI
    password is saved hashed.
    """
    text = sessions.hash_new_password(text, _password(path))
    checked = check_text(path, text, overrides, explicit)
    if client is not None and _remote(client) and _loopback(checked.webui.host):
        raise config_schema.ConfigError(
            f'[webui] host = "{checked.webui.host}" would let only this computer reach the '
            f"web UI once antiphon restarts, and you are on {client}: set "
            'host = "0.0.0.0" in [webui] to keep reaching it from here'
        )
    if path.exists():
        _keep(path)
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
    return f"Saved {path.name} (the previous one is kept in its history)."


def history(path: Path) -> list[Path]:
    """The configs ``path`` replaced, newest first."""
    folder = path.parent / HISTORY
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{path.stem}-*.toml"), reverse=True)


def _keep(path: Path) -> None:
    folder = path.parent / HISTORY
    folder.mkdir(exist_ok=True)
    stamp = datetime.now().strftime("%Y-%m-%dT%H-%M-%S.%f")  # sorts by when it was replaced
    shutil.copy2(path, folder / f"{path.stem}-{stamp}.toml")
    for old in history(path)[KEEP:]:
        old.unlink(missing_ok=True)


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
