"""The Play page's socket against a real `antiphon run`: what a browser may play, and how
much, and the takes its record button makes."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from antiphon.data.logs import read_log, recording_order
from antiphon.web.pages.play import BURST, RATE
from antiphon.web.serve import WS_MAX_MESSAGE
from waiting import wait_until

websockets = pytest.importorskip("websockets")
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402


def connect(instrument, origin: str | None = "same"):
    uri = instrument.url.replace("http", "ws") + "/play/ws"
    origin = instrument.url if origin == "same" else origin
    # max_queue=None: a browser reads every message. With the library's bounded queue, a
    # test that stops reading stops reading the socket too, and its close then waits 10 s
    # for a close frame it does not read.
    return websockets.connect(uri, origin=origin, max_size=None, max_queue=None)


async def next_of(ws, kind: str, timeout: float = 10.0) -> dict:
    """The next message of this type (events and others in between are passed over)."""
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
        if message["type"] == kind:
            return message


def engine_status(instrument) -> dict:
    return instrument.http.get("/api/status").json()["engine"]


def test_a_page_from_another_site_or_none_cannot_play(instrument):
    async def attempt(origin):
        async with connect(instrument, origin) as ws:
            await ws.recv()

    for origin in ("http://evil.example", None, "null"):
        with pytest.raises(InvalidStatus):
            asyncio.run(attempt(origin))
    assert engine_status(instrument)["inputs"] == 0


def test_playing_is_an_input_from_the_browser_and_the_model_answers(instrument):
    async def scenario() -> tuple[dict, list[dict]]:
        async with connect(instrument) as ws:
            hello = await next_of(ws, "hello")
            seen: list[dict] = []
            for i in range(10):
                await ws.send(json.dumps({"type": "play", "values": [i / 10, 0.5, 0.25]}))
                await asyncio.sleep(0.02)  # a performer's pace
            while not any(e["kind"] == "output" for e in seen):
                seen += (await next_of(ws, "events"))["events"]
            return hello, seen

    hello, events = asyncio.run(scenario())
    assert hello["labels"] == ["x1", "x2", "x3"] and hello["dimension"] == 4
    assert hello["recording"] is False
    inputs = [e for e in events if e["kind"] == "input"]
    assert inputs[0]["source"] == "browser" and inputs[0]["values"] == [0.0, 0.5, 0.25]
    output = next(e for e in events if e["kind"] == "output")
    assert len(output["values"]) == 3 and output["played"] >= output["deadline"]
    wait_until(lambda: engine_status(instrument)["inputs"] == 10, what="the ten inputs")
    assert engine_status(instrument)["last_input"]["source"] == "browser"


@pytest.mark.slow
def test_bad_messages_are_refused_with_a_reason_and_nothing_is_played(instrument):
    bad = [
        "not json",
        "[" * 5000 + "]" * 5000,  # deeper than the parser goes
        json.dumps({"type": "play", "values": [0.5, 0.5]}),  # one control short
        json.dumps({"type": "play", "values": [0.5, 0.5, 1.5]}),
        json.dumps({"type": "play", "values": [0.5, 0.5, float("nan")]}),
        json.dumps({"type": "play", "values": [0.5, True, 0.5]}),
        json.dumps({"type": "play", "values": "0.5,0.5,0.5"}),
        json.dumps({"type": "explode"}),
    ]

    async def scenario() -> list[str]:
        said = []
        async with connect(instrument) as ws:
            await next_of(ws, "hello")
            for text in bad:
                await ws.send(text)
                said.append((await next_of(ws, "problem"))["message"])
                await asyncio.sleep(1.05)  # problems are said at most once a second
            await ws.send(b"\x00\x01")
            said.append((await next_of(ws, "problem"))["message"])
            await asyncio.sleep(1.05)
            await ws.send("x" * (WS_MAX_MESSAGE + 1))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd.code == 1009  # too big
        return said

    assert asyncio.run(scenario()) == [
        "messages are JSON objects",
        "messages are JSON objects",
        "play messages carry 3 values",
        "values must be between 0 and 1",
        "values must be numbers",
        "values must be numbers",
        "play messages carry 3 values",
        "unknown message",
        "messages are JSON text",
    ]
    assert engine_status(instrument)["inputs"] == 0  # nothing bad reached the engine


def test_a_page_plays_at_most_its_rate_and_hears_so(instrument):
    async def scenario() -> tuple[float, str]:
        async with connect(instrument) as ws:
            await next_of(ws, "hello")
            started = time.monotonic()
            for _ in range(1000):
                await ws.send(json.dumps({"type": "play", "values": [0.1, 0.2, 0.3]}))
            said = (await next_of(ws, "problem"))["message"]
            await ws.send(json.dumps({"type": "take", "action": "stop"}))  # a round trip:
            await next_of(ws, "take")  # every play message before it has been handled
            return time.monotonic() - started, said

    elapsed, said = asyncio.run(scenario())
    assert "faster than 200 events a second" in said
    inputs = engine_status(instrument)["inputs"]
    assert BURST <= inputs <= BURST + RATE * elapsed + 1, (inputs, elapsed)


def test_a_take_is_a_log_of_its_own(instrument):
    async def scenario() -> tuple[dict, dict, dict]:
        async with connect(instrument) as ws:
            await next_of(ws, "hello")
            for _ in range(5):  # before the take: in the run's own log
                await ws.send(json.dumps({"type": "play", "values": [0.9, 0.9, 0.9]}))
            await ws.send(json.dumps({"type": "take", "action": "start"}))
            started = await next_of(ws, "take")
            for i in range(60):
                await ws.send(json.dumps({"type": "play", "values": [i / 60, 0.5, 0.5]}))
                await asyncio.sleep(0.01)  # a performer's pace
            await ws.send(json.dumps({"type": "take", "action": "stop"}))
            stopped = await next_of(ws, "take")
            await ws.send(json.dumps({"type": "take", "action": "stop"}))
            again = await next_of(ws, "take")
            return started, stopped, again

    started, stopped, again = asyncio.run(scenario())
    assert started["recording"] is True and stopped["recording"] is False
    assert again["said"] == "no take is being recorded"
    logs = sorted(instrument.workspace.logs.glob("*-browser-4d-mdrnn.log"), key=recording_order)
    assert len(logs) == 2  # the run's log until the take, then the take
    take = logs[1]
    assert stopped["said"] == f"take recorded in {take.name}"
    log = read_log(take)
    assert log.sources.count("interface") == 60 and log.describe_origin() == "played in the browser"
    assert read_log(logs[0]).sources.count("interface") == 5
    listing = instrument.http.get("/logs", headers={"accept": "text/html"}).text
    assert "played in the browser" in listing
