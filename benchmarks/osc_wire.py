"""The OSC parser's speed, and what a flood of malformed datagrams costs `antiphon run`.

1. Parsing: µs per datagram for a typical ``/interface`` message of 8 floats, with
   antiphon's parser (``io/oscwire.py``) and with python-osc's, best of several runs;
   and ``floats``, which builds every played event.
2. A flood: `antiphon run` (polyphony, a small model) in a fresh workspace receives
   malformed datagrams at ``--rate`` per second for ``--seconds`` on its OSC port,
   while a performer sends a real ``/interface`` every 50 ms and times the ``/impsy``
   answer. Reported: the process's CPU time and resident memory (before, peak,
   after), how many malformed datagrams it counted (the rest the kernel dropped),
   its warning lines, and the answer times during the flood.

Every datagram goes to 127.0.0.1 only; the flood stops by itself.

    python benchmarks/osc_wire.py [--rate 20000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from pathlib import Path

import httpx
import psutil
from pythonosc.osc_packet import OscPacket

from antiphon.io.oscwire import encode, floats, parse
from antiphon.workspace import Workspace, init

VALUES = [0.125 * i for i in range(8)]
MALFORMED = [
    b"#bundle\0" + bytes(8) + struct.pack(">i", -4) + encode("/impsy/reset", []),
    b"/imp\xffsy\0\0\0\0,\0\0\0",
    floats("/interface", [0.5] * 3)[:-4],
]


def best_microseconds(function, number: int = 20_000, repeat: int = 7) -> float:
    return min(timeit.repeat(function, number=number, repeat=repeat)) / number * 1e6


def parsing() -> dict[str, float]:
    datagram = floats("/interface", VALUES)
    return {
        "antiphon parse (µs)": best_microseconds(lambda: parse(datagram)),
        "python-osc parse (µs)": best_microseconds(lambda: OscPacket(datagram).messages),
        "antiphon floats (µs)": best_microseconds(lambda: floats("/impsy", VALUES)),
        "malformed, refused (µs)": best_microseconds(lambda: _refuse(MALFORMED[0])),
    }


def _refuse(datagram: bytes) -> None:
    with contextlib.suppress(ValueError):
        parse(datagram)


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flood(rate: int, seconds: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "ws"
        init(root)
        workspace = Workspace(root)
        osc, client, web = free_port(), free_port(), free_port(socket.SOCK_STREAM)
        text = workspace.config_path.read_text()
        for old, new in (
            ("dimension = 9 ", "dimension = 4 "),
            ("server_port = 6000", f"server_port = {osc}"),
            ("client_port = 6001", f"client_port = {client}"),
            ("monitor_port = 4001", f"monitor_port = {free_port()}"),
            ("command_port = 4002", f"command_port = {free_port()}"),
        ):
            text = text.replace(old, new)
        workspace.config_path.write_text(text)
        command = [sys.executable, "-m", "antiphon", "run", "--web-port", str(web)]
        process = subprocess.Popen(
            [*command, "--mode", "polyphony", "--quiet"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        http = httpx.Client(base_url=f"http://127.0.0.1:{web}", timeout=10)
        try:
            _wait_playing(http)
            engine = psutil.Process(process.pid)
            time.sleep(1.0)  # settle
            rss_before = engine.memory_info().rss
            cpu_before = sum(engine.cpu_times()[:2])
            peak, answers, stop = [rss_before], [], threading.Event()
            watcher = threading.Thread(target=_watch, args=(engine, peak, stop))
            performer = threading.Thread(target=_perform, args=(osc, client, answers, stop))
            watcher.start()
            performer.start()
            sent = _flood(osc, rate, seconds)
            stop.set()
            watcher.join()
            performer.join()
            time.sleep(0.5)
            cpu = sum(engine.cpu_times()[:2]) - cpu_before
            rss_after = engine.memory_info().rss
            counted = http.get("/api/status").json()["engine"]["warning_counts"]
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=30)
            http.close()
        warnings = [line for line in output.splitlines() if line.startswith("warning:")]
        return {
            "sent": sent,
            "seconds": seconds,
            "counted as osc-malformed": counted.get("osc-malformed", 0),
            "CPU seconds (engine process)": round(cpu, 2),
            "CPU share of one core": f"{100 * cpu / seconds:.0f} %",
            "RSS before / peak / after (MiB)": " / ".join(
                f"{value / 2**20:.1f}" for value in (rss_before, max(peak), rss_after)
            ),
            "warning lines": len(warnings),
            "answers during the flood": len(answers),
            "answer ms p50 / max": (
                f"{1e3 * statistics.median(answers):.1f} / {1e3 * max(answers):.1f}"
                if answers
                else "none"
            ),
            "exit code": process.returncode,
            "traceback": "Traceback" in output,
        }


def _wait_playing(http: httpx.Client) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if http.get("/healthz").json()["playing"]:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("antiphon run did not start")


def _flood(port: int, rate: int, seconds: float) -> int:
    """Send malformed datagrams at ``rate`` per second, paced in 1 ms slices."""
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            due = int(elapsed * rate)
            while sent < due:
                sender.sendto(MALFORMED[sent % len(MALFORMED)], ("127.0.0.1", port))
                sent += 1
            time.sleep(0.001)
    return sent


def _watch(engine: psutil.Process, peak: list[int], stop: threading.Event) -> None:
    while not stop.wait(0.05):
        peak.append(engine.memory_info().rss)


def _perform(osc: int, client: int, answers: list[float], stop: threading.Event) -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as performer,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as synth,
    ):
        synth.bind(("127.0.0.1", client))
        synth.settimeout(1.0)
        while not stop.is_set():
            sent = time.perf_counter()
            performer.sendto(floats("/interface", [0.5, 0.25, 0.75]), ("127.0.0.1", osc))
            try:
                synth.recv(65536)
                answers.append(time.perf_counter() - sent)
            except TimeoutError:
                pass
            stop.wait(0.05)


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--rate", type=int, default=20_000, help="malformed datagrams/s")
    options.add_argument("--seconds", type=float, default=5.0)
    arguments = options.parse_args()
    for name, value in parsing().items():
        print(f"{name:32} {value:.2f}")
    for name, value in flood(arguments.rate, arguments.seconds).items():
        print(f"{name:32} {value}")


if __name__ == "__main__":
    main()
