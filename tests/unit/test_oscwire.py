"""The OSC parser reads anything without hanging or raising anything but ParseError,
and reads back exactly what the writer (and python-osc) writes."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from antiphon.io.oscwire import (
    MAX_ARGUMENTS,
    MAX_DATAGRAM,
    MAX_DEPTH,
    MAX_MESSAGES,
    Message,
    ParseError,
    encode,
    floats,
    parse,
)

pytestmark = pytest.mark.timeout(120)  # a parser that hangs fails here, not after 300 s


def bundle(*elements: bytes, timetag: bytes = bytes(8)) -> bytes:
    return b"#bundle\0" + timetag + b"".join(struct.pack(">i", len(e)) + e for e in elements)


def nested(depth: int, inner: bytes) -> bytes:
    for _ in range(depth):
        inner = bundle(inner)
    return inner


def padded(text: bytes) -> bytes:
    return text + b"\0" * (4 - len(text) % 4)


RESET = encode("/impsy/reset", [])

# -- the datagrams that broke python-osc ------------------------------------------------


def test_a_negative_bundle_element_size_is_refused_at_once():
    hostile = b"#bundle\0" + bytes(8) + struct.pack(">i", -4) + b"/impsy/reset\0\0\0\0,\0\0\0"
    with pytest.raises(ParseError, match="size -4"):
        parse(hostile)


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (b"/imp\xffsy\0\0\0\0,\0\0\0", "address is not UTF-8"),
        (padded(b"/impsy/mode") + padded(b",s") + padded(b"poly\xc3"), "string argument"),
        (nested(1500, RESET), f"nested more than {MAX_DEPTH} deep"),
    ],
)
def test_invalid_utf8_and_deep_nesting_are_parse_errors(datagram, reason):
    with pytest.raises(ParseError, match=reason):
        parse(datagram)


def test_nesting_up_to_the_limit_is_read():
    assert parse(nested(MAX_DEPTH, RESET)) == [Message("/impsy/reset", ())]
    with pytest.raises(ParseError):
        parse(nested(MAX_DEPTH + 1, RESET))


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (b"", "neither a message"),
        (b"impsy\0\0\0", "neither a message"),
        (b"/imp", "not terminated"),
        (b"/impsy\0", "padding runs past the end"),
        (b"/a\0\0x\0\0\0", "no type tag string"),
        (padded(b"/a") + padded(b",f"), "cut short"),
        (padded(b"/a") + padded(b",ff") + bytes(4), "cut short"),
        (padded(b"/a") + padded(b",fs") + bytes(4), "not terminated"),
        (padded(b"/a") + padded(b",b") + struct.pack(">i", -1), "blob size -1"),
        (padded(b"/a") + padded(b",b") + struct.pack(">i", 9) + bytes(8), "blob size 9"),
        (padded(b"/a") + padded(b",[f]") + bytes(4), "unsupported type tag '\\['"),
        (padded(b"/a") + padded(b",\xc3\xa9"), "unsupported type tag"),
        (b"#bundle\0" + bytes(4), "bundle header cut short"),
        (bundle(RESET) + b"\0\0", "size cut short"),
        (bundle(RESET)[:-4], "impossible"),
        (b"#bundle\0" + bytes(8) + struct.pack(">i", 0), "size 0"),
        (b"#bundle\0" + bytes(8) + struct.pack(">i", 6) + b"/a\0\0\0\0", "size 6"),
        (bundle(b"junk"), "neither a message"),
    ],
)
def test_malformed_packets_say_what_is_wrong(datagram, reason):
    with pytest.raises(ParseError, match=reason):
        parse(datagram)


def test_counts_and_sizes_are_bounded():
    parse(bundle(*[RESET] * MAX_MESSAGES))
    with pytest.raises(ParseError, match=f"more than {MAX_MESSAGES} messages"):
        parse(bundle(*[RESET] * (MAX_MESSAGES + 1)))
    with pytest.raises(ParseError, match="messages"):  # counted through nested bundles
        parse(bundle(*[bundle(RESET, RESET)] * (MAX_MESSAGES // 2 + 1)))
    assert len(parse(encode("/a", [1] * MAX_ARGUMENTS))[0].args) == MAX_ARGUMENTS
    with pytest.raises(ParseError, match=f"more than {MAX_ARGUMENTS} arguments"):
        parse(encode("/a", [1] * (MAX_ARGUMENTS + 1)))
    with pytest.raises(ParseError, match=f"larger than {MAX_DATAGRAM}"):
        parse(encode("/a", [b"x" * MAX_DATAGRAM]))


# -- what it reads -------------------------------------------------------------------------


def test_every_supported_type_tag():
    datagram = (
        padded(b"/all")
        + padded(b",ifsSbhdtTFNI")
        + struct.pack(">i", -7)
        + struct.pack(">f", 0.5)
        + padded(b"caf\xc3\xa9")
        + padded(b"sym")
        + struct.pack(">i", 3)
        + b"abc\0"
        + struct.pack(">q", -(2**40))
        + struct.pack(">d", 0.1)
        + struct.pack(">Q", 2**63 + 1)
    )
    assert parse(datagram) == [
        Message(
            "/all",
            (-7, 0.5, "café", "sym", b"abc", -(2**40), 0.1, 2**63 + 1, True, False, None, math.inf),
        )
    ]


def test_nan_and_infinity_are_passed_on_for_the_engine_to_judge():
    (message,) = parse(floats("/interface", [math.nan, math.inf, -math.inf]))
    assert math.isnan(message.args[0]) and message.args[1:] == (math.inf, -math.inf)


def test_old_style_messages_without_type_tags_and_empty_bundles():
    assert parse(b"/impsy/reset\0\0\0\0") == [Message("/impsy/reset", ())]
    assert parse(bundle()) == []


def test_bundles_are_flattened_in_order():
    one, two = encode("/interface", [0.5, 0.25]), encode("/impsy/mode", ["battle"])
    assert parse(bundle(one, bundle(two), timetag=b"\x01" * 8)) == [
        Message("/interface", (0.5, 0.25)),
        Message("/impsy/mode", ("battle",)),
    ]


# -- what it writes --------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        [],
        [0.5],
        [1, -1, 2**31, -(2**40)],
        ["poly", "café", ""],
        [b"a", b"abcde"],
        [True, False, None],
    ],
)
def test_encode_writes_what_python_osc_writes(values):
    builder = OscMessageBuilder("/impsy")
    for value in values:
        builder.add_arg(value)
    assert encode("/impsy", values) == builder.build().dgram


@pytest.mark.parametrize("values", [[0.5], [0.0, 1.0, 0.25], [0.1] * 8, [0.3] * 16])
def test_floats_is_encode_for_floats(values):
    assert floats("/impsy", values) == encode("/impsy", values)
    assert parse(floats("/monitor/out", values))[0].args == pytest.approx(values)


def test_encode_refuses_what_osc_cannot_carry():
    with pytest.raises(TypeError):
        encode("/a", [object()])


# -- properties ------------------------------------------------------------------------

addresses = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=20).map(
    lambda text: "/" + text
)
arguments = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(width=32, allow_nan=False),
    st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=20),
    st.binary(max_size=20),
    st.booleans(),
    st.none(),
)
messages = st.builds(
    lambda address, args: (address, tuple(args)), addresses, st.lists(arguments, max_size=8)
)


def packets(children: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.lists(children, max_size=4).map(lambda elements: bundle(*elements))


encoded = messages.map(lambda m: encode(*m))
datagrams = st.recursive(encoded, packets, max_leaves=MAX_MESSAGES)


def only_parse_errors(data: bytes) -> list[Message] | None:
    try:
        return parse(data)
    except ParseError as exc:
        assert str(exc), "a ParseError says why"
        return None


@given(st.binary(max_size=600))
def test_random_bytes_give_messages_or_a_parse_error(data):
    only_parse_errors(data)


@given(st.binary(max_size=300))
def test_random_bytes_after_a_bundle_or_message_header(data):
    only_parse_errors(b"#bundle\0" + data)
    only_parse_errors(padded(b"/interface") + b"," + data)


@given(messages)
def test_what_is_written_reads_back(message):
    address, args = message
    (read,) = parse(encode(address, args))
    assert read == Message(address, args)


@given(st.lists(messages, min_size=1, max_size=MAX_MESSAGES), st.integers(0, MAX_DEPTH - 1))
def test_messages_in_nested_bundles_read_back_in_order(items, depth):
    datagram = nested(depth, bundle(*(encode(a, args) for a, args in items)))
    assert parse(datagram) == [Message(a, args) for a, args in items]


@given(datagrams, st.data())
def test_mutated_packets_give_messages_or_a_parse_error(datagram, data):
    mutated = bytearray(datagram)
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "cut", "insert", "size"]))
        at = data.draw(st.integers(0, max(0, len(mutated) - 1)))
        if action == "flip" and mutated:
            mutated[at] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del mutated[at:]
        elif action == "insert":
            mutated[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        elif len(mutated) >= at + 4:  # a size field (or anything) set to a hostile number
            size = data.draw(st.sampled_from([-(2**31), -4, -1, 0, 3, 2**31 - 1]))
            mutated[at : at + 4] = struct.pack(">i", size)
    only_parse_errors(bytes(mutated))


@given(st.integers(0, 1500), st.sampled_from([RESET, b"", b"\0\0\0\0", b"#bundle\0"]))
def test_any_nesting_depth_is_read_or_refused(depth, inner):
    read = only_parse_errors(nested(depth, inner))
    if depth > MAX_DEPTH:
        assert read is None


@given(
    addresses,
    st.lists(
        st.one_of(
            st.integers(-(2**31), 2**31 - 1),
            st.floats(width=32, allow_nan=False),
            st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=10),
            st.binary(min_size=1, max_size=10),  # python-osc refuses empty blobs
            st.booleans(),
            st.none(),
        ),
        max_size=8,
    ),
)
def test_reads_what_python_osc_reads(address, args):
    datagram = encode(address, args)
    assert parse(datagram) == [Message(address, tuple(OscMessage(datagram).params))]
