"""Open Sound Control over UDP: performer input, played output, commands.

- in on ``[osc].server_ip:server_port``: ``/interface f...`` (the performer's controls)
  and the ``/impsy/...`` commands;
- out to ``[osc].client_ip:client_port``: ``/impsy f...`` for every played event.

The localhost command port and the monitor stream use the same pieces
(``antiphon.io.local``).

``oscwire`` reads every received datagram (defensively: a malformed one is dropped,
counted and reported under the one warning kind ``osc-malformed``) and builds every
sent one. The sockets are asyncio datagram endpoints, so receiving a message and
playing its answer happen on the engine's loop without a thread hop.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Sequence

from antiphon.config import OSCConfig
from antiphon.engine.commands import PREFIX
from antiphon.errors import AntiphonError, Substitution, shown
from antiphon.io import oscwire
from antiphon.io.channel import Channel, Inputs
from antiphon.io.oscwire import floats

UDP_TABLE = "/proc/net/udp"  # IPv4: every socket antiphon listens on is AF_INET
INPUT_ADDRESS = "/interface"
OUTPUT_ADDRESS = "/impsy"
MAX_UNSENT = 64 * 1024
"""Bytes of outgoing datagrams kept waiting for a busy socket at most."""


def message(address: str, values: Sequence[oscwire.Argument]) -> bytes:
    """One OSC message as a datagram (floats as 32-bit floats, as Pd expects)."""
    return oscwire.encode(address, values)


class _Receiver(asyncio.DatagramProtocol):
    """Routes every message of every datagram; never raises on what arrives."""

    def __init__(self, inputs: Inputs, source: str, accept_interface: bool) -> None:
        self.inputs = inputs
        self.source = source
        self.accept_interface = accept_interface
        self.malformed = 0  # datagrams dropped by the parser
        self.closed = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            messages = oscwire.parse(data)
        except oscwire.ParseError as exc:
            self.malformed += 1
            self.inputs.warn(
                "osc-malformed",
                f"{self.source}: dropped a malformed OSC packet from {addr[0]} ({exc})",
            )
            return
        for address, args in messages:
            if address == INPUT_ADDRESS and self.accept_interface:
                self.inputs.on_input(self.source, args)
            elif address.startswith(PREFIX):
                self.inputs.on_command(address, args, self.source)
            else:
                self.inputs.warn(
                    f"osc-address {self.source}",
                    f"{self.source}: ignored OSC message to unknown address "
                    f"{shown(address, 60)} (antiphon listens for {INPUT_ADDRESS} and "
                    f"{PREFIX}...)",
                )

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable
        pass


class Sender:
    """Sends datagrams to one address from an unconnected socket (never blocks).

    When the socket cannot take a datagram asyncio keeps it, without limit; past
    ``MAX_UNSENT`` bytes kept, datagrams are dropped (and counted in ``dropped``), as
    the network would drop them."""

    def __init__(self, transport: asyncio.DatagramTransport, address: tuple[str, int]) -> None:
        self.transport = transport
        self.address = address
        self.dropped = 0

    @classmethod
    async def open(cls, host: str, port: int) -> Sender:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, family=socket.AF_INET, local_addr=("0.0.0.0", 0)
        )
        return cls(transport, (host, port))

    def send(self, datagram: bytes) -> None:
        if self.transport.get_write_buffer_size() > MAX_UNSENT:
            self.dropped += 1
            return
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


def dropped_by_the_system(transport: asyncio.DatagramTransport) -> int:
    """Datagrams the system threw away for this socket because they came faster than
    antiphon read them (its receive buffer was full): a flood loses most of what it
    sends there, and without this count nobody would know. Linux reports it per socket
    in /proc/net/udp; elsewhere this is 0."""
    sock = transport.get_extra_info("socket")
    if sock is None or not os.path.exists(UDP_TABLE):
        return 0
    try:
        inode = str(os.fstat(sock.fileno()).st_ino)
        with open(UDP_TABLE, encoding="ascii") as table:
            for line in table:
                fields = line.split()
                if len(fields) > 12 and fields[9] == inode:
                    return int(fields[12])
    except (OSError, ValueError):
        pass
    return 0


FALLBACK_HOST = "127.0.0.1"
"""Where output goes when ``client_ip`` names no machine this one can find: the
same machine, where a synth or patch is most often, rather than nowhere."""


async def resolve(host: str, what: str) -> tuple[str, Substitution | None]:
    """An IPv4 address for ``host``, or FALLBACK_HOST and why when it does not
    resolve (``host.docker.internal`` outside Docker, a mistyped name)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, family=socket.AF_INET, type=socket.SOCK_DGRAM)
        return infos[0][4][0], None
    except OSError:
        return FALLBACK_HOST, Substitution(
            f"{what} = {host!r}",
            f"sending to {FALLBACK_HOST} (this machine)",
            f"{host!r} is not a name this machine can resolve",
            f"set {what} to an address or a name that resolves here (outside Docker, "
            '"host.docker.internal" is usually "127.0.0.1")',
        )


class OSCChannel(Channel):
    """``/interface`` in, ``/impsy`` out, commands on the same port."""

    name = "osc"

    def __init__(self, config: OSCConfig) -> None:
        self.config = config
        self._server: asyncio.DatagramTransport | None = None
        self._client: Sender | None = None

    async def _open(self, inputs: Inputs) -> None:
        c = self.config
        self._server = await listen(
            inputs, c.server_ip, c.server_port, self.name, accept_interface=True
        )
        host, substitution = await resolve(c.client_ip, "[osc].client_ip")
        if substitution is not None:
            self.substitutions = (substitution,)
            inputs.warn("resolve [osc].client_ip", f"osc: {substitution}")
        self._client = await Sender.open(host, c.client_port)

    @property
    def server_port(self) -> int:
        """The port listened on: ``[osc].server_port``, or the one chosen for 0."""
        assert self._server is not None
        return self._server.get_extra_info("sockname")[1]

    @property
    def malformed(self) -> int:
        """Datagrams dropped as malformed since the channel opened."""
        return self._server.get_protocol().malformed if self._server is not None else 0

    def _send(self, values: Sequence[float]) -> None:
        assert self._client is not None
        self._client.send(floats(OUTPUT_ADDRESS, values))

    async def _close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._server is not None:
            self._server.close()
            await self._server.get_protocol().closed  # the port is free once this is done

    @property
    def dropped(self) -> int:
        return dropped_by_the_system(self._server) if self._server is not None else 0

    @property
    def state(self) -> str:
        c = self.config
        sent_to = self._client.address[0] if self._client is not None else c.client_ip
        if self.substitutions:
            where = f"{sent_to} (in place of {c.client_ip}, which does not resolve)"
        elif sent_to != c.client_ip:
            where = f"{c.client_ip} ({sent_to})"
        else:
            where = sent_to
        state = f"in {c.server_ip}:{c.server_port}, out {where}:{c.client_port}"
        if self.malformed:
            state += f", {self.malformed} malformed packets dropped"
        if dropped := self.dropped:
            state += f", {dropped} datagrams lost in a flood (sent faster than read)"
        return state
