"""From the engine's output to the Play page's voice, and the engine while a page plays.
(`make bench-play`)

Budgets (docs/benchmarks.md): from the moment the engine plays an event to the moment
the Play page sets its Web Audio voice's parameters from it, p99 ≤ 10 ms on localhost;
and the engine's own timing (onset lateness, OSC round trips) as without the page.

`antiphon run` plays the bundled D=9 model in battle mode with input_thru, as in
`benchmarks/web_load.py`, with the same measuring tools: the live page's WebSocket
carries every played event's deadline and when it was played, and a separate process
times ``/interface`` -> ``/impsy`` round trips at 100 Hz. Two phases of ``--seconds``:

a. baseline: no browser, only the measuring WebSocket and the pinger;
b. the Play page open in headless Chromium (Debian's), its sound started by a click,
   played as a phone would with motion on: a DeviceOrientation event every 16 ms
   sweeping three controls, each one a ``browser`` input through the page's socket.

Output -> voice latency, two moments for every output, both against the engine's
``played`` time (``loop.time()``, which is ``time.monotonic``):

- the page's parameter change: when the page's socket worker hands the new values to
  the voice (``performance.timeOrigin + performance.now()`` in the worker), the
  equivalent of setting an AudioParam. It covers the engine's event hub, the socket's
  sender task, the WebSocket, the worker, and JSON parsing;
- their arrival on the audio thread (``Date.now()`` in the worklet, milliseconds: it
  has no finer clock), which waits for the audio callback: Chromium pulls audio in
  blocks of ``baseLatency`` (10 ms in headless Chromium's silent output), so this is
  the first moment anything can be heard to change, less the output's own latency.

Both clocks are this machine's; the offset between ``time.time()`` and
``time.monotonic()`` is taken here before and after the phase.

Chromium runs at the machine's normal priority; ``--browser-nice -21`` gives its
threads the real-time round-robin policy instead (root only), which shows what the
path costs when the browser is not waiting for a core, as the app in front on a
laptop or phone rarely does.

    python benchmarks/play_latency.py [--seconds 60] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from web_load import (  # a script beside this one
    PING_INTERVAL,
    PINGER,
    Onsets,
    Result,
    Window,
    listen,
    playing,
    realtime,
    report,
    to_markdown,
)

from antiphon.workspace import init

CHROMIUM = "/usr/bin/chromium"
MOVE_EVERY_MS = 16
SWEEP = f"""() => {{
  let i = 0;
  window.benchSweep = setInterval(() => {{
    const phase = (i++ % 240) / 240;
    window.dispatchEvent(new DeviceOrientationEvent("deviceorientation",
      {{alpha: 360 * phase, beta: 180 * phase - 90, gamma: 90 - 180 * phase}}));
  }}, {MOVE_EVERY_MS});
}}"""


def clock_offset() -> float:
    """time.time() - time.monotonic(), taken several times; the closest pair wins."""
    pairs = []
    for _ in range(50):
        a = time.monotonic()
        wall = time.time()
        b = time.monotonic()
        pairs.append((b - a, wall - (a + b) / 2))
    return min(pairs)[1]


def favour_chromium(nice: int) -> int:
    """Give this program's Chromium processes (every thread) a nice value, or with
    ``nice`` below -20 the real-time round-robin policy; returns how many processes."""
    found = [
        child
        for child in psutil.Process().children(recursive=True)
        if "chrom" in child.name().lower()
    ]
    for child in found:
        for thread in child.threads():
            if nice < -20:
                os.sched_setscheduler(thread.id, os.SCHED_RR, os.sched_param(1))
            else:
                os.setpriority(os.PRIO_PROCESS, thread.id, nice)
    return len(found)


async def play_page(url: str, seconds: float, nice: int | None) -> dict:
    """Phase b's browser: the Play page, sound on, played by motion for ``seconds``."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        page = await browser.new_page()
        if nice is not None:
            print(f"  {favour_chromium(nice)} Chromium processes at nice {nice}", flush=True)
        await page.goto(f"{url}/play")
        await page.wait_for_selector("text=connected")
        await page.click('button:text-is("▶ Start sound")')
        await page.wait_for_function("() => window.antiphonVoice.state() === 'running'")
        await page.click('button:text-is("Play with motion")')
        before = clock_offset()
        start = time.monotonic()
        await page.evaluate(SWEEP)
        await asyncio.sleep(seconds)
        await page.evaluate("() => clearInterval(window.benchSweep)")
        end = time.monotonic()
        after = clock_offset()
        latencies = await page.evaluate("() => window.antiphonVoice.latencies")
        handed = await page.evaluate("() => window.antiphonVoice.handed()")
        audio = await page.evaluate(
            "() => { const c = window.antiphonVoice.sound.ctx;"
            " return {base: c.baseLatency, output: c.outputLatency, rate: c.sampleRate}; }"
        )
        await browser.close()
    offset = (before + after) / 2

    def since_played(stamps: list) -> np.ndarray:
        pairs = np.array(stamps, dtype=np.float64).reshape(-1, 2)
        inside = (pairs[:, 0] >= start) & (pairs[:, 0] < end)
        return pairs[inside, 1] - (pairs[inside, 0] + offset) * 1e3

    ms = since_played(latencies)
    return {
        "start": start,
        "end": end,
        "latency_ms": ms,
        "handed_ms": since_played(handed),
        "clock_drift_ms": abs(after - before) * 1e3,
        "audio": audio,
    }


async def measure(
    url: str, ports: tuple[int, int], pid: int, seconds: float, nice: int | None
) -> tuple:
    onsets = Onsets()
    listening = asyncio.create_task(listen(url, onsets))
    server, client = ports
    code = PINGER.format(server=server, client=client, interval=PING_INTERVAL)
    pinger = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    engine = psutil.Process(pid)
    http = httpx.AsyncClient(base_url=url, timeout=30)

    async def counts() -> tuple[int, int]:
        status = (await http.get("/api/status")).json()["engine"]
        return status["inputs"], status["warning_counts"].get("late", 0)

    def cpu() -> float:
        used = engine.cpu_times()
        return used.user + used.system

    try:
        await asyncio.wait_for(onsets.heard_input.wait(), 30)
        await asyncio.sleep(1.0)
        print(f"phase a: baseline ({seconds:.0f} s)", flush=True)
        _, stalls = await counts()
        used, start = cpu(), time.monotonic()
        await asyncio.sleep(seconds)
        end = time.monotonic()
        inputs2, stalls2 = await counts()
        a = Window("a. baseline", start, end, "nothing", stalls2 - stalls)
        a.cpu, a.load = 100 * (cpu() - used) / (end - start), os.getloadavg()[0]
        print(f"phase b: the Play page played by motion ({seconds:.0f} s)", flush=True)
        used = cpu()
        page = await play_page(url, seconds, nice)
        inputs3, stalls3 = await counts()
        did = (
            f"Play page: sound on, motion every {MOVE_EVERY_MS} ms "
            f"({(inputs3 - inputs2) / (page['end'] - page['start']):.0f} inputs/s in all, "
            f"100 of them the pinger's)"
        )
        b = Window("b. Play page playing", page["start"], page["end"], did, stalls3 - stalls2)
        b.cpu = 100 * (cpu() - used) / (page["end"] - page["start"])
        b.load = os.getloadavg()[0]
    finally:
        out, _ = await asyncio.to_thread(pinger.communicate)
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await http.aclose()
    trips = json.loads(out)
    sent, answers = np.array(trips["sent"]), np.array(trips["seconds"]) * 1e3
    played, late = np.array(onsets.played), np.array(onsets.late)
    results = []
    for w in (a, b):
        inside = (played >= w.start) & (played < w.end)
        lost = onsets.lost_by(w.end) - onsets.lost_by(w.start)
        window_trips = answers[(sent >= w.start) & (sent < w.end)]
        results.append(Result(w, window_trips, late[inside] * 1e3, lost, None))
    return results, page


def latency_markdown(page: dict) -> str:
    def row(title: str, ms: np.ndarray) -> str:
        p50, p99 = np.percentile(ms, [50, 99])
        return f"| {title} | {p50:.2f} | {p99:.2f} | {ms.max():.2f} | {len(ms)} |\n"

    audio = page["audio"]
    return (
        "| engine output → (ms) | p50 | p99 | max | outputs |\n"
        "|---|---|---|---|---|\n"
        + row("the Play page's new voice parameters, handed to the audio thread", page["handed_ms"])
        + row("… and received on the audio thread (at its next callback)", page["latency_ms"])
        + "| budget, to the page's parameter change | | ≤ 10 | | |\n\n"
        f"Then the audio thread: a render quantum of 128 frames at {audio['rate']:g} Hz "
        f"({128 / audio['rate'] * 1e3:.1f} ms), baseLatency {audio['base'] * 1e3:.1f} ms, "
        f"outputLatency {audio['output'] * 1e3:.1f} ms (Chromium's headless audio sink). "
        f"time.time() and time.monotonic() moved {page['clock_drift_ms']:.3f} ms apart "
        "during the phase.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each phase")
    parser.add_argument("--markdown", type=Path, help="also write the tables here")
    parser.add_argument(
        "--browser-nice",
        type=int,
        help="run Chromium at this nice value (-10: the browser is the app in front, as a "
        "desktop's scheduler treats it; needs root)",
    )
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit("needs Debian's chromium: apt-get install chromium")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="antiphon-play-") as tmp:
        root = Path(tmp)
        init(root)
        with playing(root) as (process, ports, url, said):
            rt = realtime(process.pid)
            results, page = asyncio.run(
                measure(url, ports, process.pid, args.seconds, args.browser_nice)
            )
    header = (
        f"`benchmarks/play_latency.py --seconds {args.seconds:g}` on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M')}: `antiphon run` playing the bundled D=9 model "
        f"in battle mode with input_thru, {'with' if rt else 'without'} real-time priority; "
        f"headless Chromium on the same machine"
        + (f" at nice {args.browser_nice}" if args.browser_nice is not None else "")
        + f"; load average {load_before:.2f} before."
    )
    text = to_markdown(results, header) + "\n" + latency_markdown(page)
    report(text, said, args.markdown)


if __name__ == "__main__":
    main()
