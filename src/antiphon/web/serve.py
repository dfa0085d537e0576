"""Serving the web UI with uvicorn, alone or inside ``antiphon run``'s event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvicorn

from antiphon import config as config_schema
from antiphon.errors import AntiphonError
from antiphon.web.connections import ACCEPT_BATCH, KEEP_ALIVE_SECONDS, Gate, raise_fd_limit
from antiphon.workspace import Workspace

log = logging.getLogger("antiphon")

WS_MAX_MESSAGE = 64 * 1024  # the largest frame a page sends: /play/ws's are ~100 bytes


class Server(uvicorn.Server):
    """uvicorn with the web UI's connection limits (web/connections.py) in force."""

    def __init__(self, config: uvicorn.Config, gate: Gate) -> None:
        super().__init__(config)
        self.gate = gate

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        raise_fd_limit()
        sweeper = asyncio.create_task(self.gate.sweep(self.server_state.connections))
        try:
            with self.gate.quiet_accept_errors(asyncio.get_running_loop()):
                await super().serve(sockets)
        finally:
            sweeper.cancel()


def server(app: Any, host: str, port: int, *, own_signals: bool = True) -> Server:
    """A uvicorn server for ``app``. Inside ``antiphon run`` the engine owns SIGINT and
    SIGTERM (it must send note-offs and flush logs), so the server must not take them:
    ``own_signals=False``; stop it by setting ``should_exit``.

    WebSocket messages are not compressed: compressing costs every client's frames
    CPU on the engine's loop, and a compressed message can inflate far past its size.
    """
    gate = Gate()
    settings = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        http=gate.protocol(),
        ws="websockets-sansio",
        ws_max_size=WS_MAX_MESSAGE,
        ws_per_message_deflate=False,
        backlog=ACCEPT_BATCH,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        access_log=False,
    )
    instance = Server(settings, gate)
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
    app = create_app(workspace, webui=webui)
    instance = server(app, host, port)

    async def serve() -> None:
        try:
            await instance.serve()
        finally:
            await app.state.web.jobs.close()  # a training run stops and keeps its best

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


def web_service(workspace: Workspace, host: str, port: int) -> Callable[[Any], Awaitable[None]]:
    """The web UI as a service of ``antiphon run``: same loop, same engine.

    A web UI that cannot start (the port is taken) or fails later is reported and the
    instrument keeps playing: the music never depends on the browser.
    """

    async def serve(engine: Any) -> None:
        from antiphon.web.app import create_app

        try:
            sock = socket.create_server((host, port), reuse_port=False)
            # Connections inherit it. asyncio sets TCP_NODELAY only on sockets whose proto
            # is IPPROTO_TCP, and create_server's is 0: without it, Nagle's algorithm held
            # each WebSocket message for the browser's next ACK, piggybacked on what the
            # Play page sends every 16 ms (output -> page p50 9 ms instead of 0.8 ms).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            log.warning(
                "web UI not started: cannot listen on %s:%s (%s); antiphon keeps "
                "playing. Choose another [webui].port or --web-port.",
                host,
                port,
                exc.strerror or exc,
            )
            await asyncio.Event().wait()  # stay as a service until antiphon stops
        app = create_app(workspace, engine=engine)
        instance = server(app, host, port, own_signals=False)
        shown = config_schema.browser_host(host)
        log.info("web UI on http://%s:%s/", shown, sock.getsockname()[1])
        task = asyncio.create_task(instance.serve(sockets=[sock]))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            instance.should_exit = True
            await task
            raise
        except Exception as exc:  # a web UI failure must not stop the music
            log.warning("web UI stopped: %s; antiphon keeps playing", exc)
            await asyncio.Event().wait()
        finally:
            await app.state.web.jobs.close()  # a training run stops and keeps its best
            sock.close()

    return serve
