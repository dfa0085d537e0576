"""The serial MIDI byte parser: what mido's parser reads, plus running status and
real-time bytes anywhere, in bounded memory, never raising."""

from __future__ import annotations

import itertools
import tracemalloc

import mido
import pytest
from hypothesis import given
from hypothesis import strategies as st

from antiphon.io.midiwire import MAX_SYSEX, Parser

pytestmark = pytest.mark.timeout(120)

data_bytes = st.integers(0, 127)


@st.composite
def channel_messages(draw) -> bytes:
    status = draw(st.sampled_from([0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0, 0xE0]))
    length = 1 if 0xC0 <= status < 0xE0 else 2
    data = draw(st.lists(data_bytes, min_size=length, max_size=length))
    return bytes([status | draw(st.integers(0, 15)), *data])


system_messages = st.one_of(
    st.tuples(st.just(0xF1), data_bytes).map(bytes),
    st.tuples(st.just(0xF2), data_bytes, data_bytes).map(bytes),
    st.tuples(st.just(0xF3), data_bytes).map(bytes),
    st.sampled_from([b"\xf6", b"\xf8", b"\xfa", b"\xfb", b"\xfc", b"\xfe", b"\xff"]),
    st.lists(data_bytes, max_size=20).map(lambda data: bytes([0xF0, *data, 0xF7])),
)
streams = st.lists(st.one_of(channel_messages(), system_messages), max_size=30)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def read(pieces: list[bytes], parser: Parser | None = None) -> list[mido.Message]:
    parser = parser or Parser()
    return [message for piece in pieces for message in parser.feed(piece)]


@given(streams, st.lists(st.integers(0, 10_000), max_size=10))
def test_reads_what_mido_reads_in_pieces_of_any_size(stream, cuts):
    data = b"".join(stream)
    reference = mido.Parser()
    reference.feed(data)
    expected = [mido.Message.from_bytes(m) for m in stream]
    assert list(reference) == expected
    assert read(split(data, cuts)) == expected


def running_status(stream: list[bytes]) -> bytes:
    """The same stream with repeated channel status bytes left out, as hardware sends."""
    out, running = [], None
    for message in stream:
        status = message[0]
        if status < 0xF0:
            out.append(message[1:] if status == running else message)
            running = status
        else:
            out.append(message)
            if status < 0xF8:  # system common and SysEx cancel running status
                running = None
    return b"".join(out)


@given(streams, st.lists(st.integers(0, 10_000), max_size=10))
def test_running_status_is_understood(stream, cuts):
    expected = [mido.Message.from_bytes(m) for m in stream]
    assert read(split(running_status(stream), cuts)) == expected


@given(streams, st.lists(st.integers(0, 10_000), min_size=1, max_size=10))
def test_real_time_bytes_anywhere_leave_other_messages_whole(stream, places):
    data = bytearray(b"".join(stream))
    for place in sorted(places, reverse=True):
        data[place % (len(data) + 1) : place % (len(data) + 1)] = b"\xf8"
    messages = read([bytes(data)])
    clocks = [m for m in messages if m.type == "clock"]
    others = [m for m in messages if m.type != "clock"]
    assert others == [mido.Message.from_bytes(m) for m in stream if m != b"\xf8"]
    assert len(clocks) == len(places) + stream.count(b"\xf8")


@given(st.lists(st.binary(max_size=64), max_size=20))
def test_random_bytes_give_valid_messages_and_never_raise(pieces):
    parser = Parser(max_sysex=16)
    for message in read(pieces, parser):
        assert isinstance(message, mido.Message)
        assert len(message.bytes()) <= 16


def test_stray_data_and_undefined_status_bytes_are_ignored():
    note = bytes([0x90, 60, 100])
    assert read([b"\x12\x34" + note]) == [mido.Message("note_on", note=60, velocity=100)]
    # an undefined status byte cancels the message in progress and running status
    assert read([bytes([0x90, 60, 0xF4, 100, 0xF9, 61, 1])]) == []
    assert read([bytes([0xF9, 0xFD, 0xF7])]) == []


def test_an_unfinished_sysex_is_dropped_when_another_message_starts():
    assert read([bytes([0xF0, 1, 2, 0x90, 60, 100])]) == [
        mido.Message("note_on", note=60, velocity=100)
    ]


def test_sysex_longest_kept_and_one_byte_more_dropped():
    parser = Parser()
    whole = bytes([0xF0, *[5] * (MAX_SYSEX - 2), 0xF7])
    (kept,) = parser.feed(whole)
    assert len(kept.bytes()) == MAX_SYSEX
    assert parser.feed(whole[:-1] + b"\x05\xf7") == [] and parser.oversized == 1


def test_four_megabytes_of_unterminated_sysex_cost_bounded_memory():
    parser = Parser()
    chunk = bytes([0x11] * 4096)
    parser.feed(b"\xf0")
    tracemalloc.start()
    try:
        for _ in range(1024):  # 4 MiB without an F7
            parser.feed(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MAX_SYSEX
    assert parser.feed(bytes([0xB0, 7, 100])) == [
        mido.Message("control_change", control=7, value=100)
    ]
    assert parser.oversized == 1
