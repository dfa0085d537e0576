"""WebSocket server speaking IMPSY's text frames, for a bounded number of clients.

Frames: ``/channel/{ch}/noteon/{note}/{vel}``, ``/channel/{ch}/noteoff/{note}/{vel}``,
``/channel/{ch}/cc/{ctrl}/{value}`` and ``/channel/{ch}/pitchbend/{0-16383}`` (ch
1-based), mapped with ``[websocket].input`` and ``.output`` like MIDI. A note-on with
velocity 0 is a note-off (as in MIDI, and as IMPSY reads it); a velocity or CC value
outside 0-127 is clamped and counted; a pitch bend outside 0-16383 is dropped, as
IMPSY drops it. What is played goes to every connected client; a client that
connects is sent every control change again with the next event.

The server is reachable from the network (``server_ip`` is 0.0.0.0 by default), and
browsers let any web page open a WebSocket to any address, so:

- a browser must name this machine as its Origin (localhost, its addresses, its
  host name or ``<host name>.local``) or one of ``[websocket].allowed_origins``;
  clients that send no Origin (the IMPSY iOS app, Pd, Python) are native programs
  and are accepted. A refused handshake gets HTTP 403.
- at most ``MAX_CLIENTS`` at once (HTTP 503 for the next); a handshake must finish
  within ``OPEN_TIMEOUT``; a frame is at most ``MAX_FRAME`` bytes (a larger one
  closes that connection) and at most ``MAX_QUEUE`` frames wait to be read per
  client (then its socket is not read until they are).
- sending never waits: a client that stops reading is skipped (its dropped frames
  counted) once ``MAX_BUFFERED`` bytes wait for it, so it costs the engine at most
  that much memory and nothing in time.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from urllib.parse import urlsplit

import mido
from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from antiphon.config import WebSocketConfig
from antiphon.errors import AntiphonError, shown
from antiphon.hosts import Hosts
from antiphon.io.channel import Channel, Inputs
from antiphon.io.mapping import (
    PITCH_BEND_CENTRE,
    PITCH_BEND_TOP,
    Decoder,
    Encoder,
    describe,
    label,
)

MAX_CLIENTS = 16
"""Connected clients at most."""

MAX_FRAME = 4096
"""Bytes in one received frame at most (a frame is about 25)."""

MAX_QUEUE = 64
"""Received frames waiting to be read per client at most."""

OPEN_TIMEOUT = 5.0
"""Seconds a client has to complete its opening handshake."""

MAX_BUFFERED = 64 * 1024
"""Bytes waiting to be sent to one client beyond which its frames are dropped."""

_FRAME = re.compile(
    r"/channel/(\d{1,3})/(?:(noteon|noteoff|cc)/(\d{1,3})/(-?\d{1,6})|pitchbend/(-?\d{1,6}))",
    re.ASCII,
)
_USAGE = (
    "expected /channel/{ch}/noteon|noteoff|cc/{number}/{value} or "
    "/channel/{ch}/pitchbend/{value} in whole numbers"
)


def frame(message: mido.Message) -> str:
    """A MIDI message as an IMPSY WebSocket frame."""
    channel = message.channel + 1
    if message.type == "control_change":
        return f"/channel/{channel}/cc/{message.control}/{message.value}"
    if message.type == "pitchwheel":
        return f"/channel/{channel}/pitchbend/{message.pitch + PITCH_BEND_CENTRE}"
    kind = "noteon" if message.type == "note_on" else "noteoff"
    return f"/channel/{channel}/{kind}/{message.note}/{message.velocity}"


def parse(text: str) -> tuple[mido.Message, bool]:
    """An IMPSY WebSocket frame as a MIDI message, and whether its value (velocity or
    CC value) was outside 0-127 and clamped; ValueError says what is wrong."""
    found = _FRAME.fullmatch(text.strip())
    if found is None:
        raise ValueError(_USAGE)
    channel = int(found[1])
    if found[5] is not None:
        bend = int(found[5])
        if not (1 <= channel <= 16 and 0 <= bend <= PITCH_BEND_TOP):
            raise ValueError(f"channel must be 1-16 and a pitch bend 0-{PITCH_BEND_TOP}")
        pitch = bend - PITCH_BEND_CENTRE
        return mido.Message("pitchwheel", channel=channel - 1, pitch=pitch), False
    number, value = int(found[3]), int(found[4])
    if not (1 <= channel <= 16 and 0 <= number <= 127):
        raise ValueError("channel must be 1-16 and note or controller 0-127")
    clamped = min(127, max(0, value))
    kind = found[2]
    if kind == "cc":
        message = mido.Message("control_change", channel=channel - 1, control=number, value=clamped)
    elif kind == "noteon" and clamped > 0:
        message = mido.Message("note_on", channel=channel - 1, note=number, velocity=clamped)
    else:  # a note-on at velocity 0 is a note-off
        message = mido.Message("note_off", channel=channel - 1, note=number, velocity=clamped)
    return message, clamped != value


def origin_allowed(origin: str, allowed: Iterable[str] = (), hosts: Hosts | None = None) -> bool:
    """Whether a browser page from ``origin`` may connect: one of ``allowed`` (exactly,
    e.g. "https://example.org:8443"), or an http(s) page served by this machine (one
    of ``hosts``' names: the channel keeps one, which looks at interfaces seldom)."""
    origin = origin.strip().lower().rstrip("/")
    if origin in {a.strip().lower().rstrip("/") for a in allowed}:
        return True
    try:
        parts = urlsplit(origin)
        host = parts.hostname
        parts.port  # noqa: B018 (a malformed port raises ValueError here)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        pass  # a name, not an address
    return (hosts or Hosts()).allows(host)


class WebSocketChannel(Channel):
    name = "websocket"

    def __init__(self, config: WebSocketConfig) -> None:
        self.config = config
        self.allowed_origins: Sequence[str] = tuple(config.allowed_origins)
        self._hosts = Hosts()
        self._decoder = Decoder(config.input or [])
        self._encoder = Encoder(config.output or [])
        self.input_labels = [label(m) for m in self._decoder.mappings]
        self.output_labels = [label(m) for m in self._encoder.mappings]
        self._server: Server | None = None
        self._inputs: Inputs | None = None
        self.skipped = 0  # frames not sent to clients that were not reading

    async def _open(self, inputs: Inputs) -> None:
        self._inputs = inputs
        c = self.config
        try:
            self._server = await serve(
                self._client,
                c.server_ip,
                c.server_port,
                process_request=self._admit,
                open_timeout=OPEN_TIMEOUT,
                max_size=MAX_FRAME,
                max_queue=MAX_QUEUE,
                close_timeout=1,
            )
        except OSError as exc:
            raise AntiphonError(
                f"cannot listen for WebSockets on {c.server_ip}:{c.server_port} "
                f"({exc.strerror or exc}); choose another [websocket].server_port"
            ) from None

    @property
    def server_port(self) -> int:
        """The port listened on: ``[websocket].server_port``, or the one chosen for 0."""
        assert self._server is not None
        return next(iter(self._server.sockets)).getsockname()[1]

    @property
    def state(self) -> str:
        clients = len(self._server.connections) if self._server else 0
        return f"listening on {self.config.server_ip}:{self.config.server_port}, {clients} clients"

    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse a handshake from a foreign web page, or beyond MAX_CLIENTS."""
        assert self._inputs is not None
        origins = request.headers.get_all("Origin")
        if origins and (
            len(origins) > 1 or not origin_allowed(origins[0], self.allowed_origins, self._hosts)
        ):
            self._inputs.warn(
                "websocket-origin",
                f"websocket: refused a browser page from {shown(', '.join(origins), 60)} "
                "(not this machine; allow it with [websocket].allowed_origins)",
            )
            return connection.respond(HTTPStatus.FORBIDDEN, "Origin not allowed\n")
        if len(self._server.connections if self._server else ()) >= MAX_CLIENTS:
            self._inputs.warn(
                "websocket-full",
                f"websocket: refused a client: {MAX_CLIENTS} are already connected",
            )
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Too many clients\n")
        return None

    async def _client(self, connection: ServerConnection) -> None:
        assert self._inputs is not None
        self._encoder.resend()  # the newcomer has heard no control change yet
        try:
            async for data in connection:
                text = data if isinstance(data, str) else data.decode("utf-8", "replace")
                try:
                    message, clamped = parse(text)
                except ValueError as exc:
                    self._inputs.warn(
                        "websocket-frame", f"websocket: dropped frame {shown(text, 60)}: {exc}"
                    )
                    continue
                if clamped:
                    self._inputs.warn(
                        "websocket-range",
                        f"websocket: clamped a value outside 0-127 in {shown(text, 60)}",
                    )
                updates = self._decoder.decode(message)
                if updates:
                    self._inputs.on_controls(self.name, updates, describe(message))
        except ConnectionClosed:
            pass

    def _broadcast(self, messages: Sequence[mido.Message]) -> None:
        if self._server is None or not messages:
            return
        ready = []
        for connection in self._server.connections:
            transport = connection.transport
            if transport is not None and transport.get_write_buffer_size() > MAX_BUFFERED:
                assert self._inputs is not None
                self.skipped += len(messages)
                self._inputs.warn(
                    "websocket-slow",
                    f"websocket: a client at {connection.remote_address} is not reading; "
                    f"skipping it ({self.skipped} frames skipped so far)",
                )
                continue
            ready.append(connection)
        for message in messages:
            broadcast(ready, frame(message))

    def _send(self, values: Sequence[float]) -> None:
        self._broadcast(self._encoder.encode(values))

    def describe(self, values: Sequence[float]) -> str:
        return self._encoder.describe(values)

    async def _close(self) -> None:
        if self._server is None:
            return
        self._broadcast(self._encoder.note_offs())
        self._server.close()
        await self._server.wait_closed()
