"""The web UI: one Starlette app serving every page, asset and API from antiphon itself.

It runs inside ``antiphon run`` (same event loop as the engine) or alone as
``antiphon web``. Pages are server-rendered; a little plain JavaScript draws plots and
keeps live pages live. Nothing is loaded from the internet: an instrument is offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from antiphon import config as config_schema
from antiphon.errors import AntiphonError
from antiphon.web import security
from antiphon.web.render import render
from antiphon.web.security import MB, Refused
from antiphon.web.state import WebState
from antiphon.workspace import Workspace

STATIC = Path(__file__).with_name("static")

UPLOAD_LIMITS = {
    "/models/upload": 64 * MB,
    "/api/models": 64 * MB,
    "/datasets/upload": 256 * MB,
}
"""The routes that take files, by exact path: every other body (a form, JSON, a config)
is held to ``security.FORM_LIMIT``, before anyone has logged in too."""


def _limit_for(path: str) -> int:
    return UPLOAD_LIMITS.get(path, security.FORM_LIMIT)


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return _error_response(request, str(exc), exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail
    if exc.status_code == 404 and message == "Not Found":  # no route: say which page
        message = f"there is no page at {request.url.path}"
    return _error_response(request, message, exc.status_code)


async def _gone(request: Request, exc: Exception) -> Response:
    """The client went away before its request was read: nobody to answer, nothing
    to report (an upload cancelled, or a request body that stopped coming)."""
    return Response(status_code=400)


async def _antiphon_error(request: Request, exc: Exception) -> Response:
    return _error_response(request, str(exc), 400)


def _error_response(request: Request, message: str, status: int) -> Response:
    if "text/html" in request.headers.get("accept", ""):
        return render(request, "error.html", status, message=message, code=status)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status)
    return PlainTextResponse(message, status)


def create_app(
    workspace: Workspace,
    *,
    engine: Any | None = None,
    webui: config_schema.WebUIConfig | None = None,
) -> Starlette:
    """The web UI of ``workspace``; its password and hosts are those of ``engine`` (what
    plays, even when config.toml cannot be read), else ``webui`` as already read, else
    config.toml's now."""
    from antiphon.web.pages import ROUTES

    web = WebState(workspace=workspace, engine=engine)
    webui = engine.config.webui if engine is not None else webui
    if webui is not None:
        web.take_webui(webui)
    else:
        web.refresh_password()
    routes: list[BaseRoute] = [
        *ROUTES,
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(security.HostMiddleware, hosts=lambda: web.hosts),
            Middleware(security.BodyLimitMiddleware, limit_for=_limit_for),
            Middleware(security.SessionMiddleware, sessions=lambda: web.sessions),
            Middleware(security.CSRFMiddleware),
            Middleware(security.LoginMiddleware, password_set=lambda: web.password is not None),
        ],
        exception_handlers={
            Refused: _refused,
            HTTPException: _http_error,
            AntiphonError: _antiphon_error,
            ClientDisconnect: _gone,
        },
    )
    app.state.web = web
    return app
