"""WebSocket server speaking IMPSY's text frames, for any number of clients.

Frames: ``/channel/{ch}/noteon/{note}/{vel}``, ``/channel/{ch}/noteoff/{note}/{vel}``,
``/channel/{ch}/cc/{ctrl}/{value}`` (ch 1-based), mapped with ``[websocket].input``
and ``.output`` like MIDI. What is played goes to every connected client; a client
that stops reading is skipped (and counted) rather than buffered without bound.
"""

from __future__ import annotations

from collections.abc import Sequence

import mido
from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

from antiphon.config import WebSocketConfig
from antiphon.errors import AntiphonError
from antiphon.io.channel import Channel, Inputs
from antiphon.io.mapping import Decoder, Encoder, describe, label

MAX_BUFFERED = 64 * 1024
"""Bytes waiting to be sent to one client beyond which its frames are dropped."""

_KINDS = {"noteon": "note_on", "noteoff": "note_off", "cc": "control_change"}


def frame(message: mido.Message) -> str:
    """A MIDI message as an IMPSY WebSocket frame."""
    channel = message.channel + 1
    if message.type == "control_change":
        return f"/channel/{channel}/cc/{message.control}/{message.value}"
    kind = "noteon" if message.type == "note_on" else "noteoff"
    return f"/channel/{channel}/{kind}/{message.note}/{message.velocity}"


def parse(text: str) -> mido.Message:
    """An IMPSY WebSocket frame as a MIDI message; ValueError says what is wrong."""
    parts = text.strip().split("/")
    if len(parts) != 6 or parts[0] or parts[1] != "channel" or parts[3] not in _KINDS:
        raise ValueError("expected /channel/{ch}/noteon|noteoff|cc/{number}/{value}")
    try:
        channel, number, value = int(parts[2]), int(parts[4]), int(parts[5])
    except ValueError:
        raise ValueError("channel, number and value must be whole numbers") from None
    if not (1 <= channel <= 16 and 0 <= number <= 127 and 0 <= value <= 127):
        raise ValueError("channel must be 1-16, number and value 0-127")
    kind = _KINDS[parts[3]]
    if kind == "control_change":
        return mido.Message(kind, channel=channel - 1, control=number, value=value)
    return mido.Message(kind, channel=channel - 1, note=number, velocity=value)


class WebSocketChannel(Channel):
    name = "websocket"

    def __init__(self, config: WebSocketConfig) -> None:
        self.config = config
        self._decoder = Decoder(config.input or [])
        self._encoder = Encoder(config.output or [])
        self.input_labels = [label(m) for m in self._decoder.mappings]
        self.output_labels = [label(m) for m in self._encoder.mappings]
        self._server: Server | None = None
        self._inputs: Inputs | None = None

    async def open(self, inputs: Inputs) -> None:
        self._inputs = inputs
        c = self.config
        try:
            self._server = await serve(
                self._client,
                c.server_ip,
                c.server_port,
                max_size=4096,
                max_queue=64,
                close_timeout=1,
            )
        except OSError as exc:
            raise AntiphonError(
                f"cannot listen for WebSockets on {c.server_ip}:{c.server_port} "
                f"({exc.strerror or exc}); choose another [websocket].server_port"
            ) from None

    @property
    def port(self) -> int:
        assert self._server is not None
        return next(iter(self._server.sockets)).getsockname()[1]

    @property
    def state(self) -> str:
        clients = len(self._server.connections) if self._server else 0
        return f"listening on {self.config.server_ip}:{self.config.server_port}, {clients} clients"

    async def _client(self, connection: ServerConnection) -> None:
        assert self._inputs is not None
        try:
            async for data in connection:
                text = data if isinstance(data, str) else data.decode("utf-8", "replace")
                try:
                    message = parse(text)
                except ValueError as exc:
                    self._inputs.warn(
                        "websocket-frame", f"websocket: dropped frame {text[:60]!r}: {exc}"
                    )
                    continue
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
                self._inputs.warn(
                    "websocket-slow",
                    f"websocket: a client at {connection.remote_address} is not reading; "
                    "skipping it",
                )
                continue
            ready.append(connection)
        for message in messages:
            broadcast(ready, frame(message))

    def send(self, values: Sequence[float]) -> None:
        self._broadcast(self._encoder.encode(values))

    def describe(self, values: Sequence[float]) -> str:
        return self._encoder.describe(values)

    async def close(self) -> None:
        if self._server is None:
            return
        self._broadcast(self._encoder.note_offs())
        self._server.close()
        await self._server.wait_closed()
