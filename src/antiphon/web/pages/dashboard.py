"""The dashboard: what is playing, what the workspace holds, how the computer is."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from antiphon import __version__
from antiphon.web import listing, system
from antiphon.web.pages.common import in_thread
from antiphon.web.render import render
from antiphon.web.state import WebState, state


def workspace_counts(web: WebState) -> dict[str, int]:
    from antiphon.model.loader import SUFFIXES

    ws = web.workspace
    return {
        "logs": len(listing.files_in(ws.logs, listing.LOG_SUFFIXES)),
        "datasets": len(listing.files_in(ws.datasets, listing.DATASET_SUFFIXES)),
        "models": len(listing.files_in(ws.models, SUFFIXES)),
    }


def engine_status(web: WebState) -> dict[str, Any] | None:
    return web.engine.status() if web.engine is not None else None


async def snapshot(web: WebState) -> dict[str, Any]:
    return {
        "version": __version__,
        "uptime": time.monotonic() - web.started,
        "engine": engine_status(web),
        "workspace": await in_thread(workspace_counts, web),
        "system": await in_thread(system.snapshot, web.workspace.root),
    }


async def dashboard(request: Request) -> Response:
    web = state(request)
    config = await web.config_now()
    return render(request, "dashboard.html", snap=await snapshot(web), config=config)


async def api_status(request: Request) -> Response:
    return JSONResponse(await snapshot(state(request)))


routes = [
    Route("/", dashboard),
    Route("/api/status", api_status),
]
