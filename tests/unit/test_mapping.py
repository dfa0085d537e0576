"""MIDI mapping semantics (IMPSY 1.2's; its conformance vectors check the rest, in
tests/compat/test_conformance.py): values in [0, 1] <-> notes, CCs, velocities, bends."""

import mido
import pytest

from antiphon.config import MidiMapping
from antiphon.io.mapping import Decoder, Encoder, describe, from_midi, label, to_bend, to_midi

NOTE1 = MidiMapping("note_on", 1)
CC42 = MidiMapping("control_change", 1, 42)
RING = MidiMapping("control_change", 2, 9, 0, 13)
VELOCITY1 = MidiMapping("note_velocity", 1)
BEND3 = MidiMapping("pitch_bend", 3)


def test_values_become_the_nearest_midi_numbers():
    assert [to_midi(v) for v in (0.0, 0.001, 0.3, 0.5, 0.999, 1.0, -2.0, 7.0)] == [
        0, 0, 38, 64, 127, 127, 0, 127,
    ]  # fmt: skip
    assert [to_midi(v, 0, 13) for v in (0.0, 0.5, 1.0)] == [0, 7, 13]
    assert [to_midi(v, 100, 20) for v in (0.0, 1.0)] == [100, 20]  # a range may run down
    assert [to_bend(v) for v in (0.0, 0.5, 1.0)] == [0, 8192, 16383]


def test_ranged_input_is_scaled_back_and_clamped_to_its_range():
    assert [from_midi(n, 0, 13) for n in (0, 13, 100)] == [0.0, 1.0, 1.0]
    assert from_midi(7, 7, 7) == 0.0  # an empty range gives 0, never a division by zero
    for n in range(128):  # in -> out gives the number back within the range
        assert to_midi(from_midi(n, 20, 100), 20, 100) == min(max(n, 20), 100)


def test_input_notes_ccs_velocities_and_bends_become_values():
    decoder = Decoder([NOTE1, CC42, RING, VELOCITY1, BEND3])
    assert decoder.decode(mido.Message("note_on", channel=0, note=127, velocity=127)) == [
        (0, 1.0),
        (3, 1.0),
    ]
    assert decoder.decode(mido.Message("note_on", channel=0, note=64, velocity=0)) == []
    assert decoder.decode(mido.Message("note_off", channel=0, note=64)) == []
    assert decoder.decode(mido.Message("control_change", channel=0, control=42, value=0)) == [
        (1, 0.0)
    ]
    assert decoder.decode(mido.Message("control_change", channel=1, control=9, value=127)) == [
        (2, 1.0)
    ]
    assert decoder.decode(mido.Message("control_change", channel=1, control=42, value=0)) == []
    assert decoder.decode(mido.Message("pitchwheel", channel=2, pitch=8191)) == [(4, 1.0)]
    assert decoder.decode(mido.Message("pitchwheel", channel=0)) == []


def test_output_notes_end_their_own_previous_note_and_unchanged_ccs_are_not_resent():
    encoder = Encoder([NOTE1, CC42, RING, VELOCITY1, BEND3])
    assert encoder.encode([0.5, 1.0, 1.0, 0.5, 0.5]) == [
        mido.Message("note_on", channel=0, note=64, velocity=64),
        mido.Message("control_change", channel=0, control=42, value=127),
        mido.Message("control_change", channel=1, control=9, value=13),
        mido.Message("pitchwheel", channel=2, pitch=0),
    ]
    assert encoder.encode([0.25, 1.0, 0.5, 0.0, 0.5]) == [
        mido.Message("note_off", channel=0, note=64, velocity=0),
        mido.Message("note_on", channel=0, note=32, velocity=1),  # never velocity 0
        mido.Message("control_change", channel=1, control=9, value=7),
    ]
    encoder.resend()  # a device plugged in again hears every control change once more
    assert len(encoder.encode([0.25, 1.0, 0.5, 0.0, 0.5])) == 5
    assert encoder.note_offs() == [mido.Message("note_off", channel=0, note=32, velocity=0)]
    assert encoder.note_offs() == []
    assert encoder.describe([0.5, 1.0, 1.0, 0.5, 0.5]) == (
        "note ch1 64  CC42 ch1 127  CC9 ch2 13  velocity ch1 64  bend ch3 8192"
    )


def test_only_some_controls_can_be_sent():
    """What thru_matrix translation uses: the controls one message moved, nothing else."""
    encoder = Encoder([NOTE1, CC42, RING])
    assert encoder.encode([0.5, 0.5, 0.5], only=[1]) == [
        mido.Message("control_change", channel=0, control=42, value=64)
    ]
    assert encoder.encode([0.5, 0.5, 0.5], only=[0]) == [
        mido.Message("note_on", channel=0, note=64, velocity=127)
    ]
    assert encoder.encode([0.5, 0.5, 0.5], only=[1]) == []  # already there


@pytest.mark.parametrize(
    ("toml", "mapping"),
    [
        (["note_on", 2, 100], MidiMapping("note_on", 2, velocity=100)),
        (["note_velocity", 16], MidiMapping("note_velocity", 16)),
        (["pitch_bend", 1], MidiMapping("pitch_bend", 1)),
        (["control_change", 1, 7, 0, 63], MidiMapping("control_change", 1, 7, 0, 63)),
    ],
)
def test_every_form_of_impsy_1_2_mapping_is_read_and_written_back(toml, mapping):
    assert MidiMapping.parse(toml) == mapping
    assert mapping.to_toml() == toml


def test_labels_and_descriptions_for_people():
    assert label(NOTE1) == "note ch1" and label(CC42) == "CC42 ch1"
    assert label(VELOCITY1) == "velocity ch1" and label(BEND3) == "bend ch3"
    assert describe(mido.Message("control_change", channel=10, control=1, value=100)) == (
        "CC1 ch11 = 100"
    )
    assert describe(mido.Message("note_on", note=60, velocity=90)) == "note_on ch1 60 vel 90"
    assert describe(mido.Message("pitchwheel", channel=1, pitch=-8192)) == "bend ch2 = 0"
