"""`antiphon remote` against real instruments on 127.0.0.1: `antiphon web` and `antiphon run`."""

from __future__ import annotations

import http.server
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner
from peers import Instrument, free_port, wait_until_up

from antiphon import config as config_schema
from antiphon import remote as antiphon_remote
from antiphon.cli import cli
from antiphon.data.logs import read_log
from antiphon.io.osc import message
from antiphon.workspace import Workspace, init
from workspaces import edit_config, edited, save_model, write_log


def free_tcp_port() -> int:
    return free_port(socket.SOCK_STREAM)


@pytest.fixture
def web_with_password(tmp_path):
    """`antiphon web` (no engine) on a workspace with the password "pw", two logs and a
    dataset: the instrument `antiphon remote` speaks to; (its address, the workspace)."""
    init(tmp_path / "pi")
    ws = Workspace(tmp_path / "pi")
    edit_config(ws.config_path, adding={"webui.password": "pw"})
    write_log(ws.logs, datetime(2024, 6, 1, 10, 0))
    write_log(ws.logs, datetime(2024, 6, 2, 10, 0))
    (ws.datasets / "training-dataset-9d.npz").write_bytes(b"\x00" * 100)
    port = free_tcp_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "antiphon", "web", str(ws.root), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"127.0.0.1:{port}"
    wait_until_up(f"http://{url}")
    yield url, ws
    process.terminate()
    process.wait(timeout=10)


def remote(*args: str, cwd: Path | None = None, password: str | None = "pw"):
    env = {"ANTIPHON_PASSWORD": password} if password else {}
    old = Path.cwd()
    os.chdir(cwd or old)
    try:
        return CliRunner(env=env).invoke(cli, ["remote", *args])
    finally:
        os.chdir(old)


def test_status_push_model_and_use(web_with_password, tmp_path):
    url, ws = web_with_password
    status = remote("--url", url, "status")
    assert status.exit_code == 0, status.output
    assert "not playing; 2 logs, 1 datasets, 0 models" in status.output
    model = save_model(tmp_path / "mine.safetensors", 9, "xxs", 0)
    pushed = remote("--url", url, "push-model", str(model), "--use")
    assert pushed.exit_code == 0, pushed.output
    assert "uploaded mine.safetensors" in pushed.output and "now plays" in pushed.output
    assert (ws.models / "mine.safetensors").read_bytes() == model.read_bytes()
    assert config_schema.load(ws.config_path).model.file == "models/mine.safetensors"
    again = remote("--url", url, "push-model", str(model), "--use")  # a workshop re-runs it
    assert again.exit_code == 0 and "already has mine.safetensors" in again.output
    changed = save_model(tmp_path / "changed" / "mine.safetensors", 9, "xxs", 5)
    refused = remote("--url", url, "push-model", str(changed))
    assert refused.exit_code == 1 and "a different model called mine" in refused.output


def test_pull_logs_fetches_only_what_is_new(web_with_password, tmp_path):
    url, ws = web_with_password
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    first = remote("--url", url, "pull-logs", cwd=laptop)
    assert first.exit_code == 0, first.output
    assert "2 new logs" in first.output
    for path in ws.logs.iterdir():
        assert (laptop / "logs" / path.name).read_bytes() == path.read_bytes()
    assert remote("--url", url, "pull-logs", cwd=laptop).output.count("0 new logs") == 1
    newest = write_log(ws.logs, datetime(2024, 6, 3, 10, 0))
    later = remote(
        "--url",
        url,
        "pull-logs",
        "--since",
        (datetime.now() - timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S"),
        cwd=laptop,
    )
    assert "1 new logs" in later.output and newest.name in later.output
    datasets = remote("--url", url, "pull-datasets", cwd=laptop)
    assert "1 new datasets" in datasets.output
    assert (laptop / "datasets" / "training-dataset-9d.npz").stat().st_size == 100
    assert not list(laptop.rglob(".*.part"))


def test_push_config_is_checked_by_the_instrument(web_with_password, tmp_path):
    url, ws = web_with_password
    before = ws.config_path.read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text('[interaction]\nmode = "loud"\n')
    refused = remote("--url", url, "push-config", str(bad))
    assert refused.exit_code == 1 and "interaction.mode" in refused.output
    assert ws.config_path.read_text() == before
    good = tmp_path / "good.toml"
    good.write_text(edited(before, {"interaction.threshold": 0.3}))
    accepted = remote("--url", url, "push-config", str(good))
    assert accepted.exit_code == 0 and "Saved config.toml" in accepted.output
    assert config_schema.load(ws.config_path).interaction.threshold == 0.3


def test_password_and_connection_problems_are_explained(web_with_password):
    url, _ = web_with_password
    missing = remote("--url", url, "status", password=None)
    assert missing.exit_code == 1 and "asks for a password" in missing.output
    wrong = remote("--url", url, "status", password="nope")
    assert wrong.exit_code == 1 and "refused the password" in wrong.output
    nobody = remote("--url", f"127.0.0.1:{free_tcp_port()}", "status")
    assert nobody.exit_code == 1 and "cannot reach" in nobody.output
    assert "Traceback" not in nobody.output


def test_one_command_updates_several_instruments(web_with_password, tmp_path):
    url, ws = web_with_password
    model = save_model(tmp_path / "m.safetensors", 9, "xxs", 1)
    result = remote("--url", url, "--url", f"http://{url}/", "status")
    assert result.exit_code == 0 and result.output.count("not playing") == 2
    pushed = remote("--url", url, "push-model", str(model))
    assert pushed.exit_code == 0 and (ws.models / "m.safetensors").exists()


def _rows_on_disk(logs, count: int) -> bool:
    return any(path.read_text().count(",interface,") >= count for path in logs.glob("*.log"))


def test_remote_drives_a_playing_instrument(tmp_path):
    """The workshop loop against `antiphon run` itself: see it play, swap its model and
    settings while it keeps running, and bring back what was just played."""
    pi = Instrument(tmp_path / "pi")
    try:
        pi.wait_ready()
        url = pi.url.removeprefix("http://")
        status = remote("--url", url, "status", password=None)
        assert status.exit_code == 0, status.output
        assert "playing a.safetensors in polyphony mode" in status.output

        player = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(20):
            player.sendto(
                message("/interface", [0.1 * (i % 10), 0.5, 0.5]), ("127.0.0.1", pi.osc_port)
            )
            time.sleep(0.01)  # pacing: the performer's playing
        player.close()
        deadline = time.monotonic() + 30  # the log writer hands rows to disk in batches
        while not _rows_on_disk(pi.workspace.logs, 20):
            assert time.monotonic() < deadline, "the take never reached the disk"
            time.sleep(0.05)

        model = save_model(tmp_path / "new.safetensors", 4, "xxs", 7)
        pushed = remote("--url", url, "push-model", str(model), "--use", password=None)
        assert pushed.exit_code == 0, pushed.output
        assert pi.http.get("/api/status").json()["engine"]["model"]["name"] == "new.safetensors"

        config = tmp_path / "config.toml"
        config.write_text(
            edited(pi.workspace.config_path.read_text(), {"interaction.threshold": 0.4})
        )
        applied = remote("--url", url, "push-config", str(config), "--apply", password=None)
        assert applied.exit_code == 0, applied.output
        assert pi.http.get("/api/status").json()["engine"]["threshold"] == 0.4
        assert pi.process.poll() is None  # the same process played on throughout

        laptop = tmp_path / "laptop"
        laptop.mkdir()
        pulled = remote("--url", url, "pull-logs", cwd=laptop, password=None)
        assert pulled.exit_code == 0 and "1 new logs" in pulled.output, pulled.output
        (log,) = (laptop / "logs").iterdir()
        played = read_log(log)
        assert played.sources.count("interface") == 20 and played.dimension == 4
    finally:
        pi.stop()


def test_pulling_never_loses_a_log(web_with_password, tmp_path):
    """A log that grew replaces its shorter copy; a different log with the same name
    (another instrument started in the same second) is kept beside it."""
    url, ws = web_with_password
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    assert remote("--url", url, "pull-logs", cwd=laptop).exit_code == 0
    name = sorted(p.name for p in ws.logs.iterdir())[0]
    first = (laptop / "logs" / name).read_bytes()

    other = first.replace(b"0.5", b"0.7")[: len(first) // 2]  # same name, another performance
    (ws.logs / name).write_bytes(other)
    pulled = remote("--url", url, "pull-logs", cwd=laptop)
    assert pulled.exit_code == 0 and "1 new logs" in pulled.output, pulled.output
    variant = laptop / "logs" / name.replace("-9d-mdrnn.log", "-2-9d-mdrnn.log")
    assert (laptop / "logs" / name).read_bytes() == first
    assert variant.read_bytes() == other
    assert read_log(variant).dimension == 9

    grown = other + b"2024-06-01T10:00:59.000000,interface,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1\n"
    (ws.logs / name).write_bytes(grown)
    assert "1 new logs" in remote("--url", url, "pull-logs", cwd=laptop).output
    assert variant.read_bytes() == grown and (laptop / "logs" / name).read_bytes() == first
    assert "0 new logs" in remote("--url", url, "pull-logs", cwd=laptop).output
    assert len(list((laptop / "logs").iterdir())) == 3


# -- an instrument that lies -------------------------------------------------------------------

GOOD = "2024-06-01T10-00-00-9d-mdrnn.log"
LINE = b"2024-06-01T10:00:00,interface,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1\n"


class Hostile(http.server.BaseHTTPRequestHandler):
    """Lists names meant to escape --into, and serves whatever is asked for."""

    listing: ClassVar[list] = []
    body = LINE
    downloads: ClassVar[list[str]] = []
    status: ClassVar[object] = {"ok": True}

    def do_GET(self):
        if self.path == "/api/status":
            self._send(json.dumps(self.status).encode())
        elif self.path == "/api/logs":
            self._send(json.dumps(self.listing).encode())
        elif self.path == "/api/datasets":
            self._send(b"[" + b'"x",' * (3 << 20) + b'"x"]')  # 12 MB of JSON
        elif self.path.endswith("/download"):
            self.downloads.append(self.path)
            self._send(self.body)
        else:
            self._send(b'{"ok": true}')

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        error = "\x1b]0;pwned\x07\x1b[2J" + "no" * 1000
        self._send(json.dumps({"error": error}).encode(), 409)

    def _send(self, body: bytes, code: int = 200) -> None:
        self.send_response(code)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hostile():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Hostile.downloads = []
    Hostile.body = LINE
    Hostile.status = {"ok": True}
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def entry(name, size=None, mtime=1.7e9):
    return {"name": name, "size": len(LINE) if size is None else size, "mtime": mtime}


def test_names_from_an_instrument_never_leave_into(hostile, tmp_path):
    escape = tmp_path / "escaped.log"
    Hostile.listing = [
        entry(GOOD),
        entry(f"/../../../..{escape}"),
        entry("../escaped.log"),
        entry("..\\escaped.log"),
        entry("sub/escaped.log"),
        entry(".hidden.log"),
        entry(".log"),
        entry("..log"),
        entry("a-dataset.npz"),
        entry("x" * 300 + ".log"),
        entry("nul\x00.log"),
        entry("bell\x07.log"),
        entry(7),
        entry("negative.log", size=-1),
        entry("never.log", mtime="yesterday"),
        entry("overflow.log", mtime=10**400),  # no float holds it
        "not an entry",
    ]
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    pulled = remote("--url", hostile, "pull-logs", cwd=laptop, password=None)
    assert pulled.exit_code == 0, pulled.output
    assert f"1 new logs into logs ({GOOD})" in pulled.output
    assert pulled.output.count("refused a name from the instrument") == 10
    assert "and 6 more names refused" in pulled.output
    assert [p.name for p in (laptop / "logs").iterdir()] == [GOOD]
    assert not escape.exists() and {p.name for p in tmp_path.iterdir()} == {"laptop"}
    assert Hostile.downloads == [f"/logs/{GOOD}/download"]


def test_pulling_never_writes_through_a_symlink_in_into(hostile, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    logs = tmp_path / "laptop" / "logs"
    logs.mkdir(parents=True)
    (logs / f".{GOOD}.pulled").symlink_to(victim)  # where the download is written
    (logs / GOOD).symlink_to(victim)  # and the name it is kept under
    Hostile.listing = [entry(GOOD)]
    pulled = remote("--url", hostile, "pull-logs", cwd=tmp_path / "laptop", password=None)
    assert pulled.exit_code == 0, pulled.output
    assert victim.read_text() == "keep me"
    variant = logs / GOOD.replace("-9d-", "-2-9d-")
    assert variant.read_bytes() == LINE and (logs / GOOD).is_symlink()
    assert stat.S_IMODE(variant.stat().st_mode) == 0o644


def test_what_an_instrument_says_never_reaches_the_terminal_as_control_codes(hostile, tmp_path):
    Hostile.status = {
        "version": "1\x1b]0;pwned\x07",
        "workspace": {"logs": 1, "datasets": 0, "models": "\x1b[2J"},
        "engine": {
            "problem": "\x1b[31mred",
            "substitutions": [{"message": f"sub{i}\x1b[H"} for i in range(50)],
        },
    }
    said = remote("--url", hostile, "status", cwd=tmp_path, password=None)
    assert said.exit_code == 0, said.output
    assert "\x1b" not in said.output and "\x07" not in said.output
    assert "NOT PLAYING: ?[31mred" in said.output
    assert said.output.count("ERROR: playing sub") == 10
    model = save_model(tmp_path / "m.safetensors", 4, "xxs")
    refused = remote("--url", hostile, "push-model", str(model), cwd=tmp_path, password=None)
    assert refused.exit_code == 1 and "\x1b" not in refused.output
    assert "…" in refused.output and len(refused.output) < 1000  # cut, not 2,000 characters


@pytest.mark.parametrize("status", [{"ok": True}, [], "x", {"workspace": 1, "version": 1}])
def test_a_status_antiphon_cannot_read_is_said_not_a_traceback(hostile, tmp_path, status):
    Hostile.status = status
    said = remote("--url", hostile, "status", cwd=tmp_path, password=None)
    assert said.exit_code == 1 and "is not a status antiphon can read" in said.output
    assert "Traceback" not in said.output


def test_answers_larger_than_their_bound_are_refused(hostile, tmp_path, monkeypatch):
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    huge = remote("--url", hostile, "pull-datasets", cwd=laptop, password=None)
    assert huge.exit_code == 1 and "answered more than 8 MB; not read" in huge.output
    monkeypatch.setitem(antiphon_remote.MAX_DOWNLOAD, "logs", 10_000)
    Hostile.listing = [entry(GOOD)]
    Hostile.body = LINE * 1000  # 64 KB where 10 KB is the most a log may be here
    big = remote("--url", hostile, "pull-logs", cwd=laptop, password=None)
    assert big.exit_code == 1 and f"sent more than 0 MB for {GOOD}; not kept" in big.output
    assert list((laptop / "logs").iterdir()) == []
