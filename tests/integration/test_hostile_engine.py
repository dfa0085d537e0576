"""A real `antiphon run` against values that used to silence it: each case checks that
the engine still answers a normal input afterwards and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import time

import psutil
import pytest
from peers import Instrument

from antiphon.io.osc import message
from workspaces import edited


def stops_cleanly(instrument: Instrument, within: float = 3.0) -> str:
    instrument.process.send_signal(signal.SIGTERM)
    start = time.monotonic()
    out, _ = instrument.process.communicate(timeout=30)
    took = time.monotonic() - start
    assert instrument.process.returncode == 0, out
    assert took <= within, f"took {took:.1f} s to stop"
    assert "Traceback" not in out, out
    return out


@pytest.fixture
def player(tmp_path):
    """Starts `antiphon run` on a workspace whose config was edited first (``changes``,
    ``adding``: as Instrument takes them)."""
    started: list[Instrument] = []

    def start(changes=None, adding=None) -> Instrument:
        instrument = Instrument(tmp_path / f"ws{len(started)}", changes=changes, adding=adding)
        started.append(instrument)
        return instrument

    yield start
    for instrument in started:
        if instrument.process.poll() is None:
            instrument.stop()


def test_a_tiny_timescale_in_the_config_cannot_starve_the_loop(player):
    instrument = player({"model.timescale": 0.0001})
    instrument.wait_ready()
    assert instrument.command("/impsy/mode", "battle").status_code == 200  # plays on its own
    status = instrument.http.get("/api/status").json()["engine"]  # the web UI still answers
    assert status["mode"] == "battle" and status["timescale"] == 0.0001
    assert instrument.command("/impsy/mode", "polyphony").status_code == 200
    instrument.answers()
    stops_cleanly(instrument)


def test_a_tiny_timescale_sent_over_osc_cannot_starve_the_loop(player):
    instrument = player()
    instrument.wait_ready()
    instrument.send_osc(message("/impsy/mode", ["battle"]))
    instrument.send_osc(message("/impsy/timescale", [0.001]))
    deadline = time.monotonic() + 20
    while instrument.http.get("/api/status").json()["engine"]["timescale"] != pytest.approx(0.001):
        assert time.monotonic() < deadline, "the timescale command was not carried out"
        time.sleep(0.1)
    status = instrument.http.get("/api/status").json()["engine"]
    assert status["outputs_per_second"] <= 1100  # the floor between the model's events
    assert instrument.command("/impsy/mode", "polyphony").status_code == 200
    instrument.answers()
    stops_cleanly(instrument)


def test_values_outside_the_bounds_are_refused_wherever_they_come_from(player):
    instrument = player()
    instrument.wait_ready()
    csrf = {"x-csrf-token": instrument.http.cookies["antiphon_csrf"]}
    body = '{"address": "/impsy/pause", "args": [NaN]}'  # what Python's json module writes
    refused = instrument.http.post("/api/command", content=body, headers=csrf)
    assert refused.status_code == 400 and "1 (on) or 0 (off)" in refused.json()["error"]
    refused = instrument.command("/impsy/timescale", 1e9)
    assert refused.status_code == 400 and "at most 100" in refused.json()["error"]
    instrument.send_osc(message("/impsy/pause", [float("nan")]))
    instrument.send_osc(message("/impsy/timescale", [0.0]))
    deadline = time.monotonic() + 20
    while len(instrument.http.get("/api/status").json()["engine"]["warnings"]) < 2:
        assert time.monotonic() < deadline, "the refused commands were not reported"
        time.sleep(0.1)
    status = instrument.http.get("/api/status").json()["engine"]
    assert status["paused"] is False and status["timescale"] == 1.0
    instrument.answers()
    stops_cleanly(instrument)


def test_many_unknown_addresses_make_few_warnings_and_no_memory(player):
    instrument = player()
    instrument.wait_ready()
    process = psutil.Process(instrument.process.pid)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for batch in range(20):  # 100,000 distinct addresses, paced so the kernel keeps them
            for i in range(5000):
                address = f"/impsy/x{batch}-{i}"
                sender.sendto(message(address, []), ("127.0.0.1", instrument.osc_port))
            time.sleep(0.01)  # pacing the flood
            if batch == 1:
                before = process.memory_info().rss
    instrument.answers()
    grown = process.memory_info().rss - before
    counts = instrument.http.get("/api/status").json()["engine"]["warning_counts"]
    assert set(counts) <= {"unknown command", "other"} | {
        k for k in counts if k.startswith("setup")
    }
    assert grown < 8 * 1024 * 1024, f"memory grew by {grown / 1e6:.1f} MB"
    out = stops_cleanly(instrument)
    assert out.count("unknown command") < 50  # said once, then summarised


def test_a_config_that_cannot_play_keeps_the_web_ui_up_to_fix_it(player):
    instrument = player({"model.dimension": 9})  # the models are of dimension 4
    instrument.wait_ready(playing=False)
    status = instrument.http.get("/api/status").json()["engine"]
    assert status["playing"] is False and "dimension-4 model" in status["problem"]
    page = instrument.http.get("/", headers={"accept": "text/html"}).text
    assert "Not playing:" in page and "dimension-4 model" in page
    fixed = edited(instrument.workspace.config_path.read_text(), {"model.dimension": 4})
    token = {"x-csrf-token": instrument.http.cookies["antiphon_csrf"]}
    applied = instrument.http.put(
        "/api/config", params={"apply": "1"}, content=fixed, headers=token
    )
    assert applied.status_code == 200, applied.text
    assert "reloaded" in applied.json()["flash"]
    status = instrument.http.get("/api/status").json()["engine"]
    assert status["playing"] is True and status["problem"] is None
    instrument.answers()
    stops_cleanly(instrument)


def test_a_config_that_is_not_even_toml_keeps_its_password(player):
    instrument = player(adding={"webui.password": "sesame"})
    instrument.wait_ready()
    path = instrument.workspace.config_path
    path.write_text(path.read_text() + "\n[model\n")  # hand-edited, then a restart
    instrument.stop()
    instrument.start()
    instrument.wait_ready(playing=False)
    assert instrument.http.get("/api/status").status_code == 401  # the password still holds
    out = stops_cleanly(instrument)
    assert "NOT PLAYING" in out and "not valid TOML" in out


def test_without_the_web_ui_a_config_that_cannot_play_stops_with_its_reason(player):
    instrument = player({"model.dimension": 9})  # the models are of dimension 4
    instrument.process.kill()
    instrument.process.wait()
    done = subprocess.run(
        [*instrument.args, "--no-web"],
        cwd=instrument.workspace.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "dimension-4 model" in done.stderr


def test_datagrams_the_system_drops_in_a_flood_are_counted_in_the_status(player):
    instrument = player()
    instrument.wait_ready()
    instrument.process.send_signal(signal.SIGSTOP)  # a stall: nothing is read meanwhile
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(20_000):  # more than any receive buffer holds
                sender.sendto(
                    message("/interface", [0.5, 0.5, 0.5]), ("127.0.0.1", instrument.osc_port)
                )
    finally:
        instrument.process.send_signal(signal.SIGCONT)
    instrument.answers()
    [osc] = [
        c
        for c in instrument.http.get("/api/status").json()["engine"]["channels"]
        if c["name"] == "osc"
    ]
    assert osc["dropped"] > 0 and f"{osc['dropped']} datagrams lost" in osc["state"]
    stops_cleanly(instrument)
