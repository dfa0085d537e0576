"""The web UI: one Starlette app serving every page, asset and API from antiphon itself.

It runs inside ``antiphon run`` (same event loop as the engine) or alone as
``antiphon web``. Pages are server-rendered; a little plain JavaScript draws plots and
keeps live pages live. Nothing is loaded from the internet: an instrument is offline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from antiphon import __version__
from antiphon import config as config_schema
from antiphon.errors import AntiphonError
from antiphon.web import security
from antiphon.web.jobs import Jobs
from antiphon.web.security import MB, Refused
from antiphon.workspace import Workspace

STATIC = Path(__file__).with_name("static")
SECRET_NAME = ".antiphon-web-secret"

UPLOAD_LIMITS = {
    "/models": 64 * MB,
    "/api/models": 64 * MB,
    "/datasets": 256 * MB,
    "/api/datasets": 256 * MB,
}
DEFAULT_LIMIT = 1 * MB


@dataclass
class WebState:
    """What every page can reach: the workspace, the engine (if playing) and jobs."""

    workspace: Workspace
    engine: Any | None = None  # an antiphon.engine.Engine when inside `antiphon run`
    started: float = field(default_factory=time.monotonic)
    password: str | None = None
    jobs: Jobs = field(default_factory=Jobs)

    def read_config(self) -> config_schema.Config | None:
        """The workspace config, or None when it is missing or invalid."""
        try:
            return config_schema.load(self.workspace.config_path)
        except AntiphonError:
            return None

    def refresh_password(self) -> None:
        loaded = self.read_config()
        self.password = loaded.webui.password if loaded else self.password


_templates = Environment(
    loader=PackageLoader("antiphon.web", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def duration(seconds: float) -> str:
    """How long, as a person reads it (antiphon.js's formatDuration says the same)."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, whole = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {whole:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def vector(values: list[float]) -> str:
    """Control values as the live pages show them."""
    return ", ".join(f"{v:.3f}" for v in values)


_templates.filters["duration"] = duration
_templates.filters["vector"] = vector

NAV = [
    ("/play", "Play"),
    ("/", "Dashboard"),
    ("/live", "Live"),
    ("/control", "Control"),
    ("/logs", "Logs"),
    ("/datasets", "Datasets"),
    ("/models", "Models"),
    ("/train", "Train"),
    ("/config", "Config"),
]


def state(request: Request) -> WebState:
    return request.app.state.web


def render(request: Request, template: str, code: int = 200, /, **context: Any) -> HTMLResponse:
    """A page from templates/ (HTTP status ``code``), with what every page needs."""
    web = state(request)
    page = _templates.get_template(template).render(
        request=request,
        nav=NAV,
        path=request.url.path,
        version=__version__,
        csrf_token=security.csrf_token(request),
        playing=web.engine is not None and web.engine.problem is None,
        not_playing=web.engine.problem if web.engine is not None else None,
        has_password=bool(web.password),
        flash=request.query_params.get("flash"),
        error=request.query_params.get("error"),
        **context,
    )
    return HTMLResponse(page, code)


def _limit_for(path: str) -> int:
    return next(
        (limit for prefix, limit in UPLOAD_LIMITS.items() if path.startswith(prefix)), DEFAULT_LIMIT
    )


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return _error_response(request, str(exc), exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail
    if exc.status_code == 404 and message == "Not Found":  # no route: say which page
        message = f"there is no page at {request.url.path}"
    return _error_response(request, message, exc.status_code)


async def _antiphon_error(request: Request, exc: Exception) -> Response:
    return _error_response(request, str(exc), 400)


def _error_response(request: Request, message: str, status: int) -> Response:
    if "text/html" in request.headers.get("accept", ""):
        return render(request, "error.html", status, message=message, code=status)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status)
    return PlainTextResponse(message, status)


def create_app(workspace: Workspace, *, engine: Any | None = None) -> Starlette:
    from antiphon.web.pages import ROUTES

    web = WebState(workspace=workspace, engine=engine)
    web.password = engine.config.webui.password if engine is not None else None
    web.refresh_password()  # the file's, when it can be read
    secret = security.load_secret(workspace.root / SECRET_NAME)
    routes: list[BaseRoute] = [
        *ROUTES,
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(security.BodyLimitMiddleware, limit_for=_limit_for),
            Middleware(security.CSRFMiddleware),
            Middleware(
                SessionMiddleware,
                secret_key=secret,
                session_cookie="antiphon_session",
                same_site="strict",
                max_age=30 * 24 * 3600,
            ),
            Middleware(security.LoginMiddleware, password=lambda: web.password),
        ],
        exception_handlers={
            Refused: _refused,
            HTTPException: _http_error,
            AntiphonError: _antiphon_error,
        },
    )
    app.state.web = web
    return app
