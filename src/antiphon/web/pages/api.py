"""A JSON API over the same operations as the pages, for `antiphon remote` and scripts.

Changes need the CSRF token like every form (an ``X-CSRF-Token`` header, from the
``antiphon_csrf`` cookie any GET sets) and, with a password, a login session.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from antiphon.errors import AntiphonError
from antiphon.web import listing
from antiphon.web.config_file import saved_message
from antiphon.web.pages import config as config_page
from antiphon.web.pages import models
from antiphon.web.pages.common import client_host, in_thread
from antiphon.web.security import Refused
from antiphon.web.state import state
from antiphon.workspace import Workspace


def _entries(paths: list[Path]) -> list[dict[str, Any]]:
    entries = []
    for path in paths:
        st = path.stat()
        entries.append(
            {
                "name": path.name,
                "size": st.st_size,
                "mtime": st.st_mtime,
                "modified": datetime.fromtimestamp(st.st_mtime).isoformat(),
            }
        )
    return entries


def _listing(
    folder_of: Callable[[Workspace], Path], suffixes: tuple[str, ...]
) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request) -> Response:
        folder = folder_of(state(request).workspace)
        return JSONResponse(await in_thread(lambda: _entries(listing.files_in(folder, suffixes))))

    return handler


async def upload_model(request: Request) -> Response:
    """Keep an uploaded model; ``?use=1`` says it is to be played at once, so one the
    config's dimension cannot play is refused rather than kept."""
    web = state(request)
    dimension = None
    if request.query_params.get("use") == "1":
        config = await web.config_now()
        dimension = config.model.dimension if config is not None else None
    name, arch, new = await models.receive(web, request, dimension)
    return JSONResponse(
        {"name": name, "architecture": arch.describe(), "dimension": arch.dimension, "new": new},
        201 if new else 200,
    )


async def use_model(request: Request) -> Response:
    body = await _json(request)
    outcome = await models.use_model(state(request), str(body.get("name", "")))
    return JSONResponse(outcome, 200 if "flash" in outcome else 409)


async def put_config(request: Request) -> Response:
    """Replace config.toml with the request body (checked first); ``?apply=1`` reloads."""
    web = state(request)
    text = (await request.body()).decode("utf-8", errors="replace")
    try:
        await config_page.save_config(web, text, client_host(request))
    except AntiphonError as exc:  # nothing saved: the instrument keeps what plays
        raise Refused(str(exc), 422) from None
    message = saved_message(web.workspace.config_path)
    if request.query_params.get("apply") == "1":
        outcome = await models.apply(web, message)
        return JSONResponse(outcome, 200 if "flash" in outcome else 409)
    return JSONResponse({"flash": message})


async def get_config(request: Request) -> Response:
    path = state(request).workspace.config_path
    if not path.exists():
        raise Refused("this workspace has no config.toml", 404)
    return PlainTextResponse(
        path.read_text(encoding="utf-8"), media_type="application/toml; charset=utf-8"
    )


async def healthz(request: Request) -> Response:
    """For container health checks: answers without a login, says little."""
    engine = state(request).engine
    return JSONResponse({"ok": True, "playing": engine is not None and engine.problem is None})


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise Refused("the request body must be JSON") from None
    if not isinstance(body, dict):
        raise Refused("the request body must be a JSON object")
    return body


routes = [
    Route("/healthz", healthz),
    Route("/api/logs", _listing(lambda ws: ws.logs, listing.LOG_SUFFIXES)),
    Route("/api/datasets", _listing(lambda ws: ws.datasets, listing.DATASET_SUFFIXES)),
    Route("/api/models", _listing(lambda ws: ws.models, models.SUFFIXES)),
    Route("/api/models", upload_model, methods=["POST"]),
    Route("/api/models/use", use_model, methods=["POST"]),
    Route("/api/config", get_config),
    Route("/api/config", put_config, methods=["PUT"]),
]
