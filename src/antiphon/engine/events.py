"""What the engine tells the world: an event stream and rate-limited warnings.

The stream is for observers (the verbose printer, the web UI's live page): each
subscriber gets its own bounded buffer that drops its oldest events when the
subscriber falls behind, so a slow terminal or browser never slows the music and
never grows memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

log = logging.getLogger("antiphon")

EventKind = Literal[
    "input", "output", "mode", "pause", "reset", "setting", "reload", "warning", "stop"
]


@dataclass(frozen=True, slots=True)
class EngineEvent:
    """One thing that happened.

    - ``input``: ``source`` is the channel ("osc", "midi X-TOUCH", ...), ``values`` the
      dense vector; ``detail`` may hold what arrived on the wire ("CC1 ch11 = 100").
    - ``output``: ``values`` played; ``detail`` has ``dt`` (the model's, in seconds),
      ``deadline`` and ``played`` (``time`` base) and ``thru`` (True for input_thru).
    - ``mode`` / ``pause`` / ``setting`` / ``reset`` / ``reload``: ``detail`` holds
      the new value(s); ``warning``: ``detail["message"]``; ``stop``: shutting down.
    """

    kind: EventKind
    time: float  # the engine clock (monotonic seconds, the loop's time())
    source: str | None = None
    values: tuple[float, ...] | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for pushing to browsers."""
        out: dict[str, Any] = {"kind": self.kind, "time": self.time}
        if self.source is not None:
            out["source"] = self.source
        if self.values is not None:
            out["values"] = list(self.values)
        out.update(self.detail)
        return out


class Subscription:
    """A bounded buffer of events for one observer; iterate it with ``async for``.

    When full, the oldest event is dropped (and counted in ``dropped``): an observer
    that falls behind sees the latest events, which is what a live view wants.
    """

    def __init__(self, hub: EventHub, maxsize: int) -> None:
        self._hub = hub
        self._events: deque[EngineEvent] = deque(maxlen=maxsize)
        self._ready = asyncio.Event()
        self.dropped = 0
        self.closed = False

    def put(self, event: EngineEvent) -> None:
        if len(self._events) == self._events.maxlen:
            self.dropped += 1
        self._events.append(event)
        self._ready.set()

    async def get(self) -> EngineEvent:
        """The next event; raises StopAsyncIteration once closed and drained."""
        while not self._events:
            if self.closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._events.popleft()

    def drain(self) -> list[EngineEvent]:
        """Every event already waiting, without waiting for more."""
        events = list(self._events)
        self._events.clear()
        return events

    def close(self) -> None:
        self.closed = True
        self._hub.discard(self)
        self._ready.set()

    def __aiter__(self) -> AsyncIterator[EngineEvent]:
        return self

    async def __anext__(self) -> EngineEvent:
        return await self.get()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventHub:
    """Fans events out to subscribers; publishing costs one append per subscriber."""

    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    def subscribe(self, maxsize: int = 256) -> Subscription:
        subscription = Subscription(self, maxsize)
        self._subscribers.add(subscription)
        return subscription

    def discard(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def publish(self, event: EngineEvent) -> None:
        for subscription in self._subscribers:
            subscription.put(event)

    @property
    def active(self) -> bool:
        return bool(self._subscribers)

    def close(self) -> None:
        for subscription in list(self._subscribers):
            subscription.close()


class Warnings:
    """Counted, rate-limited warnings: bad input must be visible but never flood.

    The first warning of a kind is reported at once; more of the same kind within
    ``interval`` seconds are counted and summarised in one line when it ends. Kinds
    are a small fixed set (never text from outside); should a bug make them grow
    anyway, kinds beyond ``MOST_KINDS`` are counted together as "other", so memory
    stays bounded whatever arrives.
    """

    MOST_KINDS = 256

    def __init__(
        self,
        publish: Callable[[str], None],
        *,
        interval: float = 5.0,
        keep: int = 50,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._publish = publish
        self.interval = interval
        self.counts: Counter[str] = Counter()  # kind -> total since start
        self.recent: deque[tuple[float, str]] = deque(maxlen=keep)  # (wall time, message)
        self._window_end: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()
        self._last_message: dict[str, str] = {}
        self._clock = clock

    def report(self, kind: str, message: str) -> None:
        if kind not in self.counts and len(self.counts) >= self.MOST_KINDS:
            kind = "other"
        self.counts[kind] += 1
        now = self._clock()
        if now < self._window_end.get(kind, 0.0):
            self._suppressed[kind] += 1
            self._last_message[kind] = message
            return
        self._window_end[kind] = now + self.interval
        self._say(message)
        with contextlib.suppress(RuntimeError):  # no loop: nothing to summarise later
            asyncio.get_running_loop().call_later(self.interval, self._summarise, kind)

    def as_dict(self) -> dict[str, Any]:
        """The recent warnings and the count of each kind, JSON-ready."""
        return {
            "warnings": [{"time": t, "message": m} for t, m in self.recent],
            "warning_counts": dict(self.counts),
        }

    def _summarise(self, kind: str) -> None:
        count = self._suppressed.pop(kind, 0)
        if count:
            last = self._last_message.pop(kind)
            self._say(f"{last} ({count} more like this in the last {self.interval:g} s)")
            self._window_end[kind] = self._clock() + self.interval
            asyncio.get_running_loop().call_later(self.interval, self._summarise, kind)

    def _say(self, message: str) -> None:
        self.recent.append((time.time(), message))
        log.warning(message)
        self._publish(message)
