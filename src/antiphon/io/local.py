"""The two localhost OSC ports of ``[webui]``, as channels like any other.

- the command port (``127.0.0.1:command_port``) takes ``/impsy/...`` commands from
  programs on this computer (IMPSY's web UI sent them there) but no performer input;
- the monitor (to ``127.0.0.1:monitor_port``) sends ``/monitor/in`` for every input
  heard and ``/monitor/out`` for every event the model plays, as IMPSY does.

Neither can stop the instrument: a command port that is taken is reported and the
music plays on without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from antiphon.config import WebUIConfig
from antiphon.errors import AntiphonError
from antiphon.io import osc
from antiphon.io.channel import Channel, Inputs

LOCALHOST = "127.0.0.1"


class CommandPort(Channel):
    name = "command port"

    def __init__(self, config: WebUIConfig) -> None:
        self.server_port = config.command_port
        self._server: asyncio.DatagramTransport | None = None
        self._problem: str | None = None

    async def _open(self, inputs: Inputs) -> None:
        try:
            self._server = await osc.listen(
                inputs, LOCALHOST, self.server_port, self.name, accept_interface=False
            )
        except AntiphonError as exc:
            self._problem = str(exc)
            inputs.warn("command-port", f"commands from the web UI will not work: {exc}")

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.get_protocol().closed  # the port is free once this is done
            self._server = None

    @property
    def dropped(self) -> int:
        return osc.dropped_by_the_system(self._server) if self._server is not None else 0

    @property
    def state(self) -> str:
        if self._problem:
            return f"not listening: {self._problem}"
        return f"in {LOCALHOST}:{self.server_port}"


class Monitor(Channel):
    name = "monitor"
    echoes_thru = False  # /monitor/out is what the model played, not the performer's echo

    def __init__(self, config: WebUIConfig) -> None:
        self.client_port = config.monitor_port
        self._sender: osc.Sender | None = None

    async def _open(self, inputs: Inputs) -> None:
        self._sender = await osc.Sender.open(LOCALHOST, self.client_port)

    def heard(self, values: Sequence[float]) -> None:
        if self._sender is not None:
            self._sender.send(osc.floats("/monitor/in", values))

    def _send(self, values: Sequence[float]) -> None:
        if self._sender is not None:
            self._sender.send(osc.floats("/monitor/out", values))

    async def _close(self) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender = None

    @property
    def state(self) -> str:
        return f"out {LOCALHOST}:{self.client_port}"
