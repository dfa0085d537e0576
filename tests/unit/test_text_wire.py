"""The text parsers: WebSocket frames, serial lines, and the WebSocket Origin check."""

from __future__ import annotations

import socket

import mido
import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from antiphon.io.serial import MAX_LINE, Lines, parse_line
from antiphon.io.websocket import frame, origin_allowed, parse

pytestmark = pytest.mark.timeout(120)

# -- WebSocket frames ------------------------------------------------------------------


def test_frames_become_midi_messages():
    assert parse("/channel/16/noteon/60/100") == (
        mido.Message("note_on", channel=15, note=60, velocity=100),
        False,
    )
    assert parse("/channel/1/noteoff/60/0\n")[0].type == "note_off"
    assert parse(" /channel/2/cc/7/127 ") == (
        mido.Message("control_change", channel=1, control=7, value=127),
        False,
    )


def test_a_note_on_at_velocity_zero_is_a_note_off():
    assert parse("/channel/3/noteon/64/0") == (
        mido.Message("note_off", channel=2, note=64, velocity=0),
        False,
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [("/channel/1/cc/7/200", 127), ("/channel/1/cc/7/-5", 0), ("/channel/1/noteon/60/999", 127)],
)
def test_values_outside_0_127_are_clamped_and_said_to_be(text, value):
    message, clamped = parse(text)
    assert clamped and (
        message.value if message.type == "control_change" else message.velocity
    ) == (value)


def test_noteon_clamped_below_zero_is_a_note_off():
    message, clamped = parse("/channel/1/noteon/60/-1")
    assert clamped and message.type == "note_off"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "/channel/17/cc/1/1",
        "/channel/0/cc/1/1",
        "/channel/1/cc/128/1",
        "/channel/1/pitch/1/1",
        "/chan/1/cc/1/1",
        "/channel/1/cc/42",
        "/channel/1/cc/x/1",
        "/channel/1/cc/1/1/1",
        "/channel/١/cc/1/1",  # digits, but not ASCII ones
        "/channel/1/cc/1/" + "9" * 5000,
    ],
)
def test_malformed_frames_are_value_errors(text):
    with pytest.raises(ValueError):
        parse(text)


@given(st.text(max_size=80))
def test_any_text_is_a_message_or_a_value_error(text):
    try:
        message, _ = parse(text)
    except ValueError:
        return
    assert message.type in ("note_on", "note_off", "control_change")


@given(
    st.integers(1, 16),
    st.sampled_from(["noteon", "noteoff", "cc"]),
    st.integers(0, 127),
    st.integers(-99_999, 999_999),
)
def test_well_formed_frames_clamp_exactly_when_out_of_range(channel, kind, number, value):
    message, clamped = parse(f"/channel/{channel}/{kind}/{number}/{value}")
    kept = message.value if kind == "cc" else message.velocity
    assert kept == min(127, max(0, value)) and clamped == (not 0 <= value <= 127)
    assert message.channel == channel - 1


@given(
    st.sampled_from(["note_on", "note_off", "control_change"]),
    st.integers(0, 15),
    st.integers(0, 127),
    st.integers(1, 127),
)
def test_frames_written_read_back(kind, channel, number, value):
    if kind == "control_change":
        message = mido.Message(kind, channel=channel, control=number, value=value)
    else:
        message = mido.Message(kind, channel=channel, note=number, velocity=value)
    assert parse(frame(message)) == (message, False)


# -- the Origin check ------------------------------------------------------------------


def test_pages_from_this_machine_are_allowed():
    name = socket.gethostname()
    addresses = [
        a.address
        for entries in psutil.net_if_addrs().values()
        for a in entries
        if a.family == socket.AF_INET and not a.address.startswith("127.")
    ]
    for origin in (
        "http://localhost:4000",
        "http://127.0.0.1:4000",
        "http://127.1.2.3",
        "http://[::1]:4000",
        f"http://{name}:4000",
        f"https://{name.upper()}.local",
        *(f"http://{address}:8080/" for address in addresses),
    ):
        assert origin_allowed(origin), origin


@pytest.mark.parametrize(
    "origin",
    [
        "https://example.org",
        "http://localhost.example.org",
        "http://127.0.0.1.example.org",
        "null",
        "file://",
        "chrome-extension://abcdef",
        "http://localhost:notaport",
        "",
        "http://[::1",
    ],
)
def test_pages_from_elsewhere_are_refused(origin):
    assert not origin_allowed(origin)


def test_configured_origins_are_allowed_exactly():
    allowed = ["https://Example.org:8443/", "null"]
    assert origin_allowed("https://example.org:8443", allowed)
    assert origin_allowed("null", allowed)
    assert not origin_allowed("https://example.org", allowed)


# -- serial lines ----------------------------------------------------------------------


def test_lines_wait_for_their_end_and_long_ones_are_dropped_whole():
    lines = Lines(limit=10)
    assert lines.feed(b"0.1,0.2\r\n0.3,") == ([b"0.1,0.2\r"], 0)
    assert lines.feed(b"0.4\n") == ([b"0.3,0.4"], 0)
    assert lines.feed(b"x" * 11) == ([], 1)  # too long already: dropped, then skipped ...
    assert lines.feed(b"y" * 100) == ([], 0)
    assert lines.feed(b"yy\n0.5\n") == ([b"0.5"], 0)  # ... to its end
    assert lines.feed(b"123456\n12345678901\n") == ([b"123456"], 1)


@given(st.lists(st.binary(max_size=40), max_size=30))
def test_lines_are_the_newline_split_without_long_ones_in_bounded_memory(pieces):
    lines = Lines(limit=16)
    got = []
    for piece in pieces:
        complete, _ = lines.feed(piece)
        got += complete
        assert len(lines._partial) <= 16
    *whole, _ = b"".join(pieces).split(b"\n")
    assert got == [line for line in whole if len(line) <= 16]


def test_parse_line():
    assert parse_line(b" 0.5, 0.25 ,1\r") == [0.5, 0.25, 1.0]
    assert parse_line(b"\r\x00 ") is None
    for bad in (b"0.5,abc", b"\xff\xfe", b"1,,2", "é".encode()):
        with pytest.raises(ValueError):
            parse_line(bad)


@given(st.binary(max_size=MAX_LINE))
def test_any_line_is_values_blank_or_a_value_error(line):
    try:
        values = parse_line(line)
    except ValueError:
        return
    assert values is None or all(isinstance(v, float) for v in values)


@given(st.lists(st.floats(0, 1), min_size=1, max_size=16))
def test_what_the_serial_channel_writes_reads_back(values):
    written = ",".join(f"{v:.4f}" for v in values).encode()
    assert parse_line(written) == pytest.approx(values, abs=5e-5)
