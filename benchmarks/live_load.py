"""Do live-page subscribers cost the engine anything? (bounded: about 20 s)

`antiphon run` plays the bundled D=9 model in battle mode with input_thru and its web
UI on 127.0.0.1, while:

- ``--clients`` WebSocket clients open ``/live/ws``; half read everything, half
  complete the handshake and then never read again (their receive buffer is made
  small, so the server's writes back up at once, as with a stalled phone);
- a separate process sends ``--rate`` ``/interface`` messages a second over UDP (a
  flood of sensor input, every one of which the live page shows);
- a separate process times the OSC round trip every 10 ms: ``/interface`` to the
  ``/impsy`` echo of the same values (input_thru), as benchmarks/web_load.py does;
- one more WebSocket, read at once, takes the engine's own onset lateness (played
  minus deadline) of every event the model plays, as benchmarks/web_load.py does.

Reported: for the quiet second before and the ``--seconds`` of load, the OSC round
trip and the onset lateness (p50 / p99 / max, ms), the engine's "late" restarts
(stalls over 0.25 s), the CPU and resident memory of `antiphon run`, and how many live
clients the web UI took and refused. Clients connect from several loopback addresses
(127.0.0.2, 127.0.0.3, ...), as many computers would.

    python benchmarks/live_load.py [--clients 100] [--rate 2000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import psutil
import websockets

sys.path.insert(0, str(Path(__file__).parent))
from web_load import PINGER, complaints, playing

from antiphon.workspace import init

PER_ADDRESS = 10  # live clients per loopback source address
SMALL_BUFFER = 4096  # bytes: a non-reading client's receive buffer

FLOODER = """\
import socket, sys, time
from antiphon.io.osc import message
rate, seconds, port = {rate}, {seconds}, {port}
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
datagram = message("/interface", [0.25] * 8)
start = time.monotonic()
sent = 0
while (now := time.monotonic()) < start + seconds:
    due = int((now - start) * rate)
    while sent < due:
        sock.sendto(datagram, ("127.0.0.1", port))
        sent += 1
    time.sleep(0.002)
print(sent)
"""


@dataclass
class Heard:
    played: list[float] = field(default_factory=list)  # time.monotonic()
    late: list[float] = field(default_factory=list)  # seconds after the deadline
    frames: int = 0


def _source(i: int) -> str:
    return f"127.0.0.{2 + i // PER_ADDRESS}"


async def measure_onsets(url: str, heard: Heard) -> None:
    async with websockets.connect(url, local_addr=("127.0.0.254", 0), max_queue=None) as ws:
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") != "events":
                continue
            heard.frames += 1
            for event in message["events"]:
                if event["kind"] == "output" and "deadline" in event and not event.get("thru"):
                    heard.played.append(event["played"])
                    heard.late.append(event["played"] - event["deadline"])


async def reader(url: str, i: int, took: list[bool]) -> None:
    try:
        async with websockets.connect(url, local_addr=(_source(i), 0), max_queue=None) as ws:
            took.append(True)
            async for _ in ws:
                pass
    except (OSError, websockets.exceptions.WebSocketException):
        took.append(False)


async def non_reader(host: str, port: int, i: int, took: list[bool]) -> socket.socket | None:
    """A client that completes the handshake and never reads again."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    sock.bind((_source(i), 0))
    sock.setblocking(False)
    key = base64.b64encode(os.urandom(16)).decode()
    try:
        await loop.sock_connect(sock, (host, port))
        await loop.sock_sendall(
            sock,
            (
                f"GET /live/ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode(),
        )
        head = await asyncio.wait_for(loop.sock_recv(sock, 1024), 10)
    except (OSError, TimeoutError):
        took.append(False)
        sock.close()
        return None
    took.append(head.startswith(b"HTTP/1.1 101"))
    return sock


def _spread(values_ms: np.ndarray) -> str:
    if len(values_ms) == 0:
        return "–"
    p50, p99 = np.percentile(values_ms, [50, 99])
    return f"{p50:.2f} / {p99:.2f} / {values_ms.max():.1f}"


async def run(root: Path, clients: int, rate: int, seconds: float) -> str:
    with playing(root) as (process, (server, client), url, said):
        engine = psutil.Process(process.pid)
        ws_url = url.replace("http", "ws", 1) + "/live/ws"
        host, port = "127.0.0.1", int(url.rsplit(":", 1)[1])
        heard = Heard()
        measuring = asyncio.create_task(measure_onsets(ws_url, heard))
        pinger = subprocess.Popen(
            [sys.executable, "-c", PINGER.format(server=server, client=client, interval=0.01)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        async with httpx.AsyncClient(base_url=url) as http:
            counts_before = (await http.get("/api/status")).json()["engine"]["warning_counts"]
            await asyncio.sleep(2.0)  # the quiet baseline
            rss_before = engine.memory_info().rss
            quiet_end = time.monotonic()
            took_read: list[bool] = []
            took_stalled: list[bool] = []
            readers, stalled = [], []
            for i in range(clients):  # one after the other, alternately
                if i % 2:
                    stalled.append(await non_reader(host, port, i, took_stalled))
                else:
                    readers.append(asyncio.create_task(reader(ws_url, i, took_read)))
                    while len(took_read) < len(readers):
                        await asyncio.sleep(0.01)
            cpu = engine.cpu_times()
            flood_start = time.monotonic()
            flooder = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    FLOODER.format(rate=rate, seconds=seconds, port=server),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            rss_peak = rss_before
            while flooder.poll() is None:
                rss_peak = max(rss_peak, engine.memory_info().rss)
                await asyncio.sleep(0.2)
            flood_end = time.monotonic()
            used = engine.cpu_times()
            flooded = int(flooder.stdout.read() or 0)  # type: ignore[union-attr]
            status = (await http.get("/api/status")).json()["engine"]
        out, _ = await asyncio.to_thread(pinger.communicate)
        for task in [measuring, *readers]:
            task.cancel()
        await asyncio.gather(measuring, *readers, return_exceptions=True)
        for sock in stalled:
            if sock is not None:
                sock.close()
        said_wrong = complaints(said)
    trips = json.loads(out)
    sent, trip_ms = np.array(trips["sent"]), np.array(trips["seconds"]) * 1e3
    played, late_ms = np.array(heard.played), np.array(heard.late) * 1e3
    late_warnings = status["warning_counts"].get("late", 0) - counts_before.get("late", 0)
    busy = used.user - cpu.user + used.system - cpu.system
    rows = []
    for label, start, end in (
        ("quiet", quiet_end - 2.0, quiet_end),
        ("flood", flood_start, flood_end),
    ):
        trip = trip_ms[(sent >= start) & (sent < end)]
        answered = trip[~np.isnan(trip)]
        onsets = late_ms[(played >= start) & (played < end)]
        rows.append(
            f"| {label} | {_spread(answered)} | {len(answered)} of {len(trip)} "
            f"| {_spread(onsets)} | {len(onsets)} |"
        )
    return "\n".join(
        [
            f"{clients} live clients ({sum(took_read)} of {len(took_read)} reading and "
            f"{sum(took_stalled)} of {len(took_stalled)} not reading were taken), "
            f"{flooded} /interface messages in {flood_end - flood_start:.1f} s "
            f"({flooded / (flood_end - flood_start):.0f}/s)",
            "",
            "| phase | OSC round trip ms p50 / p99 / max | answered "
            "| onset − deadline ms p50 / p99 / max | events |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"antiphon run: {100 * busy / (flood_end - flood_start):.0f} % CPU during the "
            f"flood; RSS {rss_before / 2**20:.0f} MB before, {rss_peak / 2**20:.0f} MB at "
            f"most; engine restarts after a stall (late): {late_warnings}; measuring socket "
            f"frames: {heard.frames}",
            *(["antiphon run said:", *said_wrong[:10]] if said_wrong else []),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rate", type=int, default=2000, help="/interface messages a second")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="antiphon-live-load-") as tmp:
        root = Path(tmp)
        init(root)
        print(asyncio.run(run(root, args.clients, args.rate, args.seconds)))


if __name__ == "__main__":
    main()
