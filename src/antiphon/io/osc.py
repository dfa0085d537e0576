"""Open Sound Control over UDP: performer input, played output, commands, monitor.

- in on ``[osc].server_ip:server_port``: ``/interface f...`` (the performer's controls)
  and the ``/impsy/...`` commands;
- out to ``[osc].client_ip:client_port``: ``/impsy f...`` for every played event;
- commands also on ``127.0.0.1:[webui].command_port`` (localhost only);
- monitor: ``/monitor/in f...`` and ``/monitor/out f...`` to ``127.0.0.1:[webui].monitor_port``.

python-osc parses and builds the packets; the sockets are asyncio datagram
endpoints, so receiving a message and playing its answer happen on the engine's loop
without a thread hop.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import struct
from collections.abc import Sequence

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket, ParseError

from antiphon.config import OSCConfig
from antiphon.errors import AntiphonError
from antiphon.io.channel import Channel, Inputs

INPUT_ADDRESS = "/interface"
OUTPUT_ADDRESS = "/impsy"
COMMAND_PREFIX = "/impsy/"


def message(address: str, values: Sequence[float | int | str]) -> bytes:
    """One OSC message as a datagram (floats as 32-bit floats, as Pd expects)."""
    builder = OscMessageBuilder(address)
    for value in values:
        builder.add_arg(value)
    return builder.build().dgram


@functools.cache
def _float_header(address: str, count: int) -> bytes:
    return message(address, [0.0] * count)[: -4 * count]


def floats(address: str, values: Sequence[float]) -> bytes:
    """The same datagram as ``message`` for float-only messages, ten times faster:
    every played event is built this way, so it is on the hot path."""
    return _float_header(address, len(values)) + struct.pack(f">{len(values)}f", *values)


class _Receiver(asyncio.DatagramProtocol):
    """Routes every message of every datagram; never raises on what arrives."""

    def __init__(self, inputs: Inputs, source: str, accept_interface: bool) -> None:
        self.inputs = inputs
        self.source = source
        self.accept_interface = accept_interface

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            messages = OscPacket(data).messages
        except ParseError:
            self.inputs.warn(
                "osc-malformed", f"{self.source}: dropped a malformed OSC packet from {addr[0]}"
            )
            return
        for timed in messages:
            address, params = timed.message.address, timed.message.params
            if address == INPUT_ADDRESS and self.accept_interface:
                self.inputs.on_input(self.source, params)
            elif address.startswith(COMMAND_PREFIX):
                self.inputs.on_command(address, params, self.source)
            else:
                self.inputs.warn(
                    f"osc-address {self.source}",
                    f"{self.source}: ignored OSC message to unknown address {address!r} "
                    f"(antiphon listens for {INPUT_ADDRESS} and {COMMAND_PREFIX}...)",
                )

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable
        pass


class Sender:
    """Sends datagrams to one address from an unconnected socket (never blocks)."""

    def __init__(self, transport: asyncio.DatagramTransport, address: tuple[str, int]) -> None:
        self.transport = transport
        self.address = address

    @classmethod
    async def open(cls, host: str, port: int) -> Sender:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, family=socket.AF_INET, local_addr=("0.0.0.0", 0)
        )
        return cls(transport, (host, port))

    def send(self, datagram: bytes) -> None:
        self.transport.sendto(datagram, self.address)

    def close(self) -> None:
        self.transport.close()


async def listen(
    inputs: Inputs, host: str, port: int, source: str, *, accept_interface: bool
) -> asyncio.DatagramTransport:
    """An OSC server; raises AntiphonError if the port cannot be had."""
    loop = asyncio.get_running_loop()
    try:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Receiver(inputs, source, accept_interface),
            local_addr=(host, port),
            family=socket.AF_INET,
        )
    except OSError as exc:
        raise AntiphonError(
            f"cannot listen for OSC on {host}:{port} ({exc.strerror or exc}); is another "
            "antiphon or IMPSY running? Stop it or choose another port in config.toml"
        ) from None
    return transport


async def resolve(host: str, inputs: Inputs, what: str) -> str:
    """An IPv4 address for ``host``; 127.0.0.1 (with a warning) if it does not resolve."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, family=socket.AF_INET, type=socket.SOCK_DGRAM)
        return infos[0][4][0]
    except OSError:
        inputs.warn(
            f"resolve {what}",
            f"{what} = {host!r} is not a name this machine can resolve; sending to "
            "127.0.0.1 instead",
        )
        return "127.0.0.1"


class OSCChannel(Channel):
    """``/interface`` in, ``/impsy`` out, commands on the same port."""

    name = "osc"

    def __init__(self, config: OSCConfig) -> None:
        self.config = config
        self._server: asyncio.DatagramTransport | None = None
        self._client: Sender | None = None

    async def open(self, inputs: Inputs) -> None:
        c = self.config
        self._server = await listen(
            inputs, c.server_ip, c.server_port, self.name, accept_interface=True
        )
        host = await resolve(c.client_ip, inputs, "[osc].client_ip")
        self._client = await Sender.open(host, c.client_port)

    @property
    def port(self) -> int:
        """The port actually listened on (useful when configured as 0)."""
        assert self._server is not None
        return self._server.get_extra_info("sockname")[1]

    def send(self, values: Sequence[float]) -> None:
        if self._client is not None:
            self._client.send(floats(OUTPUT_ADDRESS, values))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._client is not None:
            self._client.close()

    @property
    def state(self) -> str:
        c = self.config
        return f"in {c.server_ip}:{c.server_port}, out {c.client_ip}:{c.client_port}"


class Monitor:
    """``/monitor/in`` and ``/monitor/out`` to a localhost port, as IMPSY sends them."""

    def __init__(self, sender: Sender) -> None:
        self._sender = sender

    @classmethod
    async def open(cls, port: int) -> Monitor:
        return cls(await Sender.open("127.0.0.1", port))

    def input(self, values: Sequence[float]) -> None:
        self._sender.send(floats("/monitor/in", values))

    def output(self, values: Sequence[float]) -> None:
        self._sender.send(floats("/monitor/out", values))

    def close(self) -> None:
        self._sender.close()
