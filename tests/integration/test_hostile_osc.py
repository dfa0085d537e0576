"""A real `antiphon run` under malformed OSC: it keeps answering, says so in a few
rate-limited lines, never prints a traceback, and stops cleanly."""

from __future__ import annotations

import signal
import socket
import struct
import time
import tomllib

import pytest
from peers import Instrument

from antiphon.io.oscwire import MAX_MESSAGES, encode, floats, parse

pytestmark = pytest.mark.slow

RESET = encode("/impsy/reset", [])
INTERFACE = floats("/interface", [0.5, 0.25, 0.75])


def bundle(*elements: bytes) -> bytes:
    return b"#bundle\0" + bytes(8) + b"".join(struct.pack(">i", len(e)) + e for e in elements)


def nested(depth: int) -> bytes:
    packet = RESET
    for _ in range(depth):
        packet = bundle(packet)
    return packet


HOSTILE = {
    "negative bundle size": b"#bundle\0" + bytes(8) + struct.pack(">i", -4) + RESET,
    "invalid UTF-8 address": b"/imp\xffsy\0\0\0\0,\0\0\0",
    "invalid UTF-8 string": b"/impsy/mode\0,s\0\0poly\xc3\0\0\0",
    "1,500-deep nesting": nested(1500),
    "too many messages": bundle(*[RESET] * (MAX_MESSAGES + 1)),
    "unknown type tag": b"/interface\0\0,r\0\0" + bytes(4),
    **{f"cut to {n} bytes": INTERFACE[:n] for n in (1, 5, 11, 13, len(INTERFACE) - 4)},
    **{f"bundle cut to {n} bytes": bundle(INTERFACE)[:n] for n in (4, 12, 18, 20, 40)},
}

ROUNDS = 50
"""Times each hostile datagram is sent to each port in a row: enough to need
rate-limiting."""


def wait_for_count(instrument: Instrument, count: int, name: str) -> None:
    """Until every one of ``count`` datagrams is accounted for: read and counted as
    malformed, or dropped by the system before it could be read (big ones overflow a
    socket's receive buffer, and the system counts those)."""
    deadline = time.monotonic() + 30
    while True:
        assert instrument.process.poll() is None, f"{name}: antiphon stopped"
        engine = instrument.http.get("/api/status").json()["engine"]
        malformed = engine["warning_counts"].get("osc-malformed", 0)
        dropped = sum(c["dropped"] for c in engine["channels"])
        if malformed + dropped == count:
            return
        assert time.monotonic() < deadline, f"{name}: {malformed} read, {dropped} dropped"
        time.sleep(0.05)


def test_hostile_datagrams_cost_a_few_warning_lines_and_nothing_else(tmp_path):
    instrument = Instrument(tmp_path / "ws")
    try:
        instrument.wait_ready()
        config = tomllib.loads(instrument.workspace.config_path.read_text())
        command_port = config["webui"]["command_port"]
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as performer,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as synth,
        ):
            synth.bind(("127.0.0.1", config["osc"]["client_port"]))
            synth.settimeout(1.0)
            sent = 0
            for name, datagram in HOSTILE.items():
                with pytest.raises(ValueError):  # each is malformed indeed
                    parse(datagram)
                for _ in range(ROUNDS):
                    performer.sendto(datagram, ("127.0.0.1", instrument.osc_port))
                    performer.sendto(datagram, ("127.0.0.1", command_port))
                sent += 2 * ROUNDS
                wait_for_count(instrument, sent, name)
            answer = None
            deadline = time.monotonic() + 30
            while answer is None:  # UDP: ask again until the answer comes
                assert time.monotonic() < deadline, "no /impsy answer after the hostile packets"
                performer.sendto(INTERFACE, ("127.0.0.1", instrument.osc_port))
                try:
                    answer = parse(synth.recv(65536))
                except TimeoutError:
                    continue
            assert answer[0].address == "/impsy" and len(answer[0].args) == 3
        instrument.process.send_signal(signal.SIGTERM)
        assert instrument.process.wait(timeout=10) == 0
    finally:
        output = instrument.stop()
    assert "Traceback" not in output
    warnings = [line for line in output.splitlines() if line.startswith("warning:")]
    malformed = [line for line in warnings if "malformed OSC packet" in line]
    assert 1 <= len(malformed) <= 3, malformed  # the first, then a summary per 5 s at most
    assert len(warnings) <= 10, warnings
