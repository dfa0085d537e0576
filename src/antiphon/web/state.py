"""What every page can reach: the workspace, the engine playing (if any), sessions, jobs.

The web UI uses the engine only through ``InstrumentView``: it asks the engine what is
playing (never the disk, which may say something else: a model given on the command
line, a fallback), and sends it commands. Nothing here blocks the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from starlette.requests import HTTPConnection

from antiphon import config as config_schema
from antiphon.engine.events import Subscription
from antiphon.engine.setup import Setup
from antiphon.errors import AntiphonError
from antiphon.hosts import Hosts
from antiphon.web.jobs import Jobs
from antiphon.web.sessions import Attempts, Password, Sessions
from antiphon.workspace import Workspace


class InstrumentView(Protocol):
    """What the web UI may use of the engine playing in this process."""

    @property
    def config(self) -> config_schema.Config: ...

    @property
    def setup(self) -> Setup: ...

    @property
    def problem(self) -> str | None: ...

    @property
    def dimension(self) -> int: ...

    @property
    def model(self) -> Any: ...  # the Predictor playing, or None

    timescale: float

    async def new_take(self) -> str: ...

    async def stop_take(self) -> str: ...

    def status(self) -> dict[str, Any]: ...

    def labels(self) -> list[str]: ...

    def subscribe(self, maxsize: int = 256) -> Subscription: ...

    def command(self, address: str, *args: Any) -> str: ...

    async def reload(self, model: str | Path | None = None) -> None: ...

    def on_input(self, source: str, values: Sequence[Any], detail: str | None = None) -> None: ...

    def now(self) -> float: ...


@dataclass
class WebState:
    """What every page can reach: the workspace, the engine (if playing) and jobs."""

    workspace: Workspace
    engine: InstrumentView | None = None  # inside `antiphon run`; None under `antiphon web`
    started: float = field(default_factory=time.monotonic)
    password: Password | None = None
    hosts: Hosts = field(default_factory=Hosts)
    sessions: Sessions = field(default_factory=Sessions)
    attempts: Attempts = field(default_factory=Attempts)
    jobs: Jobs = field(default_factory=Jobs)
    live_feed: Any = None  # web/pages/live.Feed: one for every live page, made by the first
    players: int = 0  # Play pages open now
    auditioning: bool = False  # an audition is being generated (one at a time)

    async def config_now(self) -> config_schema.Config | None:
        """config.toml as saved now (read in a thread: parsing probes addresses), or
        None when it is missing or invalid. What *plays* is the engine's to say."""
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(self.read_config)

    def playing_model(self) -> Path | None:
        """The model file the engine plays now (None: no engine, or no model)."""
        return self.engine.setup.model_path if self.engine is not None else None

    def read_config(self) -> config_schema.Config | None:
        """The workspace config, or None when it is missing or invalid (blocking)."""
        try:
            return config_schema.load(self.workspace.config_path)
        except AntiphonError:
            return None

    def refresh_password(self) -> None:
        """Take up ``[webui]``'s password and allowed hosts as saved now; a new password
        (or none) ends every session. A config that cannot be read changes nothing."""
        loaded = self.read_config()
        if loaded is not None:
            self.take_webui(loaded.webui)

    def take_webui(self, webui: config_schema.WebUIConfig) -> None:
        configured = webui.password or None
        if configured != (self.password.configured if self.password else None):
            self.password = Password(configured) if configured else None
            self.sessions.end_all()
        self.hosts = Hosts(webui.allowed_hosts)


def state(connection: HTTPConnection) -> WebState:
    """The WebState of the app serving ``connection`` (a request or a WebSocket)."""
    return connection.app.state.web
