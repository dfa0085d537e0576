"""The WebSocket channel with real clients (the websockets library): frames both
ways, and the guards (Origin, client cap, frame size, clients that stop reading)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from peers import Ports, free_port, play, running, until, write_config
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from antiphon.engine.setup import Overrides
from antiphon.io.websocket import MAX_BUFFERED, MAX_CLIENTS, MAX_FRAME, parse
from workspaces import edit_config, model_in

MAPPING = '[["note_on", 1], ["control_change", 1, 42], ["control_change", 2, 43, 0, 13]]'


def config_with_websocket(tmp_path, mode: str = "polyphony") -> tuple[object, str]:
    ports, port = Ports(), free_port(socket.SOCK_STREAM)
    extra = (
        f'[websocket]\nserver_ip = "127.0.0.1"\nserver_port = {port}\n'
        f"input = {MAPPING}\noutput = {MAPPING}\n"
    )
    config = write_config(tmp_path, ports, mode=mode, model=model_in(tmp_path), extra=extra)
    return config, f"ws://127.0.0.1:{port}"


def test_frames_in_and_out_for_every_client_and_note_offs_on_stop(tmp_path):
    config, url = config_with_websocket(tmp_path)

    async def scenario():
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
            await until(lambda: engine.warnings.counts["websocket-frame"] == 4)
            for client in (first, second):  # every client hears every answer
                frames = [await asyncio.wait_for(client.recv(), 5) for _ in range(3)]
                assert frames[0].startswith("/channel/1/noteon/") and frames[0].endswith("/127")
                assert frames[1].startswith("/channel/1/cc/42/")
                assert frames[2].startswith("/channel/2/cc/43/")
                assert int(frames[2].rsplit("/", 1)[1]) <= 13
        # stopping ends the sounding note on every client
        for client in (first, second):
            rest = [frame async for frame in client]
            last_note = [f for f in rest if "/note" in f][-1]
            assert parse(last_note)[0].type == "note_off"
            assert last_note.startswith("/channel/1/noteoff/")

    play(scenario())


def test_velocity_zero_is_a_note_off_and_values_over_127_are_clamped(tmp_path):
    config, url = config_with_websocket(tmp_path, mode="useronly")

    async def scenario():
        async with running(config) as engine, connect(url) as client:
            with engine.subscribe() as events:
                await client.send("/channel/1/noteon/64/0")  # a note-off: no input
                await client.send("/channel/1/cc/42/300")
                await until(lambda: engine.inputs == 1)
                wire = [e.detail.get("wire") for e in events.drain() if e.kind == "input"]
            assert engine.last_input == [0.5, 1.0, 0.5]
            assert wire == ["CC42 ch1 = 127"]
            assert engine.warnings.counts["websocket-range"] == 1

    play(scenario())


def test_browser_pages_from_elsewhere_are_refused_and_native_clients_accepted(tmp_path):
    config, url = config_with_websocket(tmp_path, mode="useronly")

    async def scenario():
        async with running(config) as engine:
            with pytest.raises(InvalidStatus) as refused:
                await connect(url, origin="https://example.org")
            assert refused.value.response.status_code == 403
            assert engine.warnings.counts["websocket-origin"] == 1
            async with connect(url) as native, connect(url, origin="http://localhost:4000") as page:
                await native.send("/channel/1/cc/42/127")
                await until(lambda: engine.inputs == 1)
                await page.send("/channel/1/cc/42/0")
                await until(lambda: engine.inputs == 2)

    play(scenario())


def test_configured_origins_are_accepted(tmp_path):
    config, url = config_with_websocket(tmp_path, mode="useronly")
    edit_config(config, adding={"websocket.allowed_origins": ["https://stage.example.org"]})

    async def scenario():
        async with running(config) as engine:
            async with connect(url, origin="https://stage.example.org") as client:
                await client.send("/channel/1/cc/42/127")
                await until(lambda: engine.inputs == 1)
            with pytest.raises(InvalidStatus):
                await connect(url, origin="https://other.example.org")

    play(scenario())


def test_clients_beyond_the_limit_are_refused_until_one_leaves(tmp_path):
    config, url = config_with_websocket(tmp_path, mode="useronly")

    async def scenario():
        async with running(config) as engine:
            clients = [await connect(url) for _ in range(MAX_CLIENTS)]
            with pytest.raises(InvalidStatus) as refused:
                await connect(url)
            assert refused.value.response.status_code == 503
            assert engine.warnings.counts["websocket-full"] == 1
            await clients.pop().close()
            channel = engine.channels["websocket"]
            await until(lambda: f"{MAX_CLIENTS - 1} clients" in channel.state)
            clients.append(await connect(url))
            for client in clients:
                await client.close()

    play(scenario())


def test_an_oversized_frame_closes_only_that_connection(tmp_path):
    config, url = config_with_websocket(tmp_path, mode="useronly")

    async def scenario():
        async with running(config) as engine, connect(url) as good, connect(url) as bad:
            await bad.send("/channel/1/cc/42/1" + " " * MAX_FRAME)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(bad.recv(), 5)
            assert closed.value.rcvd.code == 1009  # message too big
            await good.send("/channel/1/cc/42/127")
            await until(lambda: engine.inputs == 1)

    play(scenario())


def test_a_client_that_stops_reading_is_skipped_and_costs_bounded_memory(tmp_path):
    config, url = config_with_websocket(tmp_path, mode="useronly")
    port = int(url.rsplit(":", 1)[1])

    async def scenario():
        async with running(config) as engine:
            channel = engine.channels["websocket"]
            stalled = socket.socket()  # completes the handshake, then never reads
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stalled.connect(("127.0.0.1", port))
            stalled.sendall(
                b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            await until(lambda: "1 clients" in channel.state)
            (server_side,) = channel._server.connections
            server_side.transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDBUF, 4096
            )
            async with connect(url) as reader:
                received = 0

                async def read():
                    nonlocal received
                    async for _ in reader:
                        received += 1

                reading = asyncio.create_task(read())
                for _ in range(100_000):
                    if channel.skipped:
                        break
                    channel.send([0.5, 0.5, 0.5])
                    await asyncio.sleep(0)  # let the sockets move
                assert channel.skipped, "the stalled client was never skipped"
                assert server_side.transport.get_write_buffer_size() <= MAX_BUFFERED + 1024
                assert engine.warnings.counts["websocket-slow"] >= 1
                before = received
                channel.send([0.25, 0.25, 0.25])  # the reading client still hears everything
                await until(lambda: received > before)
                reading.cancel()
            stalled.close()

    play(scenario())
