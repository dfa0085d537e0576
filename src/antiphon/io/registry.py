"""Which channel class serves which config section, chosen by name as mido chooses
a backend: a module is imported only when its section is configured, so an
instrument without ``[midi]`` never loads rtmidi.

``SECTIONS`` is the one list of channel names, in the order channels are opened (and
in which the first channel with control labels names the controls).
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


def channel_class(section: str) -> type[Channel]:
    """The channel class for ``[section]``; ValueError for a section with no channel."""
    if section not in CHANNELS:
        raise ValueError(f"no channel for [{section}]; channels are {', '.join(SECTIONS)}")
    module, name = CHANNELS[section].split(":")
    found: Any = getattr(importlib.import_module(module), name)
    return found


def build(section: str, table: Any) -> Channel:
    """A channel made from its config section's table."""
    return channel_class(section)(table)
