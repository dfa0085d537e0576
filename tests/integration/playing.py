"""A real `antiphon run` on free ports, for tests that need an instrument playing."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from antiphon.model import files
from antiphon.model.mdrnn import Weights
from antiphon.model.presets import Architecture
from antiphon.workspace import Workspace, init


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Instrument:
    """A workspace with two small models, and `antiphon run` playing it on free ports."""

    def __init__(self, root: Path, *extra: str, web_port: int | None = None) -> None:
        init(root)
        self.workspace = Workspace(root)
        self.osc_port = free_port(socket.SOCK_DGRAM)
        self.web_port = web_port or free_port()
        for name, seed in (("a", 0), ("b", 1)):
            files.save(
                self.workspace.models / f"{name}.safetensors",
                files.ModelFile(Weights.random(Architecture.from_size(4, "xxs"), seed)),
            )
        text = self.workspace.config_path.read_text()
        text = text.replace("dimension = 9 ", "dimension = 4 ")
        text = text.replace(
            '# file = "models/my-model.safetensors"', 'file = "models/a.safetensors"'
        )
        text = text.replace("server_port = 6000", f"server_port = {self.osc_port}")
        text = text.replace("client_port = 6001", f"client_port = {free_port(socket.SOCK_DGRAM)}")
        text = text.replace("monitor_port = 4001", f"monitor_port = {free_port(socket.SOCK_DGRAM)}")
        text = text.replace("command_port = 4002", f"command_port = {free_port(socket.SOCK_DGRAM)}")
        self.workspace.config_path.write_text(text)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "antiphon",
                "run",
                "--web-port",
                str(self.web_port),
                "--mode",
                "polyphony",
                "--quiet",
                *extra,
            ],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.http.get("/healthz").json()["playing"]:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(self.stop())

    def command(self, address: str, *args: object) -> httpx.Response:
        return self.http.post(
            "/api/command",
            json={"address": address, "args": list(args)},
            headers={"x-csrf-token": self.http.cookies["antiphon_csrf"]},
        )

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=20)
        self.http.close()
        return out
