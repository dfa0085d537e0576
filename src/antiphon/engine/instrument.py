"""The engine as an instrument runs it: started and stopped, reloaded, reported.

``Engine`` (engine.py) is who plays when: the modes and the hot path. ``Instrument``
adds what surrounds a performance: opening the log and every channel and closing them
(note-offs sent, log flushed), re-reading config.toml and the model while playing,
takes, and the status and event stream the web UI and the terminal show. The web UI
uses only what ``antiphon.web.state.InstrumentView`` names.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from pathlib import Path
from typing import Any

from antiphon.engine.commands import CommandError
from antiphon.engine.engine import Engine
from antiphon.engine.events import EngineEvent, Subscription
from antiphon.engine.setup import Setup, prepare
from antiphon.engine.status import describe_setup
from antiphon.errors import AntiphonError
from antiphon.io.channel import Channel

log = logging.getLogger("antiphon")


class Instrument(Engine):
    """An engine with its lifecycle; ``antiphon run`` plays one."""

    def __init__(self, setup: Setup, *, channels: dict[str, Channel] | None = None) -> None:
        super().__init__(setup, channels=channels)
        self._reloading: asyncio.Task[None] | None = None
        self._reload_lock = asyncio.Lock()
        self._stopped = False

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Open the log and every channel; start playing."""
        self._take_the_loop()
        for i, warning in enumerate(self._setup.warnings):
            self.warn(f"setup {i}", warning)  # each is said: they are few and all matter
        self.logbook.open(self.config, self._setup.log_dir)
        try:
            await self.channels.open(self)
        except BaseException:
            await self.logbook.close()
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
        self._stopped = True  # a reload that has not begun yet will not begin
        async with self._reload_lock:  # one under way finishes first: it opens channels
            await self.channels.close()
            await self.logbook.close()
        self.hub.close()
        gc.unfreeze()

    # -- what the web UI and the terminal see ---------------------------------------------
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
            **self.logbook.as_dict(now),
            **self.warnings.as_dict(),
        }

    def labels(self) -> list[str]:
        """A name for each control, from the first channel that maps them."""
        return self.channels.labels(self.dimension - 1)

    async def reload(self, model: str | Path | None = None) -> None:
        """Re-read config.toml and the model without restarting the process.

        Everything is checked before anything changes: a bad config or model raises
        AntiphonError and the current setup keeps playing. ``model`` replaces the model
        file given on the command line (the web UI's "use this model").
        """
        async with self._reload_lock:  # one at a time, whoever asks
            if self._stopped:
                raise AntiphonError("the instrument has stopped: there is nothing to reload")
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
        try:
            return await self.logbook.new_take(self._now())
        except AntiphonError as exc:
            raise CommandError(str(exc)) from None

    async def stop_take(self) -> str:
        """End the take: its log is closed, and what is played next goes to a new log."""
        return await self.logbook.stop_take()

    # -- reloading ----------------------------------------------------------------------------
    def request_reload(self) -> str:
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.get_running_loop().create_task(self._reload_quietly())
        return "reloading config and model"

    async def _apply(self, new: Setup) -> None:
        """Switch to a checked setup: channels whose settings changed are reopened."""
        old = self._setup
        await self.channels.reopen(old.config, new.config, self)
        self._silence()
        self._chain = None
        self._apply_settings(new)
        await self.logbook.reopen(new.config, new.log_dir)
        if not self._stopped:  # stop() waits for this reload, and then plays nothing
            self._enter_mode()

    async def _reload_quietly(self) -> None:
        with contextlib.suppress(AntiphonError):  # reported as a warning and an event
            await self.reload()
