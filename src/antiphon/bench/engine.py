"""Engine benchmarks: what a musician feels while `antiphon run` plays.

- start-up: spawning `antiphon run` until it is listening and ready to predict;
- idle CPU in call-and-response mode with nobody playing (psutil, whole process);
- loopback OSC: ``/interface`` sent -> ``/impsy`` received, in polyphony with the
  prediction due at once (timescale ~0), measured from another process;
- resident memory of `antiphon run` after that traffic;
- onset accuracy: played time minus intended deadline for every event of an
  autonomous (battle) performance, and drift: the span of the played performance
  minus the sum of the model's dt x timescale.

``antiphon bench`` runs short versions; ``python -m antiphon.bench.engine --long``
(``make bench-long``) runs the full 30 s idle and 10-minute onset measurements.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from antiphon.bench.rows import Row


def _free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model(folder: Path) -> Path:
    """The bundled D=9 model when there is one, else an untrained size-s D=9 model."""
    from antiphon.model import files, loader
    from antiphon.model.mdrnn import Weights
    from antiphon.model.presets import Architecture

    bundled = loader.bundled_model(9)
    if bundled is not None:
        return bundled
    path = folder / "bench-dim9.safetensors"
    files.save(path, files.ModelFile(Weights.random(Architecture.from_size(9, "s"), 0)))
    return path


@contextmanager
def antiphon_run(folder: Path, mode: str, *extra: str):
    """`antiphon run` in a subprocess with OSC on free ports; yields (process, ports, s)."""
    server, client = _free_port(), _free_port()
    config = folder / f"{mode}.toml"
    config.write_text(
        "verbose = false\nlog_input = false\n"
        # idle is an instrument waiting for the performer (callresponse otherwise plays)
        f'[interaction]\nmode = "{mode}"\nwait_for_performer = true\n[model]\ndimension = 9\n'
        f'[osc]\nserver_ip = "127.0.0.1"\nserver_port = {server}\n'
        f'client_ip = "127.0.0.1"\nclient_port = {client}\n'
        f"[webui]\nmonitor_port = {_free_port()}\ncommand_port = {_free_port()}\n"
        f'host = "127.0.0.1"\nport = {_free_port(socket.SOCK_STREAM)}\n'
    )
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "antiphon", "run", "-c", str(config), str(_model(folder)), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in process.stderr:  # type: ignore[union-attr]
            if "playing; Ctrl-C stops" in line:
                break
        ready = time.perf_counter() - started
        yield process, (server, client), ready
    finally:
        process.terminate()
        process.wait(10)


@dataclass
class RoundTrips:
    """``/interface`` -> ``/impsy`` round trips, one entry per message sent."""

    sent: list[float] = field(default_factory=list)  # time.monotonic() when sent
    seconds: list[float] = field(default_factory=list)  # NaN: no answer within the timeout

    @property
    def answered(self) -> list[float]:
        return [s for s in self.seconds if not math.isnan(s)]

    @property
    def missed(self) -> int:
        return len(self.seconds) - len(self.answered)


def round_trips(
    server: int,
    client: int,
    *,
    rounds: int | None = None,
    stop: threading.Event | None = None,
    echo: bool = False,
    controls: int = 8,
    interval: float = 0.005,
    timeout: float = 2.0,
) -> RoundTrips:
    """Send ``/interface`` (``controls`` values) and time the ``/impsy`` answer,
    ``interval`` apart, ``rounds`` times or until ``stop`` is set.

    Without ``echo`` the next datagram is the answer (polyphony with timescale ~0).
    With ``echo`` every round sends values of its own and only the ``/impsy`` that
    repeats them answers it: the input_thru echo, in a mode where the model also plays
    on its own. Runs on its own thread with real-time priority when the OS allows it
    (as the engine does), so that what is measured is the engine rather than how long
    a busy machine takes to wake this measuring program.
    """
    from antiphon.engine.schedule import request_realtime
    from antiphon.io.osc import message

    trips = RoundTrips()

    def measure() -> None:
        request_realtime()  # this thread only
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
        ):
            receiver.bind(("127.0.0.1", client))
            i = 0
            while (rounds is None or i < rounds) and not (stop is not None and stop.is_set()):
                if echo:  # unique per round, so a late echo never answers a later round
                    values = [(i % 1000) / 1000, (i // 1000 % 1000) / 1000] + [0.5] * controls
                    values = values[:controls]
                else:
                    values = [((i * 37) % 100) / 100] * controls
                datagram = message("/interface", values)
                trips.sent.append(time.monotonic())
                t0 = time.perf_counter()
                sender.sendto(datagram, ("127.0.0.1", server))
                answer = datagram[-4 * len(values) :] if echo else b""
                if _answered(receiver, answer, t0 + timeout):
                    trips.seconds.append(time.perf_counter() - t0)
                else:
                    trips.seconds.append(math.nan)
                i += 1
                time.sleep(interval)

    thread = threading.Thread(target=measure)
    thread.start()
    thread.join()
    return trips


def _answered(receiver: socket.socket, ending: bytes, deadline: float) -> bool:
    """Wait until a datagram ending in ``ending`` arrives, or ``deadline`` passes."""
    while (left := deadline - time.perf_counter()) > 0:
        receiver.settimeout(left)
        try:
            if receiver.recv(1024).endswith(ending):
                return True
        except TimeoutError:
            return False
    return False


def _ping(server: int, client: int, rounds: int) -> list[float]:
    """Round trips in polyphony (an answer is due at once), 5 ms apart."""
    return round_trips(server, client, rounds=rounds).answered


def idle_and_latency(quick: bool) -> list[Row]:
    import psutil

    rows = []
    idle_seconds = 2.0 if quick else 30.0
    with tempfile.TemporaryDirectory() as tmp, antiphon_run(Path(tmp), "callresponse") as run:
        process, _, ready = run
        rows.append(
            Row(
                "engine",
                "antiphon run: start until ready to play (ms)",
                f"{ready * 1e3:.0f}",
                "≤ 1000",
            )
        )
        measured = psutil.Process(process.pid)
        time.sleep(0.5)
        before = measured.cpu_times()
        time.sleep(idle_seconds)
        after = measured.cpu_times()
        busy = (after.user - before.user) + (after.system - before.system)
        rows.append(
            Row(
                "engine",
                f"CPU at idle, call mode waiting for the performer, {idle_seconds:.0f} s "
                "(% of a core)",
                f"{100 * busy / idle_seconds:.2f}",
                "≤ 1",
            )
        )
    rounds = 150 if quick else 2000
    with (
        tempfile.TemporaryDirectory() as tmp,
        antiphon_run(Path(tmp), "polyphony", "--timescale", "1e-9") as run,
    ):
        process, (server, client), _ = run
        latencies = _ping(server, client, rounds)
        ms = np.array(latencies[10:]) * 1e3  # the first few warm caches
        rss = psutil.Process(process.pid).memory_info().rss / 2**20
    rows.append(
        Row(
            "engine",
            f"loopback OSC in -> out, polyphony, {len(ms)} events (ms)",
            f"p50 {np.percentile(ms, 50):.3f}  p99 {np.percentile(ms, 99):.3f}  max {ms.max():.3f}",
            "p99 ≤ 2",
        )
    )
    rows.append(Row("engine", "resident memory of antiphon run (MB)", f"{rss:.1f}", "≤ 80"))
    return rows


async def _onsets(seconds: float, model: Path) -> dict[str, Any]:
    """Run a battle-mode performance for ``seconds`` in this process; time every event."""
    from antiphon.engine.instrument import Instrument
    from antiphon.engine.setup import Overrides, prepare

    late, times, errors = array("d"), array("d"), array("d")

    async def measure(events: Any) -> None:
        first = intended = 0.0
        async for event in events:
            if event.kind != "output":
                continue
            o = event.detail
            if not times:
                first = o["deadline"]
            else:
                intended += o["dt"] * engine.timescale
            late.append(o["played"] - o["deadline"])
            times.append(o["played"] - first)
            # where the model's dt x timescale put this event, counted from the first
            # deadline: a clock that drifts would show as a trend in this error
            errors.append(o["played"] - first - intended)

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text(
            f'log_input = false\n[interaction]\nmode = "battle"\n[model]\ndimension = 9\n'
            f'[osc]\nserver_ip = "127.0.0.1"\nserver_port = {_free_port()}\n'
            f'client_ip = "127.0.0.1"\nclient_port = {_free_port()}\n'
            f"[webui]\nmonitor_port = {_free_port()}\ncommand_port = {_free_port()}\n"
            f'host = "127.0.0.1"\nport = {_free_port(socket.SOCK_STREAM)}\n'
        )
        engine = Instrument(prepare(config, Overrides(seed=0), model))
        events = engine.subscribe(maxsize=10_000)
        consumer = asyncio.get_running_loop().create_task(measure(events))
        await engine.start()
        await asyncio.sleep(seconds)
        await engine.stop()  # closes the subscription, which ends the consumer
        await consumer
    ms = np.frombuffer(late) * 1e3
    error_ms = np.frombuffer(errors) * 1e3
    minutes = np.frombuffer(times) / 60
    return {
        "events": len(ms),
        "missed": events.dropped,
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(ms.max()),
        "over_1ms": float(np.mean(ms > 1.0) * 100),
        "end_error_ms": float(error_ms[-1]),
        "trend_ms_per_min": float(np.polyfit(minutes, error_ms, 1)[0]),
        "span_s": float(times[-1]),
    }


def onset_accuracy(quick: bool, seconds: float | None = None) -> list[Row]:
    seconds = seconds or (3.0 if quick else 60.0)
    with tempfile.TemporaryDirectory() as tmp:
        model = _model(Path(tmp))
        code = (
            "import asyncio, json, sys; from pathlib import Path\n"
            "from antiphon.bench import engine as bench\nfrom antiphon.engine import schedule\n"
            "loop = schedule.new_event_loop(); schedule.request_realtime()\n"
            f"result = bench._onsets({seconds}, Path({str(model)!r}))\n"
            "print(json.dumps(loop.run_until_complete(result)))"
        )
        # one BLAS thread, as in `antiphon run` (this child imports NumPy before antiphon.model)
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return [
        Row(
            "engine",
            f"onset - deadline, battle, {_duration(seconds)}, {result['events']} events (ms)",
            f"p50 {result['p50']:.3f}  p99 {result['p99']:.3f}  max {result['max']:.3f}  "
            f"({result['over_1ms']:.2f} % over 1 ms)",
            "p99 ≤ 1",
        ),
        Row(
            "engine",
            f"drift over {result['span_s']:.0f} s: played time - sum(dt x timescale) (ms)",
            f"{result['end_error_ms']:.3f} at the end, trend "
            f"{result['trend_ms_per_min']:.4f} ms/min",
            "no drift",
        ),
    ]


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def main() -> None:
    from antiphon.bench.rows import to_markdown

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="30 s idle CPU, 10-minute onset run")
    parser.add_argument("--markdown", type=Path, help="also write a markdown table here")
    args = parser.parse_args()
    rows = idle_and_latency(quick=not args.long)
    rows += onset_accuracy(quick=not args.long, seconds=600.0 if args.long else None)
    for row in rows:
        budget = f"   (budget {row.budget})" if row.budget else ""
        print(f"{row.section:<16} {row.name:<60} {row.value}{budget}", flush=True)
    if args.markdown:
        args.markdown.write_text(to_markdown(rows), encoding="utf-8")


if __name__ == "__main__":
    main()
