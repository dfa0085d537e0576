"""A real `antiphon run` stopped (SIGTERM) while one of its web jobs is running: it exits
0 at once, with note-offs sent and the log closed by the engine, no traceback, and no
job process left behind."""

from __future__ import annotations

import os
import re
import signal
import time

import psutil
import pytest
from peers import Instrument
from pythonosc.udp_client import SimpleUDPClient

from antiphon.data import dataset as datasets
from antiphon.data.logs import read_log
from antiphon.data.performer import Performer

HTML = {"accept": "text/html"}


def post(instrument: Instrument, path: str, **fields: str) -> str:
    token = instrument.http.cookies["antiphon_csrf"]
    response = instrument.http.post(
        path, data={"csrf_token": token, **fields}, headers=HTML, follow_redirects=True
    )
    assert response.status_code == 200, response.text
    return re.search(r'data-job="([0-9a-f]+)"', response.text)[1]


def wait_for_job(instrument: Instrument, job_id: str, until, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = instrument.http.get(f"/api/jobs/{job_id}").json()
        if until(job):
            return job
        assert time.monotonic() < deadline, job
        assert job["state"] == "running", job  # it must still be running when stopped
        time.sleep(0.1)


def job_processes(instrument: Instrument, marker: str) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(instrument.process.pid).children(recursive=True):
        try:
            if marker in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def play_one_event(instrument: Instrument) -> None:
    """Something for the log to hold: it is written out only if the engine stops cleanly."""
    SimpleUDPClient("127.0.0.1", instrument.osc_port).send_message("/interface", [0.25, 0.5, 0.75])
    deadline = time.monotonic() + 10
    while instrument.http.get("/api/status").json()["engine"]["inputs"] < 1:
        assert time.monotonic() < deadline, "the engine did not hear the event"
        time.sleep(0.1)


def stop_and_check(instrument: Instrument, children: list[psutil.Process]) -> str:
    started = time.monotonic()
    instrument.process.send_signal(signal.SIGTERM)
    out, _ = instrument.process.communicate(timeout=30)  # a hang fails here
    print(f"antiphon run exited {time.monotonic() - started:.2f} s after SIGTERM")
    instrument.http.close()
    assert instrument.process.returncode == 0, out
    assert "Traceback" not in out, out
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"job processes left behind: {alive}"
    (log,) = [p for p in instrument.workspace.logs.glob("2*-4d-mdrnn.log") if p.is_file()]
    played = read_log(log)
    assert [0.25, 0.5, 0.75] in played.values.tolist(), "the log was not flushed and closed"
    return out


@pytest.fixture
def instrument(tmp_path):
    """As conftest's, but each test stops it itself and reads what it said."""
    playing = Instrument(tmp_path / "ws")
    playing.wait_ready()
    yield playing
    if playing.process.poll() is None:  # the test failed before stopping it
        playing.stop()


def test_sigterm_during_a_dataset_build_stops_the_build_and_the_engine(instrument):
    # A log that is a named pipe nobody writes: the build's worker blocks reading it, so
    # it is certainly mid-build when antiphon is stopped.
    os.mkfifo(instrument.workspace.logs / "2024-05-01T10-00-00-4d-mdrnn.log")
    play_one_event(instrument)
    job_id = post(instrument, "/datasets/build", dimension="4")
    wait_for_job(instrument, job_id, lambda j: j["message"].startswith("Reading the 4d logs"))
    (worker,) = job_processes(instrument, "multiprocessing.spawn")
    assert worker.is_running()

    stop_and_check(instrument, [worker])
    assert not (instrument.workspace.datasets / "training-dataset-4d.npz").exists()


@pytest.mark.slow
def test_sigterm_during_training_keeps_the_best_model_and_stops_the_engine(instrument):
    pytest.importorskip("torch")
    performer = Performer(4, seed=3)
    data = datasets.Dataset.from_performances([performer.performance(20) for _ in range(3)])
    datasets.save(instrument.workspace.datasets / "training-dataset-4d.npz", data)
    play_one_event(instrument)
    job_id = post(
        instrument, "/train/start", dataset="training-dataset-4d.npz", size="xxs", epochs="500"
    )
    wait_for_job(instrument, job_id, lambda j: j["epochs"])
    (training,) = job_processes(instrument, "antiphon train")

    stop_and_check(instrument, [training])
    models = instrument.workspace.models
    (kept,) = [p for p in models.glob("mdrnn-dim4-xxs-*.safetensors")]
    assert list(models.glob("*.checkpoint.pt")), "the checkpoint stays, to resume from"
    assert kept.stat().st_size > 0
