"""The live page: every control's input and output, pushed to the browser as it happens.

Events come from the engine's subscription (bounded: a slow browser loses old events,
never slows the music) and are sent in small batches, at most ~30 a second, so a
flood of input costs the browser frames, not the engine time.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from antiphon.web.app import render, state

BATCH_SECONDS = 0.033
SHOWN_KINDS = {"input", "output", "mode", "pause", "reset", "setting", "reload", "warning", "stop"}


async def page(request: Request) -> Response:
    engine = state(request).engine
    return render(request, "live.html", status=engine.status() if engine else None)


def hello(engine: Any) -> dict[str, Any]:
    status = engine.status()
    return {
        "type": "hello",
        "now": engine.now(),
        "labels": status["labels"],
        "dimension": status["dimension"],
        "mode": status["mode"],
        "paused": status["paused"],
        "model": status["model"]["name"],
    }


async def socket(websocket: WebSocket) -> None:
    await websocket.accept()
    engine = state(websocket).engine
    if engine is None:
        await websocket.send_json({"type": "idle"})
        await websocket.close()
        return
    await websocket.send_json(hello(engine))
    with engine.subscribe(maxsize=1024) as events:
        closed = asyncio.create_task(_wait_closed(websocket))
        try:
            while not closed.done():
                first = asyncio.create_task(events.get())
                await asyncio.wait([first, closed], return_when=asyncio.FIRST_COMPLETED)
                if not first.done():
                    first.cancel()
                    break
                try:
                    batch = [first.result()]
                except StopAsyncIteration:  # the engine stopped
                    break
                await asyncio.sleep(BATCH_SECONDS)
                batch += events.drain()
                await websocket.send_json(
                    {
                        "type": "events",
                        "now": engine.now(),
                        "dropped": events.dropped,
                        "events": [e.as_dict() for e in batch if e.kind in SHOWN_KINDS],
                    }
                )
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            closed.cancel()
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close()


async def _wait_closed(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return


routes = [
    Route("/live", page),
    WebSocketRoute("/live/ws", socket),
]
