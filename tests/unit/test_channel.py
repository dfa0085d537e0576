"""Every channel has the same life (new -> open -> closed, as mido's ports), devices
come back through one reconnect helper, and channels are found by section name."""

from __future__ import annotations

import asyncio
import socket

import pytest

from antiphon.config import OSCConfig, parse
from antiphon.engine.channels import ChannelSet
from antiphon.engine.setup import build_channel
from antiphon.errors import AntiphonError
from antiphon.io import registry
from antiphon.io.channel import Backoff, Channel, ChannelClosed, Reconnect
from antiphon.io.osc import OSCChannel


class Warned:
    def __init__(self) -> None:
        self.warnings: list[tuple[str, str]] = []

    def warn(self, kind: str, message: str) -> None:
        self.warnings.append((kind, message))


class Probe(Channel):
    name = "probe"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[str] = []

    async def _open(self, inputs):
        self.calls.append("open")
        if self.fail:
            raise AntiphonError("no such thing")

    def _send(self, values):
        self.calls.append(f"send {list(values)}")

    async def _close(self):
        self.calls.append("close")


def test_a_channel_opens_once_sends_while_open_and_closes_once():
    async def scenario():
        probe = Probe()
        with pytest.raises(ChannelClosed, match="new"):
            probe.send([0.5])
        async with probe:
            await probe.open(Warned())
            assert probe.state == "open" and not probe.closed
            probe.send([0.5])
        assert probe.closed
        await probe.close()  # harmless
        with pytest.raises(ChannelClosed, match="closed"):
            probe.send([0.5])
        with pytest.raises(ChannelClosed):
            await probe.open(Warned())
        return probe.calls

    assert asyncio.run(scenario()) == ["open", "send [0.5]", "close"]


def test_a_channel_that_fails_to_open_is_closed():
    async def scenario():
        probe = Probe(fail=True)
        with pytest.raises(AntiphonError):
            await probe.open(Warned())
        assert probe.closed
        return probe.calls

    assert asyncio.run(scenario()) == ["open", "close"]


def test_a_real_osc_channel_lives_the_same_way_and_frees_its_port():
    async def scenario():
        config = OSCConfig(server_ip="127.0.0.1", server_port=0, client_port=9)
        async with OSCChannel(config) as channel:
            await channel.open(Warned())
            port = channel.server_port
            channel.send([0.5, 0.5])
        assert channel.closed
        with pytest.raises(ChannelClosed):
            channel.send([0.5, 0.5])
        await channel.close()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
            again.bind(("127.0.0.1", port))  # free once close() has returned

    asyncio.run(scenario())


def test_reconnect_says_each_problem_once():
    async def scenario():
        engine = Warned()
        outcomes = iter(["missing", "missing", "missing", None, "gone", None])
        connected = asyncio.Event()

        def connect():
            outcome = next(outcomes)
            if outcome is None:
                connected.set()
            return outcome

        reconnect = Reconnect(engine, "device x", "x: /dev/x", connect, Backoff(0.001, 0.004))
        reconnect.start()
        assert reconnect.problem == "missing"
        await asyncio.wait_for(connected.wait(), 10)
        assert reconnect.problem is None
        connected.clear()
        reconnect.lost("unplugged")
        assert reconnect.problem == "lost it: unplugged"
        await asyncio.wait_for(connected.wait(), 10)
        reconnect.cancel()
        return engine.warnings

    warnings = asyncio.run(scenario())
    assert {kind for kind, _ in warnings} == {"device x"}
    assert [message for _, message in warnings] == [
        "x: /dev/x: missing; retrying in the background (everything else keeps playing)",
        "x: /dev/x is connected again",
        "x: /dev/x: lost it (unplugged); waiting for it",
        "x: /dev/x is connected again",
    ]


@pytest.mark.parametrize("name", registry.NAMES)
def test_every_channel_name_names_its_channel_class(name):
    found = registry.channel_class(name)
    assert issubclass(found, Channel) and found.name == name


def test_build_channel_uses_the_registry_and_refuses_what_it_cannot_build():
    config = parse("[osc]\nserver_port = 6100\n[model]\ndimension = 4\n", dimension=None)
    channel = build_channel("osc", config)
    assert isinstance(channel, OSCChannel) and channel.config is not config.osc
    assert channel.config == config.osc  # a copy: later edits of the config are not seen
    assert build_channel("midi", config) is None  # not configured: no channel
    assert build_channel("monitor", config).client_port == config.webui.monitor_port
    with pytest.raises(ValueError, match="no channel called 'webui'"):
        build_channel("webui", config)


# -- a reload's reopening (engine.channels.ChannelSet.reopen) ------------------------------

OLD, NEW = parse("[osc]\nserver_port = 7000\n"), parse("[osc]\nserver_port = 7010\n")


class SlowToClose(Probe):
    """Closes only when the test lets it, as a device flushing its notes would."""

    name = "osc"

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def _close(self):
        self.calls.append("close")
        await self.gate.wait()


def test_a_reload_never_sends_to_a_channel_it_is_closing():
    async def scenario():
        warned, old = Warned(), SlowToClose()
        await old.open(warned)
        channels = ChannelSet({"osc": old}, warned.warn)
        new = SlowToClose()
        reopening = asyncio.create_task(channels.reopen(OLD, NEW, warned, lambda n, c: new))
        while not old.closed:
            await asyncio.sleep(0)
        channels.send([0.5])  # the model plays while the old port closes
        old.gate.set()
        await reopening
        channels.send([0.25])
        return warned.warnings, old.calls, new.calls

    warnings, old_calls, new_calls = asyncio.run(scenario())
    assert warnings == []
    assert old_calls == ["open", "close"] and new_calls == ["open", "send [0.25]"]


def test_a_reload_whose_old_settings_fail_too_drops_the_channel_and_says_so():
    async def scenario():
        warned, old = Warned(), SlowToClose()
        old.gate.set()
        await old.open(warned)
        channels = ChannelSet({"osc": old}, warned.warn)
        built = []

        def build(name, config):
            built.append(config)
            return Probe(fail=True) if name == "osc" else None

        await channels.reopen(OLD, NEW, warned, build)  # raises nothing
        channels.send([0.5])  # and nothing is sent to a closed channel
        return warned.warnings, built, "osc" in channels

    warnings, built, kept = asyncio.run(scenario())
    assert built == [NEW, OLD] and not kept
    assert len(warnings) == 1 and "nor could the previous one" in warnings[0][1]


def test_a_reload_reopens_a_webui_port_only_when_that_port_changed():
    """A new password or allowed host leaves the localhost ports open."""

    async def scenario(new):
        warned, probes = Warned(), {"command port": Probe(), "monitor": Probe()}
        for probe in probes.values():
            await probe.open(warned)
        channels = ChannelSet(probes, warned.warn)
        built = []

        def build(name, config):
            built.append(name)
            return Probe()

        await channels.reopen(parse(""), parse(new), warned, build)
        return built

    safer = '[webui]\npassword = "a new one"\nallowed_hosts = ["instrument.local"]\n'
    assert asyncio.run(scenario(safer)) == []
    assert asyncio.run(scenario("[webui]\nmonitor_port = 4101\n")) == ["monitor"]
