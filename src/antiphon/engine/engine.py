"""The interaction engine: who plays when, on one asyncio loop, at absolute deadlines.

Data flows one way: a channel delivers the performer's controls (``on_input``) ->
they are checked, logged, echoed (``input_thru``) and, depending on the mode, given
to the model -> its predictions wait in a ``Schedule`` -> at their deadline they are
sent to every channel (``_play``).

Modes (IMPSY's):

- ``callresponse``: while the performer plays, the model follows (each input is fed
  to it and its prediction held back); after ``threshold`` seconds of silence it
  continues on its own, feeding back what it plays, until the performer plays again.
- ``polyphony``: every performer event yields one prediction, played its dt later;
  the model hears only the performer.
- ``battle``: the model plays on its own from the start; the performer is logged
  and passed through but does not steer it.
- ``useronly``: no model output; logging (and thru) only.

A continuing performance (call-and-response answers, battle) keeps exactly one
event in the schedule: as soon as it has been played the next one is predicted and
scheduled at ``previous deadline + dt * timescale``, so inference happens during the
wait and never stretches an interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from antiphon.config import MODES, Config, WebUIConfig
from antiphon.engine.events import EngineEvent, EventHub, Subscription, Warnings
from antiphon.engine.schedule import Schedule
from antiphon.engine.setup import Setup, build_channel, prepare
from antiphon.errors import AntiphonError
from antiphon.io.channel import Channel

log = logging.getLogger("antiphon")

CHANNEL_SECTIONS = ("osc", "midi", "websocket", "serial", "serialmidi")

MAX_INPUT_DT = 5.0
"""Longest dt given to the model for a performer event, in seconds.

The model sees dt x 10; after a long pause (or at the first event after a model
answer of several minutes) the raw gap would be far outside anything it was trained
on and would saturate the LSTM gates, so the next answers would be nonsense for many
events. Five seconds already means "a new phrase" to every model we have seen.
"""

MAX_LATE = 0.25
"""If the loop was stalled (a suspended laptop, a debugger) by more than this, the
continuing performance restarts from now rather than catching up in a burst."""

MAX_PENDING = 256
"""Scheduled predictions at most (polyphony under a flood of input)."""


class CommandError(AntiphonError):
    """A command that cannot be carried out; the message says why."""


class Planned:
    """A prediction waiting for its deadline."""

    __slots__ = ("chain", "dt", "values")

    def __init__(self, prediction: list[float], chain: bool) -> None:
        self.dt = prediction[0]
        self.values = prediction[1:]
        self.chain = chain  # continues the model's own performance once played


class Rate:
    """Events per second over the last few seconds (bounded memory)."""

    def __init__(self, window: float = 5.0, most: int = 20_000) -> None:
        self.window = window
        self._times: deque[float] = deque(maxlen=most)

    def add(self, t: float) -> None:
        self._times.append(t)

    def per_second(self, now: float) -> float:
        times = self._times
        while times and times[0] < now - self.window:
            times.popleft()
        if not times:
            return 0.0
        span = max(now - times[0], 1.0) if len(times) == times.maxlen else self.window
        return len(times) / span


class Engine:
    """Runs one performance; see the module docstring. Everything is on one loop.

    The web UI (and anything else) uses only: ``status()``, ``subscribe()``,
    ``command(address, *args)`` and ``await reload()``.
    """

    def __init__(self, setup: Setup, *, channels: dict[str, Channel] | None = None) -> None:
        self._setup = setup
        self.channels: dict[str, Channel] = (
            dict(channels)
            if channels is not None
            else {
                name: build_channel(name, setup.config)
                for name in CHANNEL_SECTIONS
                if getattr(setup.config, name) is not None
            }
        )
        self.hub = EventHub()
        self.warnings = Warnings(self._publish_warning)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._schedule: Schedule[Planned] | None = None
        self._chain: Planned | None = None
        self._log = None
        self._monitor = None
        self._command_server: asyncio.DatagramTransport | None = None
        self._reloading: asyncio.Task[None] | None = None
        self._reload_lock = asyncio.Lock()
        self._started_at = 0.0
        self._rate_in, self._rate_out = Rate(), Rate()
        self.inputs = self.outputs = 0
        self.last_input: list[float] = []
        self.last_output: list[float] = []
        self._last_input_source: str | None = None
        self._last_input_time: float | None = None
        self._last_output_time: float | None = None
        self.lateness: deque[float] = deque(maxlen=1000)  # played - deadline of recent events
        self._apply_settings(setup)

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Open the log, every channel, the command port and the monitor; start playing."""
        self._loop = asyncio.get_running_loop()
        self._schedule = Schedule(self._loop, self._play, MAX_PENDING)
        self._started_at = self._loop.time()
        for i, warning in enumerate(self._setup.warnings):
            self.warn(f"setup {i}", warning)
        self._open_log()
        opened: list[Channel] = []
        try:
            for channel in self.channels.values():
                await channel.open(self)
                opened.append(channel)
        except BaseException:
            for channel in opened:
                await channel.close()
            self._close_log()
            raise
        await self._open_local_ports(self.config.webui)
        gc.collect()
        gc.freeze()  # what exists now lives for the whole run: keep it out of GC passes
        self._enter_mode()

    async def _open_local_ports(self, webui: WebUIConfig) -> None:
        """The localhost command port and the monitor stream ([webui])."""
        from antiphon.io import osc

        self._close_local_ports()
        try:
            self._command_server = await osc.listen(
                self, "127.0.0.1", webui.command_port, "command port", accept_interface=False
            )
        except AntiphonError as exc:
            self.warn("command-port", f"commands from the web UI will not work: {exc}")
        self._monitor = await osc.Monitor.open(webui.monitor_port)

    def _close_local_ports(self) -> None:
        if self._command_server is not None:
            self._command_server.close()
            self._command_server = None
        if self._monitor is not None:
            self._monitor.close()
            self._monitor = None

    async def stop(self) -> None:
        """Stop playing, end every sounding note, flush the log, close every port."""
        if self._schedule is not None:
            self._schedule.clear()
        self._chain = None
        self._publish(EngineEvent("stop", self._now()))
        for channel in self.channels.values():
            try:
                await channel.close()
            except Exception as exc:  # one channel failing to close must not leave others open
                log.warning("closing %s: %s", channel.name, exc)
        self._close_local_ports()
        if self._reloading is not None:
            self._reloading.cancel()
        if self._log is not None:
            self._log.flush()  # on the loop, then the blocking part in a thread
        await asyncio.get_running_loop().run_in_executor(None, self._close_log)
        self.hub.close()
        gc.unfreeze()

    # -- what the web UI uses ------------------------------------------------------------
    @property
    def config(self) -> Config:
        return self._setup.config

    @property
    def dimension(self) -> int:
        return self.config.model.dimension

    @property
    def model(self) -> Any:
        return self._setup.predictor

    def subscribe(self, maxsize: int = 256) -> Subscription:
        """A live stream of EngineEvents (inputs, outputs, mode changes, warnings, ...).

        Use ``with engine.subscribe() as events: async for event in events: ...``;
        a subscriber that falls behind loses its oldest events, never the music.
        """
        return self.hub.subscribe(maxsize)

    def status(self) -> dict[str, Any]:
        """A JSON-ready snapshot for a dashboard."""
        now = self._now()
        setup = self._setup
        lateness = sorted(self.lateness)
        return {
            "mode": self.mode,
            "paused": self.paused,
            "model": {
                "name": setup.model_name,
                "path": str(setup.model_path) if setup.model_path else None,
                "description": setup.predictor.architecture.describe()
                if setup.predictor
                else "no model",
            },
            "dimension": self.dimension,
            "config": str(self.config.path) if self.config.path else None,
            "threshold": self.threshold,
            "input_thru": self.input_thru,
            "sigmatemp": setup.predictor.sigmatemp if setup.predictor else None,
            "pitemp": setup.predictor.pitemp if setup.predictor else None,
            "timescale": self.timescale,
            "uptime": now - self._started_at if self._loop else 0.0,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "inputs_per_second": self._rate_in.per_second(now),
            "outputs_per_second": self._rate_out.per_second(now),
            "last_input": {
                "source": self._last_input_source,
                "values": self.last_input,
                "ago": now - self._last_input_time,
            }
            if self._last_input_time is not None
            else None,
            "last_output": {"values": self.last_output, "ago": now - self._last_output_time}
            if self._last_output_time is not None
            else None,
            "labels": self.labels(),
            "channels": [
                {
                    "name": c.name,
                    "state": c.state,
                    "input_labels": c.input_labels,
                    "output_labels": c.output_labels,
                }
                for c in self.channels.values()
            ],
            "log": str(self._log.path) if self._log else None,
            "warnings": [{"time": t, "message": m} for t, m in self.warnings.recent],
            "warning_counts": dict(self.warnings.counts),
            "late_ms": {
                "p50": 1e3 * lateness[len(lateness) // 2],
                "p99": 1e3 * lateness[int(len(lateness) * 0.99)],
            }
            if lateness
            else None,
        }

    def labels(self) -> list[str]:
        """A name for each control, from the first channel that maps them."""
        for channel in self.channels.values():
            if channel.input_labels:
                return list(channel.input_labels)
        for channel in self.channels.values():
            if channel.output_labels:
                return list(channel.output_labels)
        return [f"x{i + 1}" for i in range(self.dimension - 1)]

    def command(self, address: str, *args: Any) -> str:
        """Carry out an ``/impsy/...`` command; returns what was done.

        The one way every command happens, whether it came over OSC, the command
        port or the web UI. Raises CommandError saying what is wrong.
        """
        name = address.removeprefix("/impsy/")
        if name == "mode":
            return self.set_mode(_one(address, args, str))
        if name == "pause":
            return self.pause(bool(_one(address, args, float)))
        if name == "reset":
            return self.reset()
        if name in ("sigmatemp", "pitemp", "timescale"):
            return self.set(name, _one(address, args, float))
        if name == "reload":
            if self._reloading is None or self._reloading.done():
                self._reloading = asyncio.get_running_loop().create_task(self._reload_quietly())
            return "reloading config and model"
        raise CommandError(
            f"unknown command {address!r}; use /impsy/mode, /impsy/pause, /impsy/reset, "
            "/impsy/sigmatemp, /impsy/pitemp, /impsy/timescale or /impsy/reload"
        )

    async def reload(self, model: str | Path | None = None) -> None:
        """Re-read config.toml and the model without restarting the process.

        Everything is checked before anything changes: a bad config or model raises
        AntiphonError and the current setup keeps playing. ``model`` replaces the model
        file given on the command line (the web UI's "use this model").
        """
        async with self._reload_lock:  # one at a time, whoever asks
            setup = self._setup
            explicit = Path(model) if model is not None else setup.explicit_model
            try:
                new = await asyncio.get_running_loop().run_in_executor(
                    None,
                    lambda: prepare(setup.config_path, setup.overrides, explicit, strict=True),
                )
            except AntiphonError as exc:
                self.warn("reload", f"reload failed, still playing as before: {exc}")
                self._publish(
                    EngineEvent("reload", self._now(), detail={"ok": False, "error": str(exc)})
                )
                raise
            await self._apply(new)
        self._publish(
            EngineEvent("reload", self._now(), detail={"ok": True, "model": new.model_name})
        )
        log.info("reloaded %s (model %s)", new.config_path or "defaults", new.model_name)

    # -- commands -------------------------------------------------------------------------
    def set_mode(self, mode: str) -> str:
        if mode not in MODES:
            raise CommandError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        if mode != "useronly" and self.model is None:
            raise CommandError(
                f"mode {mode} needs a model and none is loaded ({self._setup.model_name}); "
                "only useronly is possible"
            )
        self.mode = mode
        self._enter_mode()
        self._publish(EngineEvent("mode", self._now(), detail={"mode": mode}))
        return f"mode {mode}"

    def pause(self, paused: bool) -> str:
        if paused == self.paused:
            return "paused" if paused else "playing"
        self.paused = paused
        if paused:
            self._silence()
        else:
            self._enter_mode(resume=True)
        self._publish(EngineEvent("pause", self._now(), detail={"paused": paused}))
        return "paused" if paused else "playing"

    def reset(self) -> str:
        if self.model is not None:
            self.model.reset()
        self._publish(EngineEvent("reset", self._now()))
        return "model state reset"

    def set(self, name: str, value: float) -> str:
        if not math.isfinite(value) or value < 0 or (value == 0 and name != "sigmatemp"):
            raise CommandError(f"{name} = {value} is not allowed; use a positive number")
        if name == "timescale":
            self.timescale = value
        elif self.model is None:
            raise CommandError(f"{name} needs a model and none is loaded")
        else:
            setattr(self.model, name, value)
        self._publish(EngineEvent("setting", self._now(), detail={name: value}))
        return f"{name} {value:g}"

    # -- inputs (the channels call these) ---------------------------------------------------
    def on_input(self, source: str, values: Sequence[Any], detail: str | None = None) -> None:
        vector = self._checked(source, values)
        if vector is not None:
            self._performer(source, vector, detail)

    def on_controls(
        self, source: str, updates: Sequence[tuple[int, float]], detail: str | None = None
    ) -> None:
        """Merge changed controls into the latest vector, then treat it as one input.

        MIDI-like channels move one control at a time; the model wants every control
        at every event, so untouched controls keep their last value (from any channel).
        """
        vector = list(self.last_input)
        for index, value in updates:
            if 0 <= index < len(vector):
                vector[index] = 0.0 if value < 0.0 else 1.0 if value > 1.0 else value
        self._performer(source, vector, detail)

    def on_command(self, address: str, args: Sequence[Any], source: str) -> None:
        try:
            self.command(address, *args)  # what it did is in the event stream
        except CommandError as exc:
            self.warn(f"command {address}", f"{source}: {exc}")

    def warn(self, kind: str, message: str) -> None:
        self.warnings.report(kind, message)

    # -- the hot path -----------------------------------------------------------------------
    def _checked(self, source: str, values: Sequence[Any]) -> list[float] | None:
        """The values as floats in [0, 1], or None (dropped, counted, reported)."""
        expected = self.dimension - 1
        if len(values) != expected:
            self.warn(
                f"length {source}",
                f"{source}: dropped an input of {len(values)} values; the model plays "
                f"{expected} controls (dimension {self.dimension})",
            )
            return None
        vector = []
        clamped = False
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.warn(
                    f"type {source}",
                    f"{source}: dropped an input with a non-numeric value {value!r}",
                )
                return None
            if not math.isfinite(value):
                self.warn(f"nan {source}", f"{source}: dropped an input containing {value}")
                return None
            if value < 0.0 or value > 1.0:
                clamped = True
                value = 0.0 if value < 0.0 else 1.0
            vector.append(float(value))
        if clamped:
            self.warn(f"range {source}", f"{source}: clamped values outside 0-1 in {list(values)}")
        return vector

    def _performer(self, source: str, vector: list[float], detail: str | None) -> None:
        now = self._now()
        previous = self._last_input_time
        dt = 0.0 if previous is None else min(now - previous, MAX_INPUT_DT)
        self._last_input_time = now
        self._last_input_source = source
        self.last_input = vector
        self.inputs += 1
        self._rate_in.add(now)
        if self.input_thru:
            for channel in self.channels.values():
                self._send(channel, vector)
        if self._log is not None and self.config.log_input:
            self._log.write("interface", vector)
        if self._monitor is not None:
            self._monitor.input(vector)
        if self.hub.active:
            self.hub.publish(
                EngineEvent(
                    "input",
                    now,
                    source,
                    tuple(vector),
                    {"thru": self.input_thru, **({"wire": detail} if detail else {})},
                )
            )
        model, mode = self.model, self.mode
        if model is None or mode in ("battle", "useronly"):
            return
        prediction = model.generate([dt, *vector])
        schedule = self._schedule
        assert schedule is not None
        if mode == "callresponse":
            if self._chain is not None:
                schedule.remove(self._chain)
            self._chain = Planned(prediction, chain=True)
            if not self.paused:
                first = max(self.threshold, prediction[0] * self.timescale)
                schedule.push(now + first, self._chain)
        elif not self.paused:  # polyphony
            deadline = now + prediction[0] * self.timescale
            if deadline <= self._now():
                self._play(deadline, Planned(prediction, False))  # due already: no detour
            elif not schedule.push(deadline, Planned(prediction, False)):
                self.warn(
                    "schedule full",
                    f"dropped a prediction: {MAX_PENDING} are already waiting to be played",
                )

    def _play(self, deadline: float, planned: Planned) -> None:
        now = self._now()
        if now - deadline > MAX_LATE:
            self.warn(
                "late",
                f"the engine was stalled for {now - deadline:.2f} s; continuing from now",
            )
            deadline = now
        values = planned.values
        for channel in self.channels.values():
            self._send(channel, values)
        played = self._now()
        self.lateness.append(played - deadline)
        self.outputs += 1
        self._rate_out.add(played)
        self.last_output = values
        self._last_output_time = played
        if self._log is not None and self.config.log_predictions:
            self._log.write("rnn", values)
        if self._monitor is not None:
            self._monitor.output(values)
        if self.hub.active:
            self.hub.publish(
                EngineEvent(
                    "output",
                    played,
                    "model",
                    tuple(values),
                    {"dt": planned.dt, "deadline": deadline, "played": played, "thru": False},
                )
            )
        if planned is self._chain:  # predict the next event now, long before it is due
            self._continue(deadline, [planned.dt, *values])

    def _continue(self, deadline: float, event: list[float]) -> None:
        assert self._schedule is not None
        prediction = self.model.generate(event)
        self._chain = Planned(prediction, chain=True)
        self._schedule.push(deadline + prediction[0] * self.timescale, self._chain)

    def _send(self, channel: Channel, values: Sequence[float]) -> None:
        try:
            channel.send(values)
        except Exception as exc:  # a failing device must not stop the other channels
            self.warn(f"send {channel.name}", f"{channel.name}: could not send ({exc})")

    # -- mode changes -----------------------------------------------------------------------
    def _silence(self) -> None:
        if self._schedule is not None:
            self._schedule.clear()

    def _enter_mode(self, resume: bool = False) -> None:
        """Start the current mode from now; keep a pending answer only when resuming."""
        if self._schedule is None:
            return
        pending = self._chain if resume else None
        self._silence()
        self._chain = None
        if self.paused or self.model is None:
            self._chain = pending
            return
        now = self._now()
        if self.mode == "battle":
            seed = self.last_output or self.last_input
            self._continue(now, [0.0, *seed])
        elif self.mode == "callresponse" and pending is not None:
            self._chain = pending
            since = now - (self._last_input_time or now)
            self._schedule.push(now + max(0.0, self.threshold - since), pending)

    # -- setup ------------------------------------------------------------------------------
    def _apply_settings(self, setup: Setup) -> None:
        config = setup.config
        self._setup = setup
        self.mode = config.interaction.mode
        self.threshold = config.interaction.threshold
        self.input_thru = config.interaction.input_thru
        self.timescale = config.model.timescale
        self.paused = False
        if len(self.last_input) != config.model.dimension - 1:
            self.last_input = [0.5] * (config.model.dimension - 1)
            self.last_output = []

    async def _apply(self, new: Setup) -> None:
        """Switch to a checked setup: channels whose section changed are reopened."""
        old = self._setup
        dimension_changed = new.config.model.dimension != old.config.model.dimension
        for name in CHANNEL_SECTIONS:
            before, after = getattr(old.config, name), getattr(new.config, name)
            if before == after and not dimension_changed:
                continue
            channel = self.channels.pop(name, None)
            if channel is not None:
                await channel.close()
            if after is None:
                continue
            try:
                channel = build_channel(name, new.config)
                await channel.open(self)
            except AntiphonError as exc:
                if before is None or dimension_changed:
                    self.warn(f"reload {name}", f"reload: [{name}] could not be opened: {exc}")
                    continue
                self.warn(
                    f"reload {name}",
                    f"reload: the new [{name}] could not be opened ({exc}); keeping the "
                    f"previous [{name}]",
                )
                channel = build_channel(name, old.config)
                await channel.open(self)
            self.channels[name] = channel
        if new.config.webui != old.config.webui:
            await self._open_local_ports(new.config.webui)
        self._silence()
        self._chain = None
        self._apply_settings(new)
        if dimension_changed or new.log_dir != old.log_dir:
            closing = self._log
            self._log = None
            if closing is not None:
                closing.flush()
                await asyncio.get_running_loop().run_in_executor(None, closing.close)
            self._open_log()
        self._enter_mode()

    def _open_log(self) -> None:
        config = self.config
        if not (config.log_input or config.log_predictions):
            return
        from antiphon.engine.recording import Recorder

        assert self._loop is not None
        self._log = Recorder(self._setup.log_dir, config.model.dimension, self._loop)

    def _close_log(self) -> None:
        if self._log is not None:
            dropped = self._log.close()
            if dropped:
                log.warning("%d log lines were dropped (disk too slow)", dropped)

    async def _reload_quietly(self) -> None:
        with contextlib.suppress(AntiphonError):  # reported as a warning and an event
            await self.reload()

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else time.monotonic()

    def now(self) -> float:
        """The engine clock, which EngineEvent.time is measured on."""
        return self._now()

    def _publish(self, event: EngineEvent) -> None:
        self.hub.publish(event)

    def _publish_warning(self, message: str) -> None:
        self.hub.publish(EngineEvent("warning", self._now(), detail={"message": message}))


def _one(address: str, args: Sequence[Any], kind: type) -> Any:
    if len(args) != 1:
        raise CommandError(f"{address} takes one argument, got {len(args)}")
    value = args[0]
    if kind is str:
        if not isinstance(value, str):
            raise CommandError(f"{address} takes a word, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CommandError(f"{address} takes a number, got {value!r}")
    return float(value)
