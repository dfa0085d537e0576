"""Does the music keep time while a browser uses the web UI? (`make bench-web`)

The engine's budgets (docs/benchmarks.md, Engine: OSC round trip p99 ≤ 2 ms, onset
p99 ≤ 1 ms, no drift) must hold while someone uses the web UI of the same `antiphon
run`. This plays the bundled D=9 model in `antiphon run` with its web UI (everything on
127.0.0.1, a temporary workspace holding about 40 MB of synthetic performance logs) and
measures the engine through five phases of ``--seconds`` each, in which an HTTP client
does what a browser would:

a. nothing (the baseline);
b. every page in turn (and a log's plot data), one every half second, with the
   dashboard's 2-second poll of /api/status and the live page's WebSocket open;
c. a dataset built from all the logs on the Datasets page, again and again, each job
   followed as its page does;
d. "Download all (.zip)" on the Logs page, again and again, each zip read to the end;
e. a size-s model trained from the Train page, its "Stop after" set to the phase's
   length, its progress followed.

Phases c-e keep b's dashboard poll and live WebSocket. A phase lasts ``--seconds`` and
until its action in progress has finished, so that every sample is taken under load.

How the engine is measured, in every phase:

- It plays in battle mode (the model plays on its own, as in the engine benchmark's
  onset measurement) with input_thru on, configured as the engine benchmark's runs
  are (input not logged, so the logs being built and zipped stay the same).
- Onset lateness, when an event was played minus its deadline, is taken by the engine
  itself for every event it plays, and arrives with the event on the live page's
  WebSocket (``played``, ``deadline``, ``dt``). That is what `python -m
  antiphon.bench.engine` measures in-process, with no second clock involved; a
  measuring WebSocket is therefore open in every phase, the baseline included, and
  events it loses (when it falls behind) are counted. Drift is, per phase, the time
  from its first played event to its last minus the sum of the model's dt × timescale
  between them. With absolute deadlines it is just the last event's lateness minus
  the first's; delays that accumulated would grow it, and so would a stall of more
  than 0.25 s, after which the engine restarts its performance from now (such stalls
  are also counted, from the engine's warnings).
- OSC round trip: a separate process sends ``/interface`` every 10 ms (a sensor at
  100 Hz) and times the ``/impsy`` echo carrying the same values (input_thru). That is
  the path every input takes in polyphony, less its one model step (tens of µs for
  size s, see `antiphon bench`). The pings run in a process of their own so that this
  program's HTTP client cannot delay the measuring thread. An echo that is not back
  within 2 s counts as missed.

Samples are sorted into phases by when they happened on the monotonic clock all
processes share (the engine's clock is its event loop's, ``time.monotonic``; checked
against the WebSocket's hello). Also per phase: the CPU of the `antiphon run` process
(its web UI's worker threads included; training is a process of its own) and the
1-minute load average at the end.

    python benchmarks/web_load.py [--seconds 90] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import websockets

from antiphon.bench.engine import antiphon_run
from antiphon.data import performer
from antiphon.data.dataset import default_name
from antiphon.workspace import init

DIMENSION = 9
LOG_PERFORMANCES = 16  # of ten minutes each: about 40 MB of logs, a workshop's worth
LOG_MINUTES = 10.0
PING_INTERVAL = 0.01
PAGES = (
    "/",
    "/live",
    "/control",
    "/logs",
    "/logs/{log}",
    "/logs/{log}/data",
    "/datasets",
    "/models",
    "/train",
    "/config",
    "/config/setup",
)
PAGE_PAUSE = 0.5  # seconds between pages while browsing
DASHBOARD_POLL = 2.0  # as the dashboard's own script does
JOB_POLL = 0.25  # the pages poll every second; closer here, so the next job starts sooner
TRAIN_SIZE = "s"
TRAIN_GRACE = 120.0  # seconds a training run may take past its limit before it is stopped

PINGER = """\
import json, sys, threading
from antiphon.bench import engine as bench
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
trips = bench.round_trips({server}, {client}, stop=stop, echo=True, interval={interval})
json.dump({{"sent": trips.sent, "seconds": trips.seconds}}, sys.stdout)
"""


# -- the browser ---------------------------------------------------------------------------


class Browser:
    """An HTTP client that uses the web UI as its pages do: CSRF token, origin, redirects."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.AsyncClient(base_url=url, timeout=300, follow_redirects=True)

    async def page(self, path: str) -> httpx.Response:
        response = await self.http.get(path, headers={"accept": "text/html"})
        response.raise_for_status()
        return response

    def form(self, **fields: str) -> dict[str, Any]:
        """A form submission's body and headers, as a page's own form sends it."""
        token = self.http.cookies["antiphon_csrf"]
        return {"data": {"csrf_token": token, **fields}, "headers": {"origin": self.url}}

    async def submit(self, path: str, **fields: str) -> httpx.Response:
        response = await self.http.post(path, **self.form(**fields))
        response.raise_for_status()
        return response

    async def follow(self, page: httpx.Response, stop_after: float | None = None) -> dict:
        """Poll the newest job on ``page`` until it ends; ask it to stop after
        ``stop_after`` (monotonic) as the Stop button does."""
        found = re.search(r'data-job="([0-9a-f]+)"', page.text)
        if found is None:
            raise SystemExit(f"no job on {page.url}: {page.text[:500]}")
        stopped = False
        while True:
            job = (await self.http.get(f"/api/jobs/{found[1]}")).json()
            if job["state"] != "running":
                return job
            if stop_after is not None and time.monotonic() > stop_after and not stopped:
                await self.submit("/train/stop", job=found[1])
                stopped = True
            await asyncio.sleep(JOB_POLL)

    async def close(self) -> None:
        await self.http.aclose()


async def nothing(browser: Browser, until: float, seconds: float) -> str:
    await asyncio.sleep(max(0.0, until - time.monotonic()))
    return "nothing (only the measuring WebSocket)"


async def browse(browser: Browser, until: float, seconds: float) -> str:
    logs = [entry["name"] for entry in (await browser.http.get("/api/logs")).json()]
    for asset in ("/static/antiphon.css", "/static/antiphon.js"):  # then cached
        await browser.page(asset)
    visited = 0
    while time.monotonic() < until:
        path = PAGES[visited % len(PAGES)]
        await browser.page(path.format(log=logs[visited // len(PAGES) % len(logs)]))
        visited += 1
        await asyncio.sleep(PAGE_PAUSE)
    return f"browsed {visited} pages"


async def build_datasets(browser: Browser, until: float, seconds: float) -> str:
    took = []
    while not took or time.monotonic() < until:
        page = await browser.submit("/datasets/build", dimension=str(DIMENSION), synthetic="1")
        job = await browser.follow(page)
        if job["state"] != "done":
            raise SystemExit(f"the dataset build failed: {job['message']}")
        took.append(job["finished"] - job["started"])
    return f"{len(took)} dataset builds, {np.mean(took):.1f} s each ({job['message']})"


async def download_zips(browser: Browser, until: float, seconds: float) -> str:
    sizes, took = [], []
    while not took or time.monotonic() < until:
        started = time.monotonic()
        form = browser.form(all="1")
        async with browser.http.stream("POST", "/logs/archive", **form) as response:
            response.raise_for_status()
            if response.headers["content-type"] != "application/zip":
                raise SystemExit(f"/logs/archive sent {response.headers['content-type']}")
            received = 0
            async for chunk in response.aiter_raw():
                received += len(chunk)
        sizes.append(received)
        took.append(time.monotonic() - started)
    return (
        f"{len(took)} zips of all logs, {np.mean(sizes) / 1e6:.1f} MB in {np.mean(took):.2f} s each"
    )


async def train(browser: Browser, until: float, seconds: float) -> str:
    if importlib.util.find_spec("torch") is None:
        await asyncio.sleep(max(0.0, until - time.monotonic()))
        return "no training: PyTorch is not installed here"
    page = await browser.submit(
        "/train/start",
        dataset=default_name(DIMENSION),
        size=TRAIN_SIZE,
        epochs="100",
        minutes=f"{seconds / 60:g}",
    )
    job = await browser.follow(page, stop_after=until + TRAIN_GRACE)
    return (
        f"training size {TRAIN_SIZE}, at most {seconds / 60:.3g} min: {job['state']} after "
        f"{len(job['epochs'])} epoch(s) ({job['message']})"
    )


async def poll_dashboard(browser: Browser) -> None:
    while True:
        (await browser.http.get("/api/status")).raise_for_status()
        await asyncio.sleep(DASHBOARD_POLL)


async def watch_live(url: str) -> None:
    async with websockets.connect(url.replace("http", "ws", 1) + "/live/ws") as ws:
        async for _ in ws:
            pass


@dataclass
class Phase:
    key: str
    title: str
    action: Callable[[Browser, float, float], Awaitable[str]]
    tabs: bool = True  # the dashboard polled and the live page open


PHASES = [
    Phase("a", "baseline", nothing, tabs=False),
    Phase("b", "browsing", browse),
    Phase("c", "dataset builds", build_datasets),
    Phase("d", "zip downloads", download_zips),
    Phase("e", "training", train),
]


# -- what the engine did -------------------------------------------------------------------


@dataclass
class Onsets:
    """What the measuring WebSocket heard: every event the model played, and losses."""

    played: list[float] = field(default_factory=list)  # time.monotonic()
    late: list[float] = field(default_factory=list)  # seconds after the deadline
    dt: list[float] = field(default_factory=list)  # the model's, to this event
    lost: list[tuple[float, int]] = field(default_factory=list)  # (when, lost so far)
    heard_input: asyncio.Event = field(default_factory=asyncio.Event)

    def lost_by(self, when: float) -> int:
        return max((n for t, n in self.lost if t <= when), default=0)


async def listen(url: str, onsets: Onsets) -> None:
    async with websockets.connect(url.replace("http", "ws", 1) + "/live/ws") as ws:
        hello = json.loads(await ws.recv())
        if abs(hello["now"] - time.monotonic()) > 1.0:
            raise SystemExit("the engine's clock is not time.monotonic: cannot sort samples")
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] != "events":
                continue
            onsets.lost.append((time.monotonic(), message["dropped"]))
            for event in message["events"]:
                if event["kind"] == "input":
                    onsets.heard_input.set()
                elif event["kind"] == "output" and "deadline" in event and not event.get("thru"):
                    onsets.played.append(event["played"])
                    onsets.late.append(event["played"] - event["deadline"])
                    onsets.dt.append(event["dt"])


@dataclass
class Window:
    label: str
    start: float
    end: float
    did: str
    stalls: int
    cpu: float | None = None  # % of a core, the antiphon run process
    load: float | None = None  # at the end


@dataclass
class Result:
    window: Window
    trips_ms: np.ndarray  # NaN: missed
    late_ms: np.ndarray
    lost: int
    drift_ms: float | None  # None: events were lost, so the intervals are unknown


async def run_phase(
    phase: Phase, browser: Browser, seconds: float, engine: psutil.Process
) -> Window:
    print(f"phase {phase.key}: {phase.title} ({seconds:.0f} s)", flush=True)
    stalls = await _stalls(browser)
    cpu = engine.cpu_times()
    start = time.monotonic()
    tabs = [poll_dashboard(browser), watch_live(browser.url)] if phase.tabs else []
    background = [asyncio.create_task(tab) for tab in tabs]
    try:
        did = await phase.action(browser, start + seconds, seconds)
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
    end = time.monotonic()
    used = engine.cpu_times()
    busy = used.user - cpu.user + used.system - cpu.system
    print(f"  {did}", flush=True)
    stalls = await _stalls(browser) - stalls
    label = f"{phase.key}. {phase.title}"
    return Window(label, start, end, did, stalls, 100 * busy / (end - start), os.getloadavg()[0])


async def _stalls(browser: Browser) -> int:
    status = (await browser.http.get("/api/status")).json()["engine"]
    return status["warning_counts"].get("late", 0)


async def measure(url: str, ports: tuple[int, int], pid: int, seconds: float) -> list[Result]:
    """Every phase's result, then the whole run's."""
    browser = Browser(url)
    onsets = Onsets()
    await browser.page("/")  # the CSRF cookie, as any first visit gets it
    timescale = (await browser.http.get("/api/status")).json()["engine"]["timescale"]
    listening = asyncio.create_task(listen(url, onsets))
    server, client = ports
    code = PINGER.format(server=server, client=client, interval=PING_INTERVAL)
    pinger = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        await asyncio.wait_for(onsets.heard_input.wait(), 30)
        await asyncio.sleep(1.0)  # caches warm, the first phase starts on a steady state
        engine = psutil.Process(pid)
        windows = [await run_phase(phase, browser, seconds, engine) for phase in PHASES]
    finally:
        out, _ = await asyncio.to_thread(pinger.communicate)  # closing stdin stops it
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await browser.close()
    trips = json.loads(out)
    sent, answers = np.array(trips["sent"]), np.array(trips["seconds"]) * 1e3
    played, late, dt = (np.array(a) for a in (onsets.played, onsets.late, onsets.dt))

    def result(w: Window) -> Result:
        inside = (played >= w.start) & (played < w.end)
        lost = onsets.lost_by(w.end) - onsets.lost_by(w.start)
        drift = None
        if inside.sum() > 1 and lost == 0:
            # the sum of the intervals played minus the sum of the model's dt x timescale
            span = played[inside][-1] - played[inside][0]
            drift = 1e3 * (span - dt[inside][1:].sum() * timescale)
        trips = answers[(sent >= w.start) & (sent < w.end)]
        return Result(w, trips, late[inside] * 1e3, lost, drift)

    stalls = sum(w.stalls for w in windows)
    whole = Window("whole run", windows[0].start, windows[-1].end, "all of the above", stalls)
    return [result(w) for w in [*windows, whole]]


# -- the instrument ------------------------------------------------------------------------


def make_workspace(root: Path) -> int:
    """A new workspace with a workshop's worth of synthetic logs; returns their bytes."""
    init(root)
    paths = performer.write_logs(
        root / "logs",
        DIMENSION,
        LOG_PERFORMANCES,
        LOG_MINUTES,
        seed=1,
        started=datetime(2024, 3, 1, 10, 0),
    )
    return sum(p.stat().st_size for p in paths)


def _tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def playing(root: Path) -> Iterator[tuple[subprocess.Popen, tuple[int, int], str, list[str]]]:
    """`antiphon run` on ``root`` with its web UI; yields (process, OSC ports, URL,
    what it said on stderr, collected while it runs)."""
    port = _tcp_port()
    web = ("--web-host", "127.0.0.1", "--web-port", str(port))
    with antiphon_run(root, "battle", "--input-thru", *web) as (process, ports, _):
        said: list[str] = []
        threading.Thread(target=lambda: said.extend(process.stderr), daemon=True).start()
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz").json()["playing"]:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"the web UI did not start:\n{''.join(said)}")
            time.sleep(0.2)
        yield process, ports, url, said


COMPLAINTS = ("traceback", "error", "warning")


def complaints(said: list[str]) -> list[str]:
    """The lines of what `antiphon run` said that a reader of the results must see."""
    return [line for line in said if any(w in line.lower() for w in COMPLAINTS)]


def report(text: str, said: list[str], markdown: Path | None) -> None:
    """Print the results and anything `antiphon run` complained of; keep them as markdown."""
    print(text)
    if said_wrong := complaints(said):
        print("antiphon run said:\n" + "".join(said_wrong))
    if markdown:
        markdown.write_text(text, encoding="utf-8")


def realtime(pid: int) -> bool:
    if not hasattr(os, "sched_getscheduler"):
        return False
    return os.sched_getscheduler(pid) & ~os.SCHED_RESET_ON_FORK == os.SCHED_FIFO


# -- the report ----------------------------------------------------------------------------


def _spread(ms: np.ndarray) -> str:
    if len(ms) == 0:
        return "–"
    p50, p99 = np.percentile(ms, [50, 99])
    return f"{p50:.3f} / {p99:.3f} / {ms.max():.2f}"


def to_markdown(results: list[Result], header: str) -> str:
    lines = [
        header,
        "",
        "| phase | what the browser did | OSC round trip (ms) p50 / p99 / max | answered "
        "| onset − deadline (ms) p50 / p99 / max | events | drift (ms) | antiphon run CPU "
        "| load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        w = r.window
        trips = r.trips_ms[~np.isnan(r.trips_ms)]
        events = f"{len(r.late_ms)}" + (f" ({r.lost} not seen)" if r.lost else "")
        drift = "–" if r.drift_ms is None else f"{r.drift_ms:+.2f}"
        drift += f", {w.stalls} stalls" if w.stalls else ""
        cpu = "" if w.cpu is None else f"{w.cpu:.0f} %"
        load = "" if w.load is None else f"{w.load:.2f}"
        lines.append(
            f"| {w.label}, {w.end - w.start:.0f} s | {w.did} | {_spread(trips)} "
            f"| {len(trips)} of {len(r.trips_ms)} | {_spread(r.late_ms)} | {events} | {drift} "
            f"| {cpu} | {load} |"
        )
    lines.append("| budget | | p99 ≤ 2 | all | p99 ≤ 1 | | no drift | | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=90.0, help="length of each phase")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="antiphon-web-load-") as tmp:
        root = Path(tmp)
        print(f"writing {LOG_PERFORMANCES} synthetic performances to {root}/logs", flush=True)
        log_bytes = make_workspace(root)
        with playing(root) as (process, ports, url, said):
            rt = realtime(process.pid)
            results = asyncio.run(measure(url, ports, process.pid, args.seconds))
    header = (
        f"`benchmarks/web_load.py --seconds {args.seconds:g}` on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M')}: `antiphon run` playing the bundled D=9 model "
        f"in battle mode with input_thru, {'with' if rt else 'without'} real-time "
        f"priority; {log_bytes / 1e6:.0f} MB of logs ({LOG_PERFORMANCES} performances); "
        f"load average {load_before:.2f} before the start."
    )
    text = to_markdown(results, header)
    report(text, said, args.markdown)


if __name__ == "__main__":
    main()
