"""The web UI inside a real `antiphon run`: status, commands, live events, reload."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time

import httpx
import pytest
from peers import Instrument
from pythonosc.udp_client import SimpleUDPClient

from workspaces import edited

websockets = pytest.importorskip("websockets")


def test_status_and_commands_go_through_the_engine(instrument):
    status = instrument.http.get("/api/status").json()["engine"]
    assert status["mode"] == "polyphony" and status["model"]["name"] == "a.safetensors"
    done = instrument.command("/impsy/mode", "battle")
    assert done.status_code == 200 and done.json()["status"]["mode"] == "battle"
    assert instrument.command("/impsy/sigmatemp", 0.2).json()["status"]["sigmatemp"] == 0.2
    bad = instrument.command("/impsy/mode", "solo")
    assert bad.status_code == 400 and "solo" in bad.json()["error"]
    unknown = instrument.command("/impsy/explode")
    assert unknown.status_code == 400
    assert instrument.http.get("/control").status_code == 200
    assert "battle" in instrument.http.get("/", headers={"accept": "text/html"}).text


def test_live_socket_pushes_inputs_and_outputs(instrument):
    async def watch() -> list[dict]:
        uri = instrument.url.replace("http", "ws") + "/live/ws"
        async with websockets.connect(uri) as ws:
            hello = json.loads(await ws.recv())
            assert hello["type"] == "hello" and hello["labels"] == ["x1", "x2", "x3"]
            client = SimpleUDPClient("127.0.0.1", instrument.osc_port)
            for _ in range(5):
                client.send_message("/interface", [0.25, 0.5, 0.75])
                await asyncio.sleep(0.05)  # pacing: the performer's playing
            seen: list[dict] = []
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not (
                any(e["kind"] == "input" for e in seen) and any(e["kind"] == "output" for e in seen)
            ):
                message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                seen += message["events"]
            return seen

    events = asyncio.run(watch())
    inputs = [e for e in events if e["kind"] == "input"]
    assert inputs and inputs[0]["values"] == [0.25, 0.5, 0.75] and inputs[0]["source"] == "osc"
    outputs = [e for e in events if e["kind"] == "output"]
    assert outputs and len(outputs[0]["values"]) == 3


def test_use_this_model_reloads_without_restarting(instrument):
    pid = instrument.process.pid
    token = {"x-csrf-token": instrument.http.cookies["antiphon_csrf"]}
    used = instrument.http.post("/api/models/use", json={"name": "b.safetensors"}, headers=token)
    assert used.status_code == 200 and "reloaded" in used.json()["flash"]
    status = instrument.http.get("/api/status").json()["engine"]
    assert status["model"]["name"] == "b.safetensors"
    assert instrument.process.pid == pid and instrument.process.poll() is None


def test_a_bad_config_is_refused_and_the_engine_keeps_playing(instrument):
    token = {"x-csrf-token": instrument.http.cookies["antiphon_csrf"]}
    text = instrument.workspace.config_path.read_text()
    refused = instrument.http.put(
        "/api/config",
        params={"apply": "1"},
        headers=token,
        content=edited(text, {"interaction.mode": "x"}),
    )
    assert refused.status_code == 422
    applied = instrument.http.put(
        "/api/config",
        params={"apply": "1"},
        headers=token,
        content=edited(text, {"interaction.threshold": 0.5}),
    )
    assert applied.status_code == 200, applied.text
    assert instrument.http.get("/api/status").json()["engine"]["threshold"] == 0.5


def test_sigterm_stops_cleanly_with_the_web_ui_running(tmp_path):
    playing = Instrument(tmp_path / "ws")
    playing.wait_ready()
    asyncio.run(_open_live_socket(playing.url))
    out = playing.stop()
    assert playing.process.returncode == 0, out


async def _open_live_socket(url: str) -> None:
    ws = await websockets.connect(url.replace("http", "ws") + "/live/ws")
    await ws.recv()  # leave it open: shutdown must not wait for the browser


def test_a_busy_web_port_does_not_stop_the_music(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        playing = Instrument(tmp_path / "ws", web_port=taken.getsockname()[1])
        said = playing.read_until("web UI not started")
        assert "keeps playing" in said[-1]
        assert playing.answers()  # still playing
        playing.stop()
    assert playing.process.returncode == 0


def test_no_web_serves_nothing(tmp_path):
    playing = Instrument(tmp_path / "ws", "--no-web")
    assert playing.answers()  # playing, and so past the point where a web UI would start
    with pytest.raises(httpx.HTTPError):
        playing.http.get("/healthz")
    playing.stop()
    assert playing.process.returncode == 0


def test_the_web_ui_edits_the_config_being_played(tmp_path):
    """With `antiphon run -c other.toml`, "use this model" changes other.toml, which the
    engine then reloads; config.toml beside it stays as it was."""
    root = tmp_path / "ws"
    setup = Instrument(root)  # a workspace with models a and b on free ports
    setup.wait_ready()
    setup.stop()
    other = root / "other.toml"
    other.write_text(setup.workspace.config_path.read_text())
    before = setup.workspace.config_path.read_text()
    process = subprocess.Popen(
        [sys.executable, "-m", "antiphon", "run", "-c", "other.toml", "--quiet",
         "--web-port", str(setup.web_port)],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        with httpx.Client(base_url=setup.url, timeout=10) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if http.get("/healthz").json()["playing"]:
                        break
                except httpx.HTTPError:
                    assert time.monotonic() < deadline and process.poll() is None
                    time.sleep(0.1)
            used = http.post(
                "/api/models/use",
                json={"name": "b.safetensors"},
                headers={"x-csrf-token": http.cookies["antiphon_csrf"]},
            )
            assert used.status_code == 200, used.text
            assert http.get("/api/status").json()["engine"]["model"]["name"] == "b.safetensors"
            assert 'file = "models/b.safetensors"' in other.read_text()
            assert setup.workspace.config_path.read_text() == before
            assert "other.toml" in http.get("/config").text
    finally:
        process.terminate()
        process.communicate(timeout=20)
