"""The music goes on while the web UI works: no OSC message goes unanswered while a
browser builds a dataset and downloads every log (timings: benchmarks/web_load.py)."""

from __future__ import annotations

import io
import re
import threading
import time
import zipfile
from datetime import datetime

from peers import Instrument

from antiphon import config
from antiphon.bench.engine import RoundTrips, round_trips
from antiphon.data import performer
from waiting import wait_until


def engine_inputs(http) -> int:
    return http.get("/api/status").json()["engine"]["inputs"]


def test_every_osc_message_is_answered_while_a_dataset_builds_and_logs_zip(tmp_path):
    playing = Instrument(tmp_path / "ws", "--timescale", "1e-9")  # polyphony: answers at once
    trips: list[RoundTrips] = []
    stop = threading.Event()
    pinging = None
    try:
        playing.wait_ready()
        logs = performer.write_logs(
            playing.workspace.logs, 4, 6, 3.0, seed=0, started=datetime(2024, 1, 1)
        )
        osc = config.load(playing.workspace.config_path).osc
        pinging = threading.Thread(
            target=lambda: trips.append(
                round_trips(osc.server_port, osc.client_port, stop=stop, controls=3, interval=0.01)
            )
        )
        http = playing.http
        pinging.start()
        wait_until(lambda: engine_inputs(http) >= 5, what="the engine being played")
        http.get("/")
        form = {"csrf_token": http.cookies["antiphon_csrf"]}
        began = time.monotonic()
        build = form | {"dimension": "4", "synthetic": "1"}  # the logs are synthetic
        page = http.post("/datasets/build", data=build, follow_redirects=True)
        job_id = re.search(r'data-job="([0-9a-f]+)"', page.text)[1]
        job = wait_until(
            lambda: (j := http.get(f"/api/jobs/{job_id}").json())["state"] != "running" and j,
            timeout=120,
            what="the dataset build's end",
        )
        zipped = http.post("/logs/archive", data=form | {"all": "1"})
        ended = time.monotonic()
        played = engine_inputs(http)
        wait_until(lambda: engine_inputs(http) >= played + 5, what="play after the work")
    finally:
        stop.set()
        if pinging is not None:
            pinging.join(10)
        playing.stop()
    assert job["state"] == "done", job["message"]
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        assert {p.name for p in logs} <= set(archive.namelist())
    [trip] = trips
    during = [s for t, s in zip(trip.sent, trip.seconds, strict=True) if began <= t <= ended]
    assert len(during) >= 5  # the engine was being played while the web UI worked
    assert trip.missed == 0
