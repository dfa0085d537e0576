"""The interaction engine: who plays when, on one asyncio loop, at absolute deadlines.

Data flows one way: a channel delivers the performer's controls (``on_input``) ->
they are checked, logged, echoed (``input_thru``) and, depending on the mode, given
to the model -> its predictions wait in a ``Schedule`` -> at their deadline they are
sent to every channel (``_play``).

Modes (IMPSY's):

- ``callresponse``: while the performer plays, the model follows (each input is fed
  to it and its prediction held back); after ``threshold`` seconds of silence it
  continues on its own, feeding back what it plays, until the performer plays again.
  As in IMPSY it also plays from the start, ``threshold`` after a neutral first event,
  until the performer first plays (``wait_for_performer`` keeps it silent until then).
- ``polyphony``: every performer event yields one prediction, played its dt later;
  the model hears only the performer.
- ``battle``: the model plays on its own from the start; the performer is logged
  and passed through but does not steer it.
- ``useronly``: no model output; logging (and thru) only.

A continuing performance (call-and-response answers, battle) keeps exactly one
event in the schedule: as soon as it has been played the next one is predicted and
scheduled at ``previous deadline + dt * timescale``, so inference happens during the
wait and never stretches an interval. That interval is never shorter than
``MIN_INTERVAL``, whatever the model predicts and whatever the timescale.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from antiphon.config import Config
from antiphon.engine import commands, inputs
from antiphon.engine.channels import ChannelSet
from antiphon.engine.commands import CommandError
from antiphon.engine.events import EngineEvent, EventHub, Subscription, Warnings
from antiphon.engine.schedule import Schedule
from antiphon.engine.setup import (
    CHANNEL_NAMES,
    Setup,
    build_channel,
    build_channels,
    channel_settings,
    prepare,
)
from antiphon.engine.status import Activity, describe_setup
from antiphon.errors import AntiphonError
from antiphon.io.channel import Channel

log = logging.getLogger("antiphon")

MAX_INPUT_DT = 5.0
"""Longest dt given to the model for a performer event, in seconds.

The model sees dt x 10; after a long pause (or at the first event after a model
answer of several minutes) the raw gap would be far outside anything it was trained
on and would saturate the LSTM gates, so the next answers would be nonsense for many
events. Five seconds already means "a new phrase" to every model we have seen.
"""

MIN_INTERVAL = 0.001
"""Shortest time between two events of the model's own performance, in seconds.

A model may predict dt = 0 (simultaneous controller moves are common in training
data) and a tiny timescale shrinks every dt: without a floor, each event would be due
as soon as the previous one was played and the loop would never get back to its
sockets (``timescale = 0.001`` once locked up the instrument for good). A millisecond
is below what a listener can tell apart and caps the model at 1,000 events a second.
It is also IMPSY's floor on a played event's dt, which the model then hears back.
"""

MAX_LATE = 0.25
"""If the loop was stalled (a suspended laptop, a debugger) by more than this, the
continuing performance restarts from now rather than catching up in a burst."""

MAX_PENDING = 256
"""Scheduled predictions at most (polyphony under a flood of input)."""


class Planned:
    """A prediction waiting for its deadline, as IMPSY plays one: dt at least
    ``MIN_INTERVAL``, values clipped to [0, 1]; ``[dt, *values]`` is what the model
    hears back once it is played (the timescale changes the waiting, never that)."""

    __slots__ = ("chain", "dt", "values")

    def __init__(self, prediction: Sequence[float], chain: bool) -> None:
        dt = prediction[0]
        self.dt = dt if dt > MIN_INTERVAL else MIN_INTERVAL
        self.values = [0.0 if v < 0.0 else 1.0 if v > 1.0 else v for v in prediction[1:]]
        self.chain = chain  # continues the model's own performance once played

    def wait(self, timescale: float) -> float:
        """Seconds after the previous event to play it: never under MIN_INTERVAL."""
        wait = self.dt * timescale
        return wait if wait > MIN_INTERVAL else MIN_INTERVAL


class Engine:
    """Runs one performance; see the module docstring. Everything is on one loop.

    The web UI (and anything else) uses only: ``status()``, ``subscribe()``,
    ``command(address, *args)``, ``await reload()`` and ``now()``.
    """

    def __init__(self, setup: Setup, *, channels: dict[str, Channel] | None = None) -> None:
        self.hub = EventHub()
        self.warnings = Warnings(self._publish_warning)
        self.channels = ChannelSet(
            build_channels(setup.config) if channels is None else channels, self.warn
        )
        self.activity = Activity(setup.config.model.dimension - 1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._schedule: Schedule[Planned] | None = None
        self._chain: Planned | None = None
        self._log: Any = None  # a Recorder while logging
        self._reloading: asyncio.Task[None] | None = None
        self._reload_lock = asyncio.Lock()
        self._started_at = 0.0
        self._take_started: float | None = None  # while a take is being recorded
        self._apply_settings(setup)

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Open the log and every channel; start playing."""
        self._loop = asyncio.get_running_loop()
        self._schedule = Schedule(self._loop, self._play, MAX_PENDING)
        self._started_at = self._now()
        for i, warning in enumerate(self._setup.warnings):
            self.warn(f"setup {i}", warning)  # each is said: they are few and all matter
        self._open_log()
        try:
            await self.channels.open(self)
        except BaseException:
            self._close_log()
            raise
        gc.collect()
        gc.freeze()  # what exists now lives for the whole run: keep it out of GC passes
        self._enter_mode()

    async def stop(self) -> None:
        """Stop playing, end every sounding note, flush the log, close every port."""
        if self._schedule is not None:
            self._schedule.clear()
        self._chain = None
        self._publish(EngineEvent("stop", self._now()))
        await self.channels.close()
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

    @property
    def setup(self) -> Setup:
        """What plays: the checked config, the command line's overrides, the model."""
        return self._setup

    @property
    def problem(self) -> str | None:
        """Why nothing plays, when the config or model could not be played."""
        return self._setup.problem

    @property
    def inputs(self) -> int:
        return self.activity.inputs

    @property
    def outputs(self) -> int:
        return self.activity.outputs

    @property
    def last_input(self) -> list[float]:
        return self.activity.last_input

    def subscribe(self, maxsize: int = 256) -> Subscription:
        """A live stream of EngineEvents (inputs, outputs, mode changes, warnings, ...).

        Use ``with engine.subscribe() as events: async for event in events: ...``;
        a subscriber that falls behind loses its oldest events, never the music.
        """
        return self.hub.subscribe(maxsize)

    def status(self) -> dict[str, Any]:
        """A JSON-ready snapshot for a dashboard."""
        now = self._now()
        return {
            **describe_setup(self._setup, self.channels.substitutions()),
            "mode": self.mode,
            "paused": self.paused,
            "threshold": self.threshold,
            "input_thru": self.input_thru,
            "timescale": self.timescale,
            "uptime": now - self._started_at if self._loop else 0.0,
            **self.activity.as_dict(now),
            "labels": self.labels(),
            "channels": self.channels.describe(),
            "log": str(self._log.path) if self._log else None,
            "log_problem": self._log.problem if self._log else None,
            "take_seconds": None if self._take_started is None else now - self._take_started,
            **self.warnings.as_dict(),
        }

    def labels(self) -> list[str]:
        """A name for each control, from the first channel that maps them."""
        return self.channels.labels(self.dimension - 1)

    def command(self, address: str, *args: Any) -> str:
        """Carry out an ``/impsy/...`` command; returns what was done.

        The one way every command happens, whether it came over OSC, the command
        port or the web UI. Raises CommandError saying what is wrong.
        """
        command, value = commands.parse(address, args)
        handler = getattr(self, command.handler)
        return handler() if command.argument is None else handler(value)

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

    # -- takes: the Play page's record button -------------------------------------------------
    async def new_take(self) -> str:
        """Record what is played from now on in a log of its own (a take)."""
        if self._log is None:
            raise CommandError("logging is off (log_input and log_predictions in config.toml)")
        await self._replace_log()
        self._take_started = self._now()
        return f"recording a take in {self._log.path.name}"

    async def stop_take(self) -> str:
        """End the take: its log is closed, and what is played next goes to a new log."""
        if self._take_started is None:
            return "no take is being recorded"
        path = self._log.path if self._log is not None else None
        self._take_started = None
        await self._replace_log()
        return f"take recorded in {path.name}" if path is not None else "take ended"

    # -- commands (see commands.COMMANDS) ------------------------------------------------------
    def set_mode(self, mode: str) -> str:
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
        if paused != self.paused:
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

    def set_sigmatemp(self, value: float) -> str:
        return self._set_model("sigmatemp", value)

    def set_pitemp(self, value: float) -> str:
        return self._set_model("pitemp", value)

    def set_timescale(self, value: float) -> str:
        self.timescale = value
        return self._changed("timescale", value)

    def request_reload(self) -> str:
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.get_running_loop().create_task(self._reload_quietly())
        return "reloading config and model"

    def _set_model(self, name: str, value: float) -> str:
        if self.model is None:
            raise CommandError(f"{name} needs a model and none is loaded")
        setattr(self.model, name, value)
        return self._changed(name, value)

    def _changed(self, name: str, value: float) -> str:
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
        vector = inputs.merged(self.activity.last_input, updates)
        self._performer(source, vector, detail)

    def on_command(self, address: str, args: Sequence[Any], source: str) -> None:
        try:
            self.command(address, *args)  # what it did is in the event stream
        except CommandError as exc:  # one warning kind per known command: a fixed set
            kind = address if address in commands.COMMANDS else "unknown command"
            self.warn(kind, f"{source}: {exc}")

    def warn(self, kind: str, message: str) -> None:
        self.warnings.report(kind, message)

    # -- the hot path -----------------------------------------------------------------------
    def _checked(self, source: str, values: Sequence[Any]) -> list[float] | None:
        """The values as floats in [0, 1], or None (dropped, counted, reported)."""
        vector, problem = inputs.checked(values, self.dimension - 1)
        if problem is not None:
            kind, message = problem
            self.warn(f"{kind} {source}", f"{source}: {message}")
        return vector

    def _performer(self, source: str, vector: list[float], detail: str | None) -> None:
        now = self._now()
        previous = self.activity.last_input_time
        dt = min(now - (self._started_at if previous is None else previous), MAX_INPUT_DT)
        self.activity.heard(source, vector, now)
        if self.input_thru:
            self.channels.thru(vector)
        if self._log is not None and self.config.log_input:
            self._log.write("interface", vector, source)
        self.channels.heard(vector)
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
        planned = Planned(model.generate([dt, *vector]), chain=mode == "callresponse")
        schedule = self._schedule
        assert schedule is not None
        if mode == "callresponse":
            if self._chain is not None:
                schedule.remove(self._chain)
            self._chain = planned
            if not self.paused:
                schedule.push(now + max(self.threshold, planned.wait(self.timescale)), planned)
        elif not self.paused:  # polyphony
            deadline = now + planned.wait(self.timescale)
            if deadline <= self._now():
                self._play(deadline, planned)  # due already: no detour
            elif not schedule.push(deadline, planned):
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
        self.channels.send(values)
        played = self._now()
        self.activity.played(values, deadline, played)
        if self._log is not None and self.config.log_predictions:
            self._log.write("rnn", values)
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
        self._chain = Planned(self.model.generate(event), chain=True)
        self._schedule.push(deadline + self._chain.wait(self.timescale), self._chain)

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
            seed = self.activity.last_output or self.activity.last_input
            self._continue(now, [0.0, *seed])
        elif self.mode == "callresponse":
            if pending is None and self.wait_for_performer:
                return
            if pending is None:  # answer after threshold from the latest (or a neutral) input
                pending = Planned(self.model.generate([0.0, *self.activity.last_input]), True)
            self._chain = pending
            since = now - (self.activity.last_input_time or now)
            self._schedule.push(now + max(0.0, self.threshold - since), pending)

    # -- setup ------------------------------------------------------------------------------
    def _apply_settings(self, setup: Setup) -> None:
        config = setup.config
        self._setup = setup
        self.mode = config.interaction.mode
        self.threshold = config.interaction.threshold
        self.input_thru = config.interaction.input_thru
        self.wait_for_performer = config.interaction.wait_for_performer
        self.timescale = config.model.timescale
        self.paused = False
        self.activity.resize(config.model.dimension - 1)

    async def _apply(self, new: Setup) -> None:
        """Switch to a checked setup: channels whose settings changed are reopened."""
        old = self._setup
        await self.channels.reopen(
            old.config, new.config, self, build_channel, channel_settings, CHANNEL_NAMES
        )
        self._silence()
        self._chain = None
        self._apply_settings(new)
        if (
            new.config.model.dimension != old.config.model.dimension
            or new.log_dir != old.log_dir
            or self._log is None
        ):
            await self._replace_log()
        self._enter_mode()

    async def _replace_log(self) -> None:
        """Log from the next event on in a new file; the old one is closed in a thread."""
        closing = self._log
        self._log = None
        self._open_log()
        if closing is not None:
            closing.flush()
            await asyncio.get_running_loop().run_in_executor(None, closing.close)

    def _open_log(self) -> None:
        config = self.config
        if not (config.log_input or config.log_predictions):
            return
        from antiphon.engine.recording import Recorder

        assert self._loop is not None
        self._log = Recorder(self._setup.log_dir, config.model.dimension, self._loop, self.warn)

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
