"""Which channel class serves which config section, chosen by name as mido chooses
a backend: a module is imported only when its section is configured, so an
instrument without ``[midi]`` never loads rtmidi.

``SECTIONS`` is the one list of config sections whose presence switches a channel
on, in the order channels are opened (and in which the first channel with control
labels names the controls). ``NAMES`` adds the two channels ``[webui]`` always makes:
the localhost command port and the monitor stream (``antiphon.io.local``).
"""

from __future__ import annotations

import importlib
from typing import Any

from antiphon.io.channel import Channel

CHANNELS: dict[str, str] = {
    "osc": "antiphon.io.osc:OSCChannel",
    "midi": "antiphon.io.midi:MIDIChannel",
    "websocket": "antiphon.io.websocket:WebSocketChannel",
    "serial": "antiphon.io.serial:SerialChannel",
    "serialmidi": "antiphon.io.serialmidi:SerialMIDIChannel",
}
"""Config section -> "module:class" of its channel."""

SECTIONS = tuple(CHANNELS)

LOCAL: dict[str, str] = {
    "command port": "antiphon.io.local:CommandPort",
    "monitor": "antiphon.io.local:Monitor",
}
"""Channels made from [webui], which every config has."""

LOCAL_PORTS: dict[str, str] = {"command port": "command_port", "monitor": "monitor_port"}
"""The one [webui] key each local channel is made from: a new password or web port
leaves them open."""

NAMES = SECTIONS + tuple(LOCAL)


def section(name: str) -> str:
    """The config section the channel ``name`` is made from."""
    return "webui" if name in LOCAL else name


def channel_class(name: str) -> type[Channel]:
    """The class of the channel ``name``; ValueError for a name with no channel."""
    where = CHANNELS.get(name) or LOCAL.get(name)
    if where is None:
        raise ValueError(f"no channel called {name!r}; channels are {', '.join(NAMES)}")
    module, attribute = where.split(":")
    found: Any = getattr(importlib.import_module(module), attribute)
    return found


def build(name: str, table: Any) -> Channel:
    """The channel ``name`` made from its config section's table."""
    return channel_class(name)(table)
