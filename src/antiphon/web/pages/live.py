"""The live page: every control's input and output, pushed to the browser as it happens.

All live pages share one feed: a single subscription to the engine (bounded: a flood
loses old events, never slows the music) batched at most ~30 times a second, each
batch encoded to JSON once, whoever watches. Each page holds at most the latest batch
it has not been sent yet: a page that reads slowly skips batches (counted in
``dropped``), and one whose socket takes nothing for ``STALLED_SECONDS`` is let go.
Sending to one page never waits for another, and the engine never waits for any.

Measured with benchmarks/live_load.py (62 pages, half never reading, 2,000 inputs a
second, on a busy 2-core VM): when each page JSON-encoded every event for itself, the
engine's onsets were late by 0.31 / 35 / 49 ms (p50 / p99 / max) and the OSC round
trip took 0.26 / 38 / 56 ms, with `antiphon run` at 63 % CPU (with 100 pages: 34 /
127 / 140 ms and 3.6 / 135 / 170 ms, 90 %). With one shared feed: 0.09 / 1.9 / 3.1 ms
and 0.18 / 3.7 / 8.9 ms at 22 %; waking the pages' senders ``OFFER_SLICE`` per loop
turn, so that due timers run between them: 0.08 / 0.53 / 5.3 ms and 0.17 / 0.70 / 5.0
ms. Without live pages the same flood gives 0.07 / 0.32 / 1.0 ms and 0.16 / 0.53 /
1.2 ms at 14 %.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Coroutine
from typing import Any, NamedTuple

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from antiphon.web.render import render
from antiphon.web.state import state

BATCH_SECONDS = 0.033
MAX_PAGES = 64  # live pages open at once, all browsers together
STALLED_SECONDS = 10.0  # a page whose socket takes no batch in this long is let go
OFFER_SLICE = 8  # pages woken to send per loop turn
FEED_BUFFER = 4096  # events between two batches; beyond, the oldest are lost (counted)
SHOWN_KINDS = {"input", "output", "mode", "pause", "reset", "setting", "reload", "warning", "stop"}


async def page(request: Request) -> Response:
    engine = state(request).engine
    return render(request, "live.html", status=engine.status() if engine else None)


def hello(engine: Any, status: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a page needs first: the controls' names, the mode, the model, the clock."""
    status = status or engine.status()
    return {
        "type": "hello",
        "now": engine.now(),
        "labels": status["labels"],
        "dimension": status["dimension"],
        "mode": status["mode"],
        "paused": status["paused"],
        "model": status["model"]["name"],
    }


class Batch(NamedTuple):
    """One batch as sent: the JSON after ``{"type": "events", "dropped": N,``."""

    tail: str
    events: int
    lost: int  # events the feed lost before this batch (for every page)


class Viewer:
    """One live page's place in the feed: the latest batch not yet sent, never more."""

    def __init__(self) -> None:
        self.pending: Batch | None = None
        self.dropped = 0  # events this page will never see
        self.ended = False
        self._ready = asyncio.Event()

    def offer(self, batch: Batch) -> None:
        if self.pending is not None:
            self.dropped += self.pending.events
        self.dropped += batch.lost
        self.pending = batch
        self._ready.set()

    def end(self) -> None:
        self.ended = True
        self._ready.set()

    async def next(self) -> Batch | None:
        """The latest batch, once there is one; None when the feed has ended."""
        while self.pending is None and not self.ended:
            self._ready.clear()
            await self._ready.wait()
        batch, self.pending = self.pending, None
        return batch


class Feed:
    """The engine's events for every live page; runs only while a page is open."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.viewers: set[Viewer] = set()
        self._task: asyncio.Task[None] | None = None

    def join(self) -> Viewer | None:
        """A place in the feed, or None when ``MAX_PAGES`` are open."""
        if len(self.viewers) >= MAX_PAGES:
            return None
        viewer = Viewer()
        self.viewers.add(viewer)
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        return viewer

    def leave(self, viewer: Viewer) -> None:
        self.viewers.discard(viewer)
        if not self.viewers and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        with self.engine.subscribe(maxsize=FEED_BUFFER) as events:
            lost = 0
            while True:
                try:
                    first = await events.get()
                except StopAsyncIteration:  # the engine stopped
                    break
                await asyncio.sleep(BATCH_SECONDS)
                batch = [first, *events.drain()]
                shown = [e.as_dict() for e in batch if e.kind in SHOWN_KINDS]
                newly_lost, lost = events.dropped - lost, events.dropped
                if not shown and not newly_lost:
                    continue
                body = json.dumps({"now": self.engine.now(), "events": shown})
                encoded = Batch(body[1:], len(shown), newly_lost)
                for i, viewer in enumerate(list(self.viewers)):
                    viewer.offer(encoded)
                    if i % OFFER_SLICE == OFFER_SLICE - 1:
                        await asyncio.sleep(0)  # due timers run between slices of sends
        for viewer in self.viewers:
            viewer.end()


def feed(websocket: WebSocket, engine: Any) -> Feed:
    """The app's one feed of ``engine``'s events."""
    web = state(websocket)
    if web.live_feed is None:
        web.live_feed = Feed(engine)
    return web.live_feed


async def socket(websocket: WebSocket) -> None:
    engine = state(websocket).engine
    if engine is None:
        await websocket.accept()
        await websocket.send_json({"type": "idle"})
        await websocket.close()
        return
    live = feed(websocket, engine)
    viewer = live.join()
    if viewer is None:
        busy = f"{MAX_PAGES} live pages are open already: close one, then reload this one"
        await websocket.send_denial_response(PlainTextResponse(busy, 503))
        return
    stalled = False
    try:
        await websocket.accept()
        await websocket.send_json(hello(engine))
        _, sent = await until_one_ends(_wait_closed(websocket), _send(websocket, viewer))
        stalled = isinstance(sent, TimeoutError)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        live.leave(viewer)
        if not stalled:  # a stalled socket would never take the close: it is cut instead
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close()


async def until_one_ends(*work: Coroutine[Any, Any, Any]) -> list[Any]:
    """Run a socket's halves (reading and sending) until either ends, then cancel the
    other: what each returned or raised, in order."""
    tasks = [asyncio.create_task(w) for w in work]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
    return await asyncio.gather(*tasks, return_exceptions=True)


async def _send(websocket: WebSocket, viewer: Viewer) -> None:
    while (batch := await viewer.next()) is not None:
        async with asyncio.timeout(STALLED_SECONDS):
            await websocket.send_text(f'{{"type":"events","dropped":{viewer.dropped},{batch.tail}')


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
