"""Serving the web UI with uvicorn, alone or inside ``antiphon run``'s event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from antiphon import config as config_schema
from antiphon.errors import AntiphonError
from antiphon.workspace import Workspace


def server(app: Any, host: str, port: int, *, own_signals: bool = True) -> uvicorn.Server:
    """A uvicorn server for ``app``. Inside ``antiphon run`` the engine owns SIGINT and
    SIGTERM (it must send note-offs and flush logs), so the server must not take them:
    ``own_signals=False``; stop it by setting ``should_exit``."""
    settings = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        ws="websockets-sansio",
        access_log=False,
    )
    instance = uvicorn.Server(settings)
    if not own_signals:
        instance.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    return instance


def serve_workspace(
    directory: Path, *, host: str | None, port: int | None, echo: Callable[[str], None] = print
) -> None:
    from antiphon.web.app import create_app

    workspace = Workspace(directory)
    if not workspace.config_path.exists():
        raise AntiphonError(
            f"{directory} has no config.toml: create a workspace with "
            f"`antiphon init {directory}` first"
        )
    webui = config_schema.load(workspace.config_path).webui
    host, port = host or webui.host, port or webui.port
    echo(f"antiphon web UI for {directory.resolve()} on http://{host}:{port}/  (Ctrl-C stops)")
    instance = server(create_app(workspace), host, port)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(instance.serve())
