"""The Play page: play the instrument from a browser, and hear both sides of it.

Each move of an on-screen control (or of the phone, with motion on) is a performer
event from the ``browser`` source: it goes through ``engine.on_input``, the same call
an OSC datagram makes, so modes, ``input_thru``, logging and call-and-response treat it
as they treat any controller. The model's outputs come back on the same WebSocket and
move each control's answer marker and the page's Web Audio voice.

Why an endpoint and not a channel (io/registry): a channel is configured in
config.toml, opened once with the engine and sends every output to one peer. Browsers
come and go with page visits, several at once, and reach antiphon only through the
web UI (which ``--no-web`` leaves out); what they hear is already in the engine's
event stream (``subscribe``), and what they play needs only ``on_input``. The
browser is an input source like any other, without being a port.

What ``/play/ws`` accepts is hostile until checked (see web/security.py's threat
model; Host is checked by its middleware):

- the Origin header must name this host: a page on another site cannot play the
  instrument through a visitor's browser;
- at most ``MAX_PLAYERS`` sockets at once, frames of at most ``WS_MAX_MESSAGE`` bytes
  (web/serve.py: the server closes the socket on a larger one),
  each a JSON object whose values are exactly one number in [0, 1] per control;
- at most ``RATE`` events a second per socket (a token bucket, ``BURST`` deep): more
  are dropped, and the page is told, at most once a second, never the engine;
- what the engine says reaches each socket through its own bounded subscription: a
  slow browser loses old events and never delays the music.

Messages, as JSON text frames. To the page: ``hello`` (labels, dimension, mode, the
engine's clock), ``events`` (inputs and outputs as they happen; an
output's ``played`` is on the engine clock), ``take`` (the record button's state),
``problem``. From the page: ``{"type": "play", "values": [...]}`` and ``{"type":
"take", "action": "start" | "stop"}``.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from antiphon.engine.commands import CommandError
from antiphon.errors import AntiphonError
from antiphon.web import security
from antiphon.web.pages import live
from antiphon.web.pages.common import in_thread
from antiphon.web.render import render
from antiphon.web.security import Refused
from antiphon.web.state import state

SOURCE = "browser"
"""The engine's name for a performer playing on this page (and its logs' origin)."""
MAX_PLAYERS = 8
"""Play sockets open at once; a ninth browser is told the instrument is busy."""
"""Characters in one message from a page at most (a 1024-control vector is ~25 KB)."""
RATE = 200.0
"""Events a second one page may play; a finger moves a control ~60-120 times a second."""
BURST = 50
SAID_EVERY = 1.0
"""Seconds between two problem messages to one page."""
QUEUE = 256
"""Engine events waiting for one page at most (the oldest are dropped)."""
SENT_KINDS = frozenset({"input", "output", "mode", "pause", "setting", "reload", "stop"})
AUDITION_SECONDS = (1.0, 60.0)
"""Shortest and longest performance the page may ask the model for."""
AUDITION_EVENTS = 20_000
"""Events an audition holds at most, whatever the model's dts (about 2 s of a size-s
model's steps in a thread of the engine's process, one audition at a time)."""


async def page(request: Request) -> Response:
    engine = state(request).engine
    return render(request, "play.html", status=engine.status() if engine else None)


def hello(engine: Any) -> dict[str, Any]:
    status = engine.status()
    last = status["last_input"]
    return {
        **live.hello(engine, status),
        "last_input": last["values"] if last else None,
        **take_state(status),
    }


def take_state(status: dict[str, Any]) -> dict[str, Any]:
    log = status.get("log")
    return {
        "recording": status.get("take_seconds") is not None,
        "take_seconds": status.get("take_seconds"),
        "log": log.rsplit("/", 1)[-1] if log else None,
    }


def checked_values(message: Any, controls: int) -> list[float] | str:
    """The vector a page played, or what is wrong with the message."""
    values = message.get("values") if isinstance(message, dict) else None
    if not isinstance(values, list) or len(values) != controls:
        return f"play messages carry {controls} values"
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return "values must be numbers"
        if isinstance(v, float) and not math.isfinite(v):  # an int is (10**400 included)
            return "values must be numbers"
        if not 0.0 <= v <= 1.0:
            return "values must be between 0 and 1"
    return [float(v) for v in values]


class Bucket:
    """At most ``rate`` events a second on average, ``burst`` at once."""

    def __init__(self, rate: float = RATE, burst: int = BURST) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


async def socket(websocket: WebSocket) -> None:
    if not security.from_this_site(websocket):
        await websocket.close(code=4403)  # before accepting: the handshake fails
        return
    await websocket.accept()
    web = state(websocket)
    engine = web.engine
    if engine is None:
        await websocket.send_json({"type": "idle"})
        await websocket.close()
        return
    if web.players >= MAX_PLAYERS:  # said in the page, which a refused handshake is not
        await websocket.send_json(
            {"type": "problem", "message": f"{MAX_PLAYERS} pages are playing already"}
        )
        await websocket.close(code=1013)
        return
    web.players += 1
    try:
        await websocket.send_json(hello(engine))
        with engine.subscribe(maxsize=QUEUE) as events:
            await live.until_one_ends(_send(websocket, events), _receive(websocket, engine))
    finally:
        web.players -= 1
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close()


async def _send(websocket: WebSocket, events: Any) -> None:
    """Every engine event as soon as it happens, those that piled up in one message."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, StopAsyncIteration):
        while True:
            batch = [await events.get(), *events.drain()]
            shown = [e.as_dict() for e in batch if e.kind in SENT_KINDS]
            if shown:
                await websocket.send_text(
                    json.dumps({"type": "events", "dropped": events.dropped, "events": shown})
                )


async def _receive(websocket: WebSocket, engine: Any) -> None:
    bucket = Bucket()
    said = 0.0

    async def say(message: str) -> None:
        nonlocal said
        if time.monotonic() - said >= SAID_EVERY:
            said = time.monotonic()
            await websocket.send_json({"type": "problem", "message": message})

    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            received = await websocket.receive()
            if received["type"] == "websocket.disconnect":
                return
            text = received.get("text")
            if text is None:  # a binary frame
                await say("messages are JSON text")
                continue
            try:
                message = json.loads(text)
            except (ValueError, RecursionError):
                await say("messages are JSON objects")
                continue
            kind = message.get("type") if isinstance(message, dict) else None
            if kind == "play":
                values = checked_values(message, engine.dimension - 1)
                if isinstance(values, str):
                    await say(values)
                elif bucket.take():
                    engine.on_input(SOURCE, values)
                else:
                    await say(f"playing faster than {RATE:g} events a second: some were dropped")
            elif kind == "take":
                await websocket.send_json(await _take(engine, message.get("action")))
            else:
                await say("unknown message")


async def _take(engine: Any, action: Any) -> dict[str, Any]:
    """Start or stop a take (the record button); what happened, for the page."""
    try:
        if action == "start":
            said = await engine.new_take()
        elif action == "stop":
            said = await engine.stop_take()
        else:
            return {"type": "problem", "message": "a take is started or stopped"}
    except CommandError as exc:
        return {"type": "problem", "message": str(exc)}
    return {"type": "take", "said": said, **take_state(engine.status())}


async def audition(request: Request) -> Response:
    """A performance the model plays on its own, now, at the settings playing now."""
    web = state(request)
    engine = web.engine
    if engine is None or engine.model is None:
        raise Refused("nothing is playing: there is no model to audition", 409)
    try:
        seconds = float(request.query_params.get("seconds", "20"))
    except ValueError:
        raise Refused("seconds is a number") from None
    low, high = AUDITION_SECONDS
    if not low <= seconds <= high:
        raise Refused(f"an audition lasts {low:g} to {high:g} seconds")
    path = engine.setup.model_path
    if path is None:
        raise Refused("the model playing has no file to audition", 409)
    playing = engine.model
    settings = (playing.sigmatemp, playing.pitemp, engine.timescale)
    if web.auditioning:
        raise Refused("an audition is being generated already: try again in a moment", 429)

    def generate() -> dict[str, Any]:
        from antiphon.data import generate as generating
        from antiphon.model import loader

        sigmatemp, pitemp, timescale = settings
        predictor = loader.open_model(path, sigmatemp=sigmatemp, pitemp=pitemp)
        played = generating.play(
            predictor, events=AUDITION_EVENTS, seconds=seconds, timescale=timescale
        )
        times = played.events[:, 0].astype(float).cumsum()
        return {
            "model": path.name,
            "sigmatemp": sigmatemp,
            "pitemp": pitemp,
            "timescale": timescale,
            "t": [round(t, 4) for t in times.tolist()],
            "values": [[round(v, 4) for v in row] for row in played.events[:, 1:].T.tolist()],
        }

    web.auditioning = True  # one at a time: each holds the interpreter for up to ~2 s
    try:
        return JSONResponse(await in_thread(generate))
    except AntiphonError as exc:
        raise Refused(str(exc)) from None
    finally:
        web.auditioning = False


routes = [
    Route("/play", page),
    Route("/play/audition", audition, methods=["POST"]),
    WebSocketRoute("/play/ws", socket),
]
