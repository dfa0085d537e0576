"""The channels a performance plays through: opened together, sent to together, each
one's failure its own.

A device that fails while sending (a synth unplugged mid-phrase) is reported and the
other channels play on; a reload reopens only the channels whose config changed, and
keeps a working channel when its new settings cannot be opened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from antiphon.config import Config
from antiphon.engine.setup import build_channel, channel_settings
from antiphon.errors import AntiphonError, Substitution
from antiphon.io.channel import Channel, Inputs
from antiphon.io.registry import NAMES

Build = Callable[[str, Config], Channel | None]
"""Makes the channel called ``name`` from a config, or None if it is not configured."""


class ChannelSet:
    def __init__(self, channels: dict[str, Channel], warn: Callable[[str, str], None]) -> None:
        self._channels = dict(channels)
        self._warn = warn
        self._index()

    # -- the hot path ---------------------------------------------------------------------
    def send(self, values: Sequence[float]) -> None:
        """An event the model plays, to every channel."""
        for channel in self._all:
            self._send(channel, values)

    def thru(self, values: Sequence[float]) -> None:
        """The performer's input echoed (``input_thru``)."""
        for channel in self._echoing:
            self._send(channel, values)

    def heard(self, values: Sequence[float]) -> None:
        """The performer's input, for the channels that show it."""
        for channel in self._listening:
            try:
                channel.heard(values)
            except Exception as exc:
                self._failed(channel, exc)

    def _send(self, channel: Channel, values: Sequence[float]) -> None:
        try:
            channel.send(values)
        except Exception as exc:  # a failing device must not stop the other channels
            self._failed(channel, exc)

    def _failed(self, channel: Channel, exc: Exception) -> None:
        self._warn(f"send {channel.name}", f"{channel.name}: could not send ({exc})")

    # -- opening and closing --------------------------------------------------------------
    async def open(self, inputs: Inputs) -> None:
        """Open every channel; if one cannot be opened, close the others and raise."""
        opened: list[Channel] = []
        try:
            for channel in self._channels.values():
                await channel.open(inputs)
                opened.append(channel)
        except BaseException:
            for channel in opened:
                await self._close(channel)
            raise

    async def close(self) -> None:
        for channel in list(self._channels.values()):  # closing awaits: the dict may change
            await self._close(channel)

    async def _close(self, channel: Channel) -> None:
        try:
            await channel.close()
        except Exception as exc:  # one channel failing to close must not leave others open
            self._warn(f"close {channel.name}", f"closing {channel.name}: {exc}")

    async def reopen(
        self, old: Config, new: Config, inputs: Inputs, build: Build = build_channel
    ) -> None:
        """Switch from ``old`` to ``new``: reopen the channels whose settings changed
        (all of them when the dimension changed); keep a working channel whose new
        settings cannot be opened.

        The loop plays on while a channel closes and opens, so what ``send`` reaches is
        kept up to date after every change: a closed channel is never sent to, and a
        channel that cannot be opened again is simply gone (with a warning)."""
        resized = new.model.dimension != old.model.dimension
        for name in NAMES:
            before, after = channel_settings(name, old), channel_settings(name, new)
            if before == after and not resized:
                continue
            channel = self._channels.pop(name, None)
            if channel is not None:
                self._index()
                await self._close(channel)
            replacement, problem = await self._opened(name, new, inputs, build)
            if problem is not None and (before is None or resized):  # nothing to go back to
                self._warn(f"reload {name}", f"reload: [{name}] could not be opened: {problem}")
            elif problem is not None:
                replacement, again = await self._opened(name, old, inputs, build)
                self._warn(
                    f"reload {name}",
                    f"reload: the new [{name}] could not be opened ({problem}); "
                    + (
                        f"keeping the previous [{name}]"
                        if again is None
                        else f"nor could the previous one ({again}): [{name}] is off"
                    ),
                )
            if replacement is not None:
                self._channels[name] = replacement
                self._index()

    async def _opened(
        self, name: str, config: Config, inputs: Inputs, build: Build
    ) -> tuple[Channel | None, AntiphonError | None]:
        """The channel ``name`` built from ``config`` and opened (None when ``config``
        has none), or why it could not be opened."""
        channel = build(name, config)
        if channel is None:
            return None, None
        try:
            await channel.open(inputs)
        except AntiphonError as exc:
            return None, exc
        return channel, None

    # -- looking at them -----------------------------------------------------------------
    def __getitem__(self, name: str) -> Channel:
        return self._channels[name]

    def __contains__(self, name: object) -> bool:
        return name in self._channels

    def __iter__(self) -> Iterator[Channel]:
        return iter(self._channels.values())

    def __len__(self) -> int:
        return len(self._channels)

    def describe(self) -> list[dict[str, object]]:
        """Each channel's name, state and labels, for a dashboard."""
        return [
            {
                "name": c.name,
                "state": c.state,
                "input_labels": c.input_labels,
                "output_labels": c.output_labels,
                "dropped": c.dropped,
            }
            for c in self
        ]

    def substitutions(self) -> list[Substitution]:
        """What the channels use in place of what the config asks (an address that
        does not resolve, ...)."""
        return [s for c in self for s in c.substitutions]

    def labels(self, controls: int) -> list[str]:
        """A name for each control, from the first channel that maps them."""
        for channel in self:
            if channel.input_labels:
                return list(channel.input_labels)
        for channel in self:
            if channel.output_labels:
                return list(channel.output_labels)
        return [f"x{i + 1}" for i in range(controls)]

    def _index(self) -> None:
        channels = tuple(self._channels.values())
        self._all = channels
        self._echoing = tuple(c for c in channels if c.echoes_thru)
        self._listening = tuple(c for c in channels if type(c).heard is not Channel.heard)
