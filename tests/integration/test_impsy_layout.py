"""IMPSY users' layouts and habits with a real `antiphon run`: a fresh run plays at
once, an IMPSY project runs from its root, whatever is played in place of what was
asked is an error everywhere the instrument is watched, `antiphon web` beside a
running engine, and `push-model --use` of a model that cannot play."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import tomlkit
from peers import Instrument, free_port, wait_until_up

from antiphon.data.logs import write_events
from antiphon.workspace import init
from workspaces import edit_config, save_model

NO_DOCKER = """\
# Outside Docker, host.docker.internal names no machine: answer so at once, as a
# resolver without that name would, instead of asking the network's name server.
import socket

_resolve = socket.getaddrinfo


def _without_docker(host, *args, **kwargs):
    if host == "host.docker.internal":
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return _resolve(host, *args, **kwargs)


socket.getaddrinfo = _without_docker
"""


def antiphon(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "antiphon", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def lines_until(process: subprocess.Popen, wanted: str, timeout: float = 30.0) -> list[tuple]:
    """(time, line) for each line printed until one contains ``wanted``."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append((time.monotonic(), line))
        if wanted in line:
            return seen
    raise AssertionError(f"{wanted!r} not printed: {''.join(line for _, line in seen)}")


def stop(process: subprocess.Popen) -> str:
    if process.poll() is None:
        process.terminate()
    out, _ = process.communicate(timeout=30)
    return out


def free_ports(text: str, web: int) -> str:
    """A config's listeners moved to free ports, its web UI on ``web``."""
    document = tomlkit.parse(text)
    if "osc" in document:
        document["osc"]["server_port"] = free_port()
        document["osc"]["client_port"] = free_port()
    webui = document.setdefault("webui", tomlkit.table())
    webui["port"] = web
    webui["monitor_port"] = free_port()
    webui["command_port"] = free_port()
    return tomlkit.dumps(document)


def test_a_fresh_run_plays_the_model_at_once_with_nobody_playing(tmp_path):
    """What `make run` does: a new workspace, `antiphon run --verbose`, and the model's
    output printed (IMPSY's workshop: "you'll see the outputs")."""
    init(tmp_path / "workspace")
    config = tmp_path / "workspace" / "config.toml"
    web = free_port(socket.SOCK_STREAM)
    config.write_text(free_ports(config.read_text(), web))
    started = time.monotonic()
    process = antiphon("run", "--verbose", cwd=tmp_path / "workspace")
    try:
        banner = lines_until(process, "playing; Ctrl-C stops")
        text = "".join(line for _, line in banner)
        assert "mode callresponse (plays from the start, answers after 0.1 s" in text
        playing = banner[-1][0]
        printed = lines_until(process, " out ")
        first = printed[-1]
        assert first[1].startswith(" out  dt ")
        print(  # a measurement to report, not a timed assertion
            f"first output printed {(first[0] - playing) * 1000:.0f} ms after the banner, "
            f"{first[0] - started:.2f} s after `antiphon run` started"
        )
    finally:
        stop(process)


def test_an_impsy_project_runs_from_its_root_and_says_what_it_plays_instead(tmp_path, impsy_dir):
    """`antiphon run -c configs/pd-workshop-example.toml` in an IMPSY project whose model
    is not there: the bundled model plays and the address falls back, each said as an
    error with its reason and fix in the banner, /api/status, the dashboard and
    `antiphon remote status`; logs and the web UI's workspace are the project's."""
    project = tmp_path / "project"
    for folder in ("configs", "models", "logs", "datasets"):
        (project / folder).mkdir(parents=True)
    web = free_port(socket.SOCK_STREAM)
    text = (impsy_dir / "configs" / "pd-workshop-example.toml").read_text()
    assert 'client_ip = "host.docker.internal"' in text
    (project / "configs" / "pd.toml").write_text(free_ports(text, web))
    earlier = write_events(project / "logs", np.full((3, 4), 0.5, np.float32))
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_DOCKER)
    env = {**os.environ, "PYTHONPATH": str(site)}
    process = antiphon("run", "-c", "configs/pd.toml", cwd=project, env=env)
    url = f"http://127.0.0.1:{web}"
    try:
        banner = "".join(line for _, line in lines_until(process, "Ctrl-C stops"))
        errors = [line for line in banner.splitlines() if line.startswith("error: PLAYING ")]
        assert len(errors) == 2, banner
        address, model = sorted(errors)
        assert "the bundled default model for dimension 4" in model
        assert "models/musicMDRNN-dim4-layers2-units64-mixtures5-scale10.tflite" in model
        assert "Fix: put the model at" in model and "(the working directory)" in model
        assert "sending to 127.0.0.1 (this machine) instead of [osc].client_ip" in address
        assert "Fix: set [osc].client_ip" in address
        assert "(in place of host.docker.internal, which does not resolve)" in banner
        assert "playing, but not as asked (see the errors above)" in banner
        wait_until_up(url)

        engine = httpx.get(f"{url}/api/status").json()["engine"]
        shown = [s["message"] for s in engine["substitutions"]]
        assert sorted(f"error: PLAYING {m}" for m in shown) == [address, model]
        log = (project / engine["log"]).resolve()
        assert log.parent == (project / "logs").resolve()  # not configs/logs
        listed = [entry["name"] for entry in httpx.get(f"{url}/api/logs").json()]
        assert earlier.name in listed  # the web UI's workspace is the project

        dashboard = httpx.get(f"{url}/").text
        assert "Not playing as asked" in dashboard
        assert dashboard.count("<strong>Fix:</strong>") == 2
        assert "out 127.0.0.1 (in place of host.docker.internal" in dashboard  # the address used

        status = subprocess.run(
            [sys.executable, "-m", "antiphon", "remote", "--url", url, "status"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0, status.stderr
        assert status.stderr.count("ERROR: playing ") == 2
        assert f"{url}: ERROR: playing the bundled default model" in status.stderr
    finally:
        out = stop(process)
    assert not (project / "configs" / "logs").exists(), out


def test_antiphon_web_beside_antiphon_run_says_where_the_web_ui_is(tmp_path):
    """IMPSY's two processes (`impsy run` and `impsy webui`, as two services): antiphon's
    run serves the web UI itself, and `antiphon web` (or `webui`) says so."""
    instrument = Instrument(tmp_path / "ws")
    try:
        instrument.wait_ready()
        config = instrument.workspace.config_path
        edit_config(config, {"webui.port": instrument.web_port})  # where it does serve
        for name in ("web", "webui"):
            beside = subprocess.run(
                [sys.executable, "-m", "antiphon", name, str(instrument.workspace.root)],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert beside.returncode == 0, beside.stderr
            assert "`antiphon run` is already playing here and serves the web UI itself" in (
                beside.stdout
            )
            assert f"http://localhost:{instrument.web_port}/" in beside.stdout
        assert instrument.process.poll() is None  # and the instrument plays on
    finally:
        instrument.stop()


def test_push_model_use_of_the_wrong_dimension_leaves_nothing_behind(instrument, tmp_path):
    nine = save_model(tmp_path / "nine.safetensors", 9, "xxs")
    url = f"127.0.0.1:{instrument.web_port}"
    before = sorted(p.name for p in instrument.workspace.models.iterdir())
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "antiphon",
            "remote",
            "--url",
            url,
            "push-model",
            str(nine),
            "--use",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    assert "nine.safetensors has dimension 9 but config.toml has dimension 4" in refused.stderr
    assert sorted(p.name for p in instrument.workspace.models.iterdir()) == before
    kept = subprocess.run(  # without --use it is only stored, as before
        [sys.executable, "-m", "antiphon", "remote", "--url", url, "push-model", str(nine)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert kept.returncode == 0, kept.stderr
    assert (instrument.workspace.models / "nine.safetensors").exists()
