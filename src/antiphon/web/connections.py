"""How many connections the web UI holds, and for how long: bounded, whatever arrives.

The web UI shares its process and event loop with the engine, so every connection is a
file descriptor of the instrument. uvicorn (0.54, read in its source) bounds none of
this by itself:

- a connection that never sends a byte is kept forever: its keep-alive timeout only
  starts once a response is complete, and any byte received cancels it, so a request
  head sent one byte at a time is also kept forever (slowloris);
- ``limit_concurrency`` answers 503 only once a complete request head has arrived, so
  idle connections are never refused, hold their descriptor, and then push real
  requests over the limit; WebSocket upgrades bypass it altogether;
- a closing connection whose peer does not read is never cut: asyncio waits for its
  write buffer to drain, and a peer that does not read never drains it.

Measured before this module (when the engine's loop still waited in ``select()``):
about 1,100 idle TCP connections to the web UI stopped the whole instrument
(``ValueError: filedescriptor out of range in select()``). With the Pi's limit of
1024 descriptors it survived, but asyncio's accept loop retried after each "Too many
open files" up to 2,048 times per turn, printing a traceback each time (16,000 in
5 s), and the OSC round trip went to 1.3 s.

So: at most ``MAX_CONNECTIONS`` at once (HTTP and WebSocket together), of which
``MAX_PER_CLIENT`` from one address; one more is
answered with a minimal 503 and closed, without reaching the app or uvicorn; every
connection must complete a request head within ``HEAD_SECONDS`` of opening or of its
previous response, and a request body that stops coming for ``BODY_IDLE_SECONDS``
is cut; a closing connection that sends nothing more for
``CLOSING_SECONDS`` is cut; each holds at most ``SEND_BUFFER`` in the kernel (a peer
that stops reading would otherwise pin up to 4 MiB of a Pi's memory); at most
``ACCEPT_BATCH`` connections are taken from the kernel per loop turn, the rest wait
in its listen queue (no descriptor). A "Too many open files" on accept is one
rate-limited line. All of it together stays far below 1024 descriptors.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import resource
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("antiphon")

MAX_CONNECTIONS = 256  # a workshop's browsers (about 6 each) with room to spare
MAX_PER_CLIENT = 64  # from one address: one noisy computer cannot take them all
HEAD_SECONDS = 5.0  # a request head is under 16 KiB: seconds even on a poor Wi-Fi link
BODY_IDLE_SECONDS = 30.0  # a request body that stops coming (not held back by us) is cut
KEEP_ALIVE_SECONDS = 5  # idle between requests (uvicorn's default, named here)
CLOSING_SECONDS = 10.0  # a closing connection that sends nothing for this long is cut
SEND_BUFFER = 128 * 1024  # the kernel's, per connection (Linux doubles it): not 4 MiB
ACCEPT_BATCH = 64  # per loop turn, and the kernel's listen queue
REFUSING_AT_ONCE = 64  # refused connections still being told so; more are cut at once
REFUSED_LINGER = 1.0  # seconds a refused client has to read its 503
SWEEP_SECONDS = 2.0
REPORT_SECONDS = 10.0  # at most one line per kind of trouble in this long
FD_CEILING = 4096  # enough for every cap here with room to spare; the loop is epoll

_BUSY_TEXT = b"antiphon: too many connections to this web UI at once; try again\n"
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Retry-After: 5\r\n"
    b"Connection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_BUSY_TEXT), _BUSY_TEXT)
)


class Throttled:
    """One log line per ``REPORT_SECONDS`` for a kind of trouble, with a count."""

    def __init__(self, message: str) -> None:
        self.message = message
        self._next = 0.0
        self._unreported = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, detail: object = "") -> None:
        self._unreported += 1
        now = loop.time()
        if now < self._next:
            return
        said = f"{self.message}: {detail}" if detail else self.message
        if self._unreported > 1:
            said += f" ({self._unreported} times in {REPORT_SECONDS:g} s)"
        log.warning("%s", said)
        self._unreported = 0
        self._next = now + REPORT_SECONDS


@dataclass
class Gate:
    """What the connections of one server share: how many are being refused, and the
    rate-limited reports."""

    refusing: int = 0
    busy: Throttled = field(
        default_factory=lambda: Throttled(
            f"web UI: refused connections beyond {MAX_CONNECTIONS} at once "
            f"(or {MAX_PER_CLIENT} from one address)"
        )
    )
    no_descriptors: Throttled = field(
        default_factory=lambda: Throttled(
            "web UI: cannot accept connections (out of file descriptors); retrying each second"
        )
    )

    def protocol(self) -> Any:
        """The protocol factory uvicorn's ``http=`` takes (it adds its own arguments)."""
        return functools.partial(GuardedH11Protocol, gate=self)

    async def sweep(self, connections: set[Any]) -> None:
        """Forever: cut connections that are closing and have sent nothing more for
        ``CLOSING_SECONDS`` (asyncio would wait for a peer that does not read forever)."""
        closing: dict[Any, tuple[int, float]] = {}  # transport: (unsent bytes, since)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = loop.time()
            current = {c.transport for c in list(connections) if c.transport is not None}
            for transport in current:
                if not transport.is_closing():
                    continue
                unsent = transport.get_write_buffer_size()
                before, since = closing.get(transport, (-1, now))
                if unsent != before:
                    closing[transport] = (unsent, now)
                elif now - since >= CLOSING_SECONDS:
                    cut(transport)
            for transport in list(closing):
                if transport not in current:
                    del closing[transport]

    @contextlib.contextmanager
    def quiet_accept_errors(self, loop: asyncio.AbstractEventLoop) -> Any:
        """While serving, "Too many open files" on accept is one line per
        ``REPORT_SECONDS``, not a traceback per attempt; anything else is reported as
        before."""
        previous = loop.get_exception_handler()

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            if context.get("message") == "socket.accept() out of system resource":
                self.no_descriptors(loop, context.get("exception") or "")
            elif previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(handler)
        try:
            yield
        finally:
            loop.set_exception_handler(previous)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a connection cap, a request-head deadline and
    a request-body idle timeout."""

    def __init__(self, *args: Any, gate: Gate, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = gate
        self._deadline: asyncio.TimerHandle | None = None
        self._body_check: asyncio.TimerHandle | None = None
        self._body_seen = 0.0  # when the body last moved on
        self._refused = False  # answered 503; never reaches uvicorn's own handling
        self._lingering = False  # ... and still being read, so that it can read the 503

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= MAX_CONNECTIONS or _from(transport, self.connections) >= (
            MAX_PER_CLIENT
        ):
            self._refuse(transport)
            return
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        self._expect_head()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read only so that closing does not reset the 503 away
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # a whole head has arrived
            self._cancel_deadline()
        if self.conn.their_state is h11.SEND_BODY:
            self._body_seen = self.loop.time()
            if self._body_check is None:
                self._body_check = self.loop.call_later(BODY_IDLE_SECONDS, self._body_idle)

    def eof_received(self) -> bool | None:
        return False if self._refused else super().eof_received()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._expect_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        if self._body_check is not None:
            self._body_check.cancel()
        if self._lingering:
            self.gate.refusing -= 1
        if not self._refused:
            super().connection_lost(exc)

    def _expect_head(self) -> None:
        self._cancel_deadline()
        self._deadline = self.loop.call_later(HEAD_SECONDS, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()  # nothing was said: nothing to answer

    def _body_idle(self) -> None:
        """Cut a request whose body has stopped coming, unless it is antiphon that is
        not reading it yet (then the client is waiting for us, not we for it)."""
        self._body_check = None
        if self.transport.is_closing() or self.conn.their_state is not h11.SEND_BODY:
            return
        now = self.loop.time()
        if self.flow.read_paused:
            self._body_seen = now
        idle = now - self._body_seen
        if idle >= BODY_IDLE_SECONDS:
            self.transport.close()  # the app hears a disconnect
        else:
            self._body_check = self.loop.call_later(BODY_IDLE_SECONDS - idle, self._body_idle)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _refuse(self, transport: asyncio.Transport) -> None:
        self._refused = True
        self.transport = transport
        self.gate.busy(self.loop)
        if self.gate.refusing >= REFUSING_AT_ONCE:
            cut(transport)
            return
        self.gate.refusing += 1
        self._lingering = True
        transport.write(BUSY)
        if transport.can_write_eof():
            transport.write_eof()
        self._deadline = self.loop.call_later(REFUSED_LINGER, cut, transport)


def cut(transport: asyncio.BaseTransport) -> None:
    """Close at once, dropping what is unsent: a reset, not a close that the kernel
    would keep trying to deliver to a peer that does not read (for minutes)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _from(transport: asyncio.Transport, connections: set[Any]) -> int:
    """How many of ``connections`` come from the address ``transport`` comes from."""
    peer = transport.get_extra_info("peername")
    if not peer:
        return 0
    host = peer[0]
    return sum(1 for c in connections if c.client and c.client[0] == host)


def raise_fd_limit() -> None:
    """Raise this process's soft limit on open files toward its hard limit, up to
    ``FD_CEILING``. A laptop's default (256 on macOS) is below what the web UI may
    hold."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = FD_CEILING if hard == resource.RLIM_INFINITY else min(hard, FD_CEILING)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            log.debug("open files: soft limit raised from %d to %d", soft, target)
