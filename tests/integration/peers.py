"""Real peers for the integration tests: UDP OSC endpoints, configs on free ports, models,
and a real `antiphon run` playing a workspace."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pythonosc.osc_packet import OscPacket

from antiphon.engine import instrument
from antiphon.engine.schedule import new_event_loop
from antiphon.engine.setup import Overrides, Setup, prepare
from antiphon.io.osc import message
from antiphon.workspace import Workspace, init
from workspaces import edit_config, save_model

T = TypeVar("T")


def play(scenario: Awaitable[T]) -> T:
    """Run a test scenario on the same kind of loop `antiphon run` uses."""
    loop = new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(scenario, 60))
    finally:
        loop.close()


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, timeout: float = 30.0) -> None:
    """Until the web UI at ``url`` (http://host:port) answers its health check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not come up in {timeout:g} s")


class Ports:
    """Free ports for everything an engine listens on or sends to."""

    def __init__(self) -> None:
        self.server = free_port()
        self.client = free_port()
        self.monitor = free_port()
        self.command = free_port()

    def toml(self) -> str:
        return (
            f'[osc]\nserver_ip = "127.0.0.1"\nserver_port = {self.server}\n'
            f'client_ip = "127.0.0.1"\nclient_port = {self.client}\n'
            f"[webui]\nmonitor_port = {self.monitor}\ncommand_port = {self.command}\n"
        )


def write_config(
    directory: Path,
    ports: Ports,
    *,
    mode: str = "callresponse",
    dimension: int = 4,
    model: Path | None = None,
    extra: str = "",
    top: str = "",
    threshold: float = 0.1,
    timescale: float = 1.0,
    input_thru: bool = False,
) -> Path:
    path = directory / "config.toml"
    model_line = f'file = "{model}"\n' if model else ""
    path.write_text(
        f"verbose = false\nlog_input = true\nlog_predictions = true\n{top}\n"
        f'[interaction]\nmode = "{mode}"\nthreshold = {threshold}\n'
        f"input_thru = {'true' if input_thru else 'false'}\n"
        f"[model]\ndimension = {dimension}\n{model_line}timescale = {timescale}\n"
        f"{ports.toml()}{extra}",
        encoding="utf-8",
    )
    return path


class OSCPeer(asyncio.DatagramProtocol):
    """A UDP socket that records every OSC message it receives, with arrival time."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[tuple[float, str, list[Any]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def listen(cls, port: int = 0) -> OSCPeer:
        loop = asyncio.get_running_loop()
        _, peer = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", port))
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        now = asyncio.get_running_loop().time()
        for timed in OscPacket(data).messages:
            self.messages.put_nowait((now, timed.message.address, list(timed.message.params)))

    def send(self, port: int, address: str, *args: Any) -> None:
        assert self.transport is not None
        self.transport.sendto(message(address, args), ("127.0.0.1", port))

    def send_raw(self, port: int, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data, ("127.0.0.1", port))

    async def next(self, timeout: float = 2.0) -> tuple[float, str, list[Any]]:
        return await asyncio.wait_for(self.messages.get(), timeout)

    def drain(self) -> list[tuple[float, str, list[Any]]]:
        out = []
        while not self.messages.empty():
            out.append(self.messages.get_nowait())
        return out

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@contextlib.asynccontextmanager
async def running(
    config: Path | None, overrides: Overrides | None = None, model: Path | None = None
) -> AsyncIterator[instrument.Instrument]:
    setup: Setup = prepare(config, overrides or Overrides(), model)
    engine = instrument.Instrument(setup)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (on the loop, in small sleeps: this is a test) until ``condition()`` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


class Instrument:
    """A workspace with two small models, and `antiphon run` playing it on free ports."""

    def __init__(
        self,
        root: Path,
        *extra: str,
        web_port: int | None = None,
        changes: Mapping[str, Any] | None = None,
        adding: Mapping[str, Any] | None = None,
    ) -> None:
        """``changes`` and ``adding``: config keys changed or added after the ports and
        the model are set (as workspaces.edited takes them)."""
        init(root)
        self.workspace = Workspace(root)
        self.osc_port = free_port()
        self.web_port = web_port or free_port(socket.SOCK_STREAM)
        for name, seed in (("a", 0), ("b", 1)):
            save_model(self.workspace.models / f"{name}.safetensors", 4, "xxs", seed)
        self.client_port = free_port()
        edit_config(
            self.workspace.config_path,
            {
                "model.dimension": 4,
                "osc.server_port": self.osc_port,
                "osc.client_port": self.client_port,
                "webui.monitor_port": free_port(),
                "webui.command_port": free_port(),
            },
            adding={"model.file": "models/a.safetensors"},
        )
        if changes or adding:
            edit_config(self.workspace.config_path, changes, adding=adding)
        self.args = [
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
        ]
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.start()

    def start(self) -> None:
        """Start `antiphon run` (again, after ``stop``)."""
        self.process = subprocess.Popen(
            self.args,
            cwd=self.workspace.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def read_until(self, text: str, timeout: float = 30.0) -> list[str]:
        """Lines `antiphon run` prints, up to the first one containing ``text``."""
        lines: list[str] = []
        reader = threading.Thread(target=self._read_lines, args=(lines, text), daemon=True)
        reader.start()
        reader.join(timeout)
        if not lines or text not in lines[-1]:
            raise AssertionError(f"{text!r} not printed; printed: {lines}")
        return lines

    def _read_lines(self, lines: list[str], text: str) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            lines.append(line)
            if text in line:
                return

    def answers(self, timeout: float = 30.0) -> list[float]:
        """Send /interface until the engine answers with /impsy (it plays polyphony)."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as synth:
            synth.bind(("127.0.0.1", self.client_port))
            synth.settimeout(0.5)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                self.send_osc(message("/interface", [0.2, 0.4, 0.6]))
                try:
                    while True:
                        for timed in OscPacket(synth.recv(65536)).messages:
                            if timed.message.address == "/impsy":
                                return list(timed.message.params)
                except TimeoutError:
                    continue
        raise AssertionError("the engine did not answer")

    def send_osc(self, datagram: bytes) -> None:
        """One datagram to the OSC port, as any program on the network could send it."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(datagram, ("127.0.0.1", self.osc_port))

    def wait_ready(self, *, playing: bool = True) -> None:
        """Until the web UI answers and says the engine is ``playing`` (or is not)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.http.get("/healthz").json()["playing"] == playing:
                    return
            except httpx.HTTPError:
                pass
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
