"""The WebSocket channel with real clients (the websockets library)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from peers import Ports, free_port, model_file, play, running, until, write_config
from websockets.asyncio.client import connect

from antiphon.engine.setup import Overrides
from antiphon.io.websocket import parse

MAPPING = '[["note_on", 1], ["control_change", 1, 42], ["control_change", 2, 43, 0, 13]]'


def test_frames_in_and_out_for_every_client_and_note_offs_on_stop(tmp_path):
    ports, port = Ports(), free_port(socket.SOCK_STREAM)
    extra = (
        f'[websocket]\nserver_ip = "127.0.0.1"\nserver_port = {port}\n'
        f"input = {MAPPING}\noutput = {MAPPING}\n"
    )
    config = write_config(
        tmp_path, ports, mode="polyphony", model=model_file(tmp_path), extra=extra
    )

    async def scenario():
        url = f"ws://127.0.0.1:{port}"
        async with running(config, Overrides(timescale=0.001)) as engine:
            assert engine.labels() == ["note ch1", "CC42 ch1", "CC43 ch2"]
            first, second = await connect(url), await connect(url)
            await first.send("/channel/1/noteon/127/100")
            await first.send("/channel/1/cc/42/0")
            await first.send("/channel/9/cc/1/1")  # not mapped: ignored
            for bad in ("hello", "/channel/1/cc/42", "/channel/0/cc/42/1", "/channel/1/cc/x/1"):
                await first.send(bad)
            await until(lambda: engine.inputs == 2)
            assert engine.last_input == [1.0, 0.0, 0.5]
            assert engine.warnings.counts["websocket-frame"] == 4
            for client in (first, second):  # every client hears every answer
                frames = [await asyncio.wait_for(client.recv(), 2) for _ in range(3)]
                assert frames[0].startswith("/channel/1/noteon/") and frames[0].endswith("/127")
                assert frames[1].startswith("/channel/1/cc/42/")
                assert frames[2].startswith("/channel/2/cc/43/")
                assert int(frames[2].rsplit("/", 1)[1]) <= 13
        # stopping ends the sounding note on every client
        for client in (first, second):
            rest = [frame async for frame in client]
            last_note = [f for f in rest if "/note" in f][-1]
            assert parse(last_note).type == "note_off"
            assert last_note.startswith("/channel/1/noteoff/")

    play(scenario())


def test_parse_frames():
    message = parse("/channel/16/noteon/60/100")
    assert (message.type, message.channel, message.note, message.velocity) == (
        "note_on",
        15,
        60,
        100,
    )
    assert parse("/channel/1/noteoff/60/0").type == "note_off"
    cc = parse("/channel/2/cc/7/127\n")
    assert (cc.type, cc.channel, cc.control, cc.value) == ("control_change", 1, 7, 127)
    for bad in ("", "/channel/17/cc/1/1", "/channel/1/pitch/1/1", "/chan/1/cc/1/1"):
        with pytest.raises(ValueError):
            parse(bad)
