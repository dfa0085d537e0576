"""The log a real `antiphon run` records, against what happens to it: deleted from the web
UI or a shell while it is recorded, a disk that fills up, a run in which nothing is
played."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from peers import Instrument
from pythonosc.udp_client import SimpleUDPClient

from antiphon.config import parse
from antiphon.data.logs import read_log
from antiphon.engine.recording import Logbook
from waiting import wait_until


def play(instrument: Instrument, value: float, count: int = 5) -> None:
    """``count`` performer events whose first control is ``value``, 20 ms apart."""
    client = SimpleUDPClient("127.0.0.1", instrument.osc_port)
    for i in range(count):
        client.send_message("/interface", [value, 0.5, i / count])
        time.sleep(0.02)  # pacing: the performer's playing


def status(instrument: Instrument) -> dict:
    return instrument.http.get("/api/status").json()["engine"]


def recording(instrument: Instrument) -> Path:
    """The log the engine says it records (relative to where it runs)."""
    return instrument.workspace.root / status(instrument)["log"]


def firsts(path: Path) -> list[float]:
    """The first control of each performer row in a log."""
    log = read_log(path)
    rows = zip(log.values[:, 0], log.sources, strict=True)
    return [round(float(v), 3) for v, source in rows if source == "interface"]


class Output:
    """Everything `antiphon run` prints, collected by a thread as it comes."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.lines.append(line)

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)


def test_the_live_log_cannot_be_deleted_and_a_deleted_one_is_replaced(instrument):
    play(instrument, 0.25)
    live = recording(instrument)
    wait_until(lambda: live.exists() and firsts(live) == [0.25] * 5, what="the first events")

    page = instrument.http.get("/logs", headers={"accept": "text/html"})
    assert f'{live.name}</a> <span class="tag">recording</span>' in page.text
    token = instrument.http.cookies["antiphon_csrf"]
    refused = instrument.http.post(
        "/logs/delete",
        data={"name": live.name, "confirmed": "1", "csrf_token": token},
    )
    assert refused.status_code == 409
    assert refused.text == (
        f"{live.name} is being recorded now; it can be deleted once antiphon has stopped or "
        "restarted (each run records a new log)"
    )
    assert firsts(live) == [0.25] * 5

    live.unlink()  # what a shell, or `antiphon web` in another process, can still do
    play(instrument, 0.75)
    new = wait_until(
        lambda: (p := recording(instrument)) != live and p.exists() and p,
        what="a new log",
    )
    wait_until(lambda: firsts(new) == [0.75] * 5, what="the later events in the new log")
    assert not live.exists()
    out = instrument.stop()
    assert f"the log {live.name} was deleted while it was recorded; recording goes on in " in out
    assert firsts(new) == [0.75] * 5  # nothing played after the deletion was lost


def test_a_run_in_which_nothing_is_played_leaves_no_log(tmp_path):
    instrument = Instrument(tmp_path / "ws")
    instrument.wait_ready()
    assert status(instrument)["log"]  # the name it would have
    instrument.stop()
    assert list(instrument.workspace.logs.iterdir()) == []


@contextlib.contextmanager
def tiny_disk(folder: Path):
    """A 256 KB tmpfs mounted on ``folder``: a disk that really fills up (needs root, as
    the test machines and CI are)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "antiphon-test", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Take every free byte of the disk ``folder`` is on."""
    filler = folder / ".filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, bytes(4096))
    finally:
        os.close(fd)
    return filler


@pytest.mark.slow
def test_a_full_disk_loses_only_what_it_could_not_hold_and_stop_is_clean(tmp_path):
    instrument = Instrument(tmp_path / "ws")
    output = Output(instrument.process)
    try:
        instrument.wait_ready()
        with tiny_disk(instrument.workspace.logs) as logs:
            filler = fill(logs)
            outputs = status(instrument)["outputs"]
            play(instrument, 0.25)  # nowhere to write these
            wait_until(lambda: output.has("cannot write the log"), what="the problem reported")
            assert output.has("(No space left on device): events are being lost, the music goes on")
            # ...and the music went on: every input was answered
            wait_until(lambda: status(instrument)["outputs"] >= outputs + 5, what="answers")

            filler.unlink()  # room again
            play(instrument, 0.5)
            log = recording(instrument)
            wait_until(lambda: log.exists() and firsts(log)[-5:] == [0.5] * 5, what="recording")
            # the last events before the room was made may have been written after it
            late = firsts(log).count(0.25)
            assert firsts(log) == [0.25] * late + [0.5] * 5
            again = f"the log {log.name} is being written again ({5 - late} events"
            wait_until(lambda: output.has(again), what="the recovery reported")

            fill(logs)
            # the log's last 4 KB page has room for some; the rest is lost, and then
            # antiphon is stopped on a full disk
            play(instrument, 0.75, count=150)
            wait_until(
                lambda: sum("cannot write the log" in line for line in output.lines) == 2,
                what="the second problem reported",
            )
            started = time.monotonic()
            instrument.process.terminate()
            assert instrument.process.wait(timeout=30) == 0
            assert time.monotonic() - started < 15
            kept = firsts(log)[late:]
            assert kept[:5] == [0.5] * 5 and 5 < len(kept) < 155 and set(kept[5:]) == {0.75}
            assert not read_log(log).skipped  # whole lines only: failed writes were cut back
    finally:
        if instrument.process.poll() is None:
            instrument.process.kill()
            instrument.process.wait()
        instrument.http.close()


def test_a_reload_that_turns_logging_off_ends_the_take(tmp_path):
    """The take's log is closed with the rest: stopping it afterwards says there is no
    take, as it does when none was started (it once failed an assert on the Play page)."""

    async def scenario():
        book = Logbook(lambda kind, message: None)
        book.open(parse("log_input = true\n"), tmp_path)
        started = await book.new_take(0.0)
        await book.reopen(parse("log_input = false\nlog_predictions = false\n"), tmp_path)
        stopped = await book.stop_take()
        status = book.as_dict(1.0)
        await book.close()
        return started, stopped, status

    started, stopped, status = asyncio.run(scenario())
    assert started.startswith("recording a take")
    assert stopped == "no take is being recorded"
    assert status["take_seconds"] is None and status["log"] is None
