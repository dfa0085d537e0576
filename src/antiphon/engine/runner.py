"""Run a performance: the engine plus any number of async services on one loop.

``perform(setup, services)`` starts the engine, runs each service (a coroutine
function taking the engine: the verbose printer, the web UI, ...) until SIGINT or
SIGTERM, then shuts down cleanly: note-offs sent, log flushed, ports closed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence

from antiphon.engine.events import EngineEvent
from antiphon.engine.instrument import Instrument
from antiphon.engine.schedule import new_event_loop, request_realtime
from antiphon.engine.setup import Setup

log = logging.getLogger("antiphon")

PRINT_INTERVAL = 0.05
"""Seconds the verbose printer lets lines gather before writing them."""

SWITCH_INTERVAL = 0.0005  # seconds

Service = Callable[[Instrument], Awaitable[None]]
"""Something that runs beside the engine until cancelled (the web UI is one)."""


def run(setup: Setup, services: Sequence[Service] = ()) -> int:
    """Play until SIGINT/SIGTERM; returns the process exit code."""
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    # Another thread of this process (the web UI's file work, the log writer) keeps the
    # interpreter lock up to this long before a due event can be played: 5 ms by default.
    sys.setswitchinterval(SWITCH_INTERVAL)
    if request_realtime():
        log.info("timing: real-time scheduling priority")
    try:
        return loop.run_until_complete(perform(setup, services))
    finally:
        loop.close()
        asyncio.set_event_loop(None)


async def perform(
    setup: Setup,
    services: Sequence[Service] = (),
    *,
    stop: asyncio.Event | None = None,
) -> int:
    """Run the engine and ``services`` until ``stop`` is set or a signal arrives."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    handled = []
    for signum in (signal.SIGINT, signal.SIGTERM):  # before anything can need cleaning up
        try:
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
    engine = Instrument(setup)
    try:
        await engine.start()
    except BaseException:
        for signum in handled:
            loop.remove_signal_handler(signum)
        raise
    for level, line in banner(engine):
        log.log(level, line)
    tasks = [loop.create_task(service(engine)) for service in services]
    for task in tasks:
        task.add_done_callback(_report_ended_service)
    try:
        await stop.wait()  # a service that ends or fails does not stop the music
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for signum in handled:
            loop.remove_signal_handler(signum)
        await engine.stop()
    return 0


def _report_ended_service(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        name = getattr(task.get_coro(), "__qualname__", "a service")
        log.error("%s stopped: %s (antiphon keeps playing)", name, task.exception())


def banner(engine: Instrument) -> list[tuple[int, str]]:
    """What is playing and where, said once at start: (logging level, line) pairs.
    Whatever is played in place of what was asked is an error line."""
    from antiphon import __version__

    status = engine.status()
    if engine.problem is not None:
        return [
            (logging.ERROR, f"antiphon {__version__}: NOT PLAYING: {engine.problem}"),
            (
                logging.ERROR,
                "the web UI stays up so you can fix this from a browser (Config, then Save "
                "and apply), or fix the file and send /impsy/reload to the command port",
            ),
        ]
    mode = status["mode"]
    if mode == "callresponse":
        start = "waits for you to play" if engine.wait_for_performer else "plays from the start"
        mode += f" ({start}, answers after {engine.threshold:g} s of silence)"
    model = status["model"]
    lines = [
        f"antiphon {__version__}: model {model['name']}, {model['description']}",
        f"mode {mode}, input_thru {'on' if engine.input_thru else 'off'}, "
        f"timescale {engine.timescale:g}",
    ]
    lines += [f"{c['name']}: {c['state']}" for c in status["channels"]]
    if not status["channels"]:
        lines.append("no channels configured: add [osc], [midi], [websocket] or [serial]")
    if status["log"]:
        lines.append(f"logging to {status['log']}")
    errors = [f"PLAYING {s['message']}" for s in status["substitutions"]]
    lines.append(
        "playing, but not as asked (see the errors above); Ctrl-C stops"
        if errors
        else "playing; Ctrl-C stops"
    )
    return [(logging.ERROR, line) for line in errors] + [(logging.INFO, line) for line in lines]


def fmt(values: Sequence[float]) -> str:
    return " ".join(f"{v:.3f}" for v in values)


def describe(engine: Instrument, event: EngineEvent) -> str | None:
    """One line for a person watching the terminal, or None for events not shown."""
    if event.kind == "input":
        wire = f"   ({event.detail['wire']})" if "wire" in event.detail else ""
        return f"  in  {event.source:<14} {fmt(event.values or ())}{wire}"
    if event.kind == "output":
        values = event.values or ()
        sent = [
            f"{c.name} {text}" for c in engine.channels if (text := c.describe(values)) is not None
        ]
        wire = f"   -> {'; '.join(sent)}" if sent else ""
        return f" out  {'dt ' + format(event.detail['dt'], '.3f'):<14} {fmt(values)}{wire}"
    if event.kind in ("mode", "pause", "setting", "reset", "reload", "stop"):
        detail = " ".join(f"{k} {v}" for k, v in event.detail.items())
        return f"  --  {detail or event.kind}"
    return None  # warnings are printed by the log handler


async def print_events(engine: Instrument) -> None:
    """The verbose view: every input and output, one line each.

    Lines are written from a worker thread in batches, so a slow terminal or a full
    pipe can make the printer fall behind (it then skips the oldest lines) but never
    delays the music.
    """
    loop = asyncio.get_running_loop()

    def text(pending: Sequence[EngineEvent]) -> str:
        lines = (describe(engine, event) for event in pending)
        return "".join(f"{line}\n" for line in lines if line)

    with engine.subscribe(maxsize=512) as events:
        pending: list[EngineEvent] = []
        try:
            async for event in events:
                pending.append(event)
                await asyncio.sleep(PRINT_INTERVAL)  # let lines gather: fewer thread wake-ups
                pending += events.drain()
                batch, pending = text(pending), []
                if batch:
                    await loop.run_in_executor(None, _write, batch)
        except asyncio.CancelledError:
            _write(text([*pending, *events.drain()]))  # stopping: show what is left
            raise


def _write(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except (OSError, ValueError):  # the terminal or pipe is gone: nobody is reading
        pass
