"""The control page: mode, pause, reset, temperatures and timescale, applied at once.

Every change goes through ``engine.command``, the same handler OSC's ``/impsy/...``
commands use, so the page cannot do anything the protocol cannot.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from antiphon.errors import AntiphonError
from antiphon.limits import MODES
from antiphon.web.pages.common import back
from antiphon.web.render import render
from antiphon.web.security import Refused
from antiphon.web.state import WebState, state


async def page(request: Request) -> Response:
    engine = state(request).engine
    return render(request, "control.html", status=engine.status() if engine else None, modes=MODES)


def run_command(web: WebState, address: str, args: list[Any]) -> str:
    if web.engine is None:
        raise Refused("nothing is playing: start `antiphon run` to control the engine", 409)
    try:  # an unknown address is refused by the engine's one table of commands
        return web.engine.command(address, *args)
    except AntiphonError as exc:
        raise Refused(str(exc)) from None


async def api_command(request: Request) -> Response:
    """POST {"address": "/impsy/mode", "args": ["polyphony"]} -> what was done."""
    try:
        body = await request.json()
    except ValueError:
        raise Refused("the request body must be JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("address"), str):
        raise Refused('send {"address": "/impsy/...", "args": [...]}')
    args = body.get("args", [])
    if not isinstance(args, list):
        raise Refused("args must be a list")
    web = state(request)
    done = run_command(web, body["address"], args)
    return JSONResponse({"done": done, "status": web.engine.status()})


async def form_command(request: Request) -> Response:
    """The same commands from plain forms, for browsers without JavaScript."""
    form = await request.form()
    address = str(form.get("address", ""))
    value = form.get("value")
    done = run_command(state(request), address, [] if value is None else [_number(value)])
    return back("/control", flash=done)


def _number(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


routes = [
    Route("/control", page),
    Route("/control", form_command, methods=["POST"]),
    Route("/api/command", api_command, methods=["POST"]),
]
