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
import time
from collections.abc import Sequence
from typing import Any

from antiphon.config import Config
from antiphon.engine import commands, inputs
from antiphon.engine.channels import ChannelSet
from antiphon.engine.commands import CommandError
from antiphon.engine.events import EngineEvent, EventHub, Warnings
from antiphon.engine.recording import Logbook
from antiphon.engine.schedule import Schedule
from antiphon.engine.setup import (
    Setup,
    build_channels,
)
from antiphon.engine.status import Activity
from antiphon.io.channel import Channel

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

    def wait(self, timescale: float, floor: float = 0.0) -> float:
        """Seconds after the previous event to play it (IMPSY's dt x timescale), at least
        ``floor``: the model's own performance passes MIN_INTERVAL, so that no timescale
        can make it play faster than the loop can read its sockets. An answer to the
        performer needs none (it comes once per input) and waits no longer than IMPSY's."""
        wait = self.dt * timescale
        return wait if wait > floor else floor


class Engine:
    """Who plays when: the modes and the hot path, on one loop; see the module docstring.

    An ``Instrument`` (instrument.py) is an Engine with its lifecycle: starting and
    stopping, reloading, takes, the status and event stream.
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
        self.logbook = Logbook(self.warn)
        self._started_at = 0.0
        self._apply_settings(setup)

    # -- what plays ------------------------------------------------------------------------
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

    def command(self, address: str, *args: Any) -> str:
        """Carry out an ``/impsy/...`` command; returns what was done.

        The one way every command happens, whether it came over OSC, the command
        port or the web UI. Raises CommandError saying what is wrong.
        """
        command, value = commands.parse(address, args)
        handler = getattr(self, command.handler)
        return handler() if command.argument is None else handler(value)

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
        """Reloading is the instrument's: see instrument.py."""
        raise CommandError("this engine reads no config: it cannot reload")

    def _set_model(self, name: str, value: float) -> str:
        if self.model is None:
            raise CommandError(f"{name} needs a model and none is loaded")
        setattr(self.model, name, value)
        return self._changed(name, value)

    def _changed(self, name: str, value: float) -> str:
        self._publish(EngineEvent("setting", self._now(), detail={name: value}))
        return f"{name} {value:g}"

    def _take_the_loop(self) -> None:
        """Play on the running loop from now on (the clock starts here)."""
        self._loop = asyncio.get_running_loop()
        self._schedule = Schedule(self._loop, self._play, MAX_PENDING)
        self._started_at = self._now()

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
        self.logbook.heard(vector, source)
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
        self.logbook.played(values)
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
        self._schedule.push(deadline + self._chain.wait(self.timescale, MIN_INTERVAL), self._chain)

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

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else time.monotonic()

    def now(self) -> float:
        """The engine clock, which EngineEvent.time is measured on."""
        return self._now()

    def _publish(self, event: EngineEvent) -> None:
        self.hub.publish(event)

    def _publish_warning(self, message: str) -> None:
        self.hub.publish(EngineEvent("warning", self._now(), detail={"message": message}))
