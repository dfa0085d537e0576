"""Absolute deadlines on a monotonic clock, and an event loop that wakes on time.

The engine never sleeps "for dt": it plays each event at a deadline computed from
the previous deadline, so the time spent predicting, sending or printing never
accumulates into drift. Waiting is the event loop's own timer (``call_at``): nothing
polls.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import heapq
import itertools
import os
import selectors
import sys
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """An asyncio loop whose timers are accurate to tens of microseconds.

    asyncio's default selector on Linux (epoll) rounds every timeout up to a whole
    millisecond, which makes events late by up to 1 ms; ``select()`` takes its timeout
    in microseconds and costs nothing more for the handful of sockets an instrument
    has. The kernel's default 50 µs timer slack is also lowered for this process.
    """
    loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
    _lower_timer_slack()
    return loop


def request_realtime(priority: int = 10) -> bool:
    """Ask the OS to run this thread (and threads it starts) before ordinary programs.

    Audio software does this so that a busy machine (a training run, a browser) does
    not delay its wake-ups by whole time slices. It is granted to root and to users
    with an rtprio limit (``LimitRTPRIO`` in a systemd unit); otherwise nothing changes.
    The engine never busy-waits, so it cannot starve the machine; Linux also keeps 5 %
    of each core for ordinary programs whatever happens.
    """
    if not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, ValueError):
        return False
    return True


def _lower_timer_slack() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        pr_set_timerslack = 29
        libc.prctl(pr_set_timerslack, 1000, 0, 0, 0)  # nanoseconds
    except (OSError, AttributeError):  # not glibc/musl: keep the default slack
        pass


class Schedule(Generic[T]):
    """Items to play at absolute deadlines (the loop's clock), at most ``capacity``.

    One loop timer is armed for the earliest deadline at any time; ``play(deadline,
    item)`` is called for each item once its deadline has come. A full schedule
    refuses new items (``push`` returns False) instead of growing.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        play: Callable[[float, T], None],
        capacity: int = 256,
    ) -> None:
        self._loop = loop
        self._play = play
        self.capacity = capacity
        self._heap: list[tuple[float, int, T]] = []
        self._order = itertools.count()  # ties play in the order they were scheduled
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, deadline: float, item: T) -> bool:
        if len(self._heap) >= self.capacity:
            return False
        heapq.heappush(self._heap, (deadline, next(self._order), item))
        if self._heap[0][2] is item:
            self._arm()
        return True

    def remove(self, item: T) -> None:
        """Unschedule ``item`` if it is waiting."""
        for i, entry in enumerate(self._heap):
            if entry[2] is item:
                self._heap.pop(i)
                heapq.heapify(self._heap)
                self._arm()
                return

    def clear(self) -> None:
        self._heap.clear()
        self._arm()

    @property
    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._heap:
            self._timer = self._loop.call_at(self._heap[0][0], self._due)

    def _due(self) -> None:
        self._timer = None
        heap = self._heap
        while heap and heap[0][0] <= self._loop.time():
            deadline, _, item = heapq.heappop(heap)
            self._play(deadline, item)
        if self._timer is None:  # play() may have pushed and armed already
            self._arm()
