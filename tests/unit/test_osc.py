"""The OSC receiver routes what it reads and reports the rest under a fixed set of
warning kinds, whatever arrives."""

from __future__ import annotations

import asyncio
import struct

from hypothesis import given
from hypothesis import strategies as st

from antiphon.io.osc import MAX_UNSENT, Sender, _Receiver, message
from antiphon.io.oscwire import floats

PEER = ("192.0.2.7", 9000)


class Recorder:
    """An engine stand-in that keeps what the receiver hands it."""

    def __init__(self) -> None:
        self.inputs: list[tuple] = []
        self.commands: list[tuple] = []
        self.warnings: list[tuple[str, str]] = []

    def on_input(self, source, values, detail=None):
        self.inputs.append((source, tuple(values)))

    def on_controls(self, source, updates, detail=None):
        raise AssertionError("OSC delivers whole vectors")

    def on_command(self, address, args, source):
        self.commands.append((address, tuple(args), source))

    def warn(self, kind, message):
        self.warnings.append((kind, message))


def receive(*datagrams: bytes, accept_interface: bool = True) -> tuple[Recorder, _Receiver]:
    async def scenario():
        engine = Recorder()
        receiver = _Receiver(engine, "osc", accept_interface)
        for datagram in datagrams:
            receiver.datagram_received(datagram, PEER)
        return engine, receiver

    return asyncio.run(scenario())


def test_inputs_and_commands_are_routed():
    engine, receiver = receive(
        floats("/interface", [0.5, 0.25]), message("/impsy/mode", ["battle"])
    )
    assert engine.inputs == [("osc", (0.5, 0.25))]
    assert engine.commands == [("/impsy/mode", ("battle",), "osc")]
    assert engine.warnings == [] and receiver.malformed == 0


def test_malformed_packets_are_counted_and_reported_with_the_reason():
    negative = b"#bundle\0" + bytes(8) + struct.pack(">i", -4) + b"/impsy/reset\0\0\0\0,\0\0\0"
    engine, receiver = receive(negative, b"/imp\xffsy\0\0\0\0,\0\0\0")
    assert receiver.malformed == 2
    assert [kind for kind, _ in engine.warnings] == ["osc-malformed", "osc-malformed"]
    assert "192.0.2.7" in engine.warnings[0][1] and "size -4" in engine.warnings[0][1]
    assert engine.inputs == engine.commands == []


def test_unknown_addresses_are_quoted_briefly_under_one_kind():
    engine, _ = receive(
        message("/" + "x" * 5000, [1.0]),
        floats("/interface", [0.5]),  # not on the command port
        accept_interface=False,
    )
    assert [kind for kind, _ in engine.warnings] == ["osc-address osc"] * 2
    assert len(engine.warnings[0][1]) < 300
    assert engine.inputs == []


@given(st.binary(max_size=200), st.text(max_size=30))
def test_warning_kinds_never_carry_received_text(data, address):
    engine, _ = receive(data, message("/" + address.replace("\0", ""), [1]))
    assert {kind for kind, _ in engine.warnings} <= {"osc-malformed", "osc-address osc"}


class Backlogged:
    """A datagram transport whose socket has stopped taking datagrams (rare on a LAN,
    and not something a test can make a real socket do)."""

    def __init__(self, waiting: int) -> None:
        self.waiting = waiting
        self.sent: list[bytes] = []

    def get_write_buffer_size(self) -> int:
        return self.waiting

    def sendto(self, data, address) -> None:
        self.sent.append(data)


def test_a_sender_drops_datagrams_rather_than_keeping_them_without_limit():
    fine, stuck = Sender(Backlogged(0), PEER), Sender(Backlogged(MAX_UNSENT + 1), PEER)
    for sender in (fine, stuck):
        sender.send(b"x")
    assert fine.transport.sent == [b"x"] and fine.dropped == 0
    assert stuck.transport.sent == [] and stuck.dropped == 1
