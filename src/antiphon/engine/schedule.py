"""Absolute deadlines on a monotonic clock, and an event loop that wakes on time.

The engine never sleeps "for dt": it plays each event at a deadline computed from
the previous deadline, so the time spent predicting, sending or printing never
accumulates into drift. Waiting is the event loop's own timer (``call_at``): nothing
polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import heapq
import itertools
import os
import select
import selectors
import sys
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """An asyncio loop whose timers are accurate to tens of microseconds.

    asyncio's default selector on Linux (epoll) rounds every timeout up to a whole
    millisecond, which makes events late by up to 1 ms. ``select()`` takes microseconds
    but cannot watch a file descriptor numbered 1024 or more: about a thousand open
    connections (a browser left open, or anyone on the network) made the loop raise
    ``ValueError`` and stop. So the loop waits in epoll, which has no such limit, and
    its timeouts are kept by a ``timerfd`` armed to the nanosecond, which epoll watches
    like any other descriptor. Where there is no timerfd (not Linux) the platform's
    default selector is used. The kernel's default 50 µs timer slack is also lowered
    for this process.
    """
    try:
        selector: selectors.BaseSelector = PreciseEpollSelector()
    except OSError:
        selector = selectors.DefaultSelector()
    loop = asyncio.SelectorEventLoop(selector)
    _lower_timer_slack()
    return loop


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class _TimerFd:
    """A one-shot Linux timerfd on the monotonic clock (Python 3.11 has no binding)."""

    CLOCK_MONOTONIC = 1
    TFD_NONBLOCK = os.O_NONBLOCK
    TFD_CLOEXEC = os.O_CLOEXEC

    def __init__(self) -> None:
        if not sys.platform.startswith("linux"):
            raise OSError("timerfd is Linux only")
        libc = _libc()
        try:
            self._settime, create = libc.timerfd_settime, libc.timerfd_create
        except AttributeError:  # a C library without timerfd
            raise OSError("no timerfd in this C library") from None
        self._settime.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(_Itimerspec),
            ctypes.c_void_p,
        ]
        fd = create(self.CLOCK_MONOTONIC, self.TFD_NONBLOCK | self.TFD_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self.fd = fd
        self._spec = _Itimerspec()
        self._spec_ref = ctypes.byref(self._spec)

    def arm(self, seconds: float) -> None:
        """Fire once, ``seconds`` from now (at least 1 ns: 0 would disarm it)."""
        nanoseconds = max(1, int(seconds * 1e9))
        value = self._spec.it_value
        value.tv_sec, value.tv_nsec = divmod(nanoseconds, 1_000_000_000)
        if self._settime(self.fd, 0, self._spec_ref, None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")

    def clear(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self.fd, 8)

    def close(self) -> None:
        os.close(self.fd)


class PreciseEpollSelector(selectors.EpollSelector):
    """epoll for any number of descriptors, with timeouts kept by a timerfd."""

    def __init__(self) -> None:
        super().__init__()
        self._timer = _TimerFd()
        try:
            self._selector.register(self._timer.fd, select.EPOLLIN)
        except BaseException:
            self._timer.close()
            raise

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout > 0:
            self._timer.arm(timeout)
            wait = -1.0  # until a descriptor is ready or the timer fires
        else:
            wait = -1.0 if timeout is None else 0.0
        try:
            fired = self._selector.poll(wait, len(self._fd_to_key) + 1)
        except InterruptedError:
            return []
        ready = []
        for fd, event in fired:
            key = self._fd_to_key.get(fd)
            if key is None:
                if fd == self._timer.fd:
                    self._timer.clear()
                continue
            events = (selectors.EVENT_WRITE if event & ~select.EPOLLIN else 0) | (
                selectors.EVENT_READ if event & ~select.EPOLLOUT else 0
            )
            ready.append((key, events & key.events))
        return ready

    def close(self) -> None:
        super().close()
        self._timer.close()


def request_realtime(priority: int = 10) -> bool:
    """Ask the OS to run the event loop's thread before ordinary programs.

    Audio software does this so that a busy machine (a training run, a browser) does
    not delay its wake-ups by whole time slices. It is granted to root and to users
    with an rtprio limit (``LimitRTPRIO`` in a systemd unit); otherwise nothing changes.
    Only this thread gets it: threads and processes started later (the log writer,
    file work for the web UI, a training run) begin as ordinary ones
    (``SCHED_RESET_ON_FORK``), so heavy work can never compete with the music at its
    priority. The engine never busy-waits, so it cannot starve the machine; Linux also
    keeps 5 % of each core for ordinary programs whatever happens.
    """
    if not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
    except (OSError, ValueError):
        return False
    return True


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library this process already runs on (no search: ``find_library`` spawns
    ``ldconfig``, which costs milliseconds at start)."""
    return ctypes.CDLL(None, use_errno=True)


def _lower_timer_slack() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = _libc()
        pr_set_timerslack = 29
        libc.prctl(pr_set_timerslack, 1000, 0, 0, 0)  # nanoseconds
    except (OSError, AttributeError):  # not glibc/musl: keep the default slack
        pass


class Schedule(Generic[T]):
    """Items to play at absolute deadlines (the loop's clock), at most ``capacity``.

    One loop timer is armed for the earliest deadline at any time; ``play(deadline,
    item)`` is called for each item once its deadline has come. A full schedule
    refuses new items (``push`` returns False) instead of growing.

    At most ``BURST`` items are played per wake-up: when more are due (a stalled loop,
    a flood), the rest wait for the loop's next turn, so sockets, signals and the web
    UI are served between bursts whatever the schedule holds.
    """

    BURST = 64

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
        self._timer: asyncio.Handle | None = None

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
        for _ in range(self.BURST):
            if not heap or heap[0][0] > self._loop.time():
                break
            deadline, _, item = heapq.heappop(heap)
            self._play(deadline, item)
        else:  # more are due: let the loop read its sockets first, then play them
            if self._timer is None:
                self._timer = self._loop.call_soon(self._due)
            return
        if self._timer is None:  # play() may have pushed and armed already
            self._arm()
