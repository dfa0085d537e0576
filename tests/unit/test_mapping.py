"""MIDI mapping semantics (IMPSY's): values in [0, 1] <-> note and CC numbers."""

import mido

from antiphon.config import MidiMapping
from antiphon.io.mapping import Decoder, Encoder, describe, label, to_midi

NOTE1 = MidiMapping("note_on", 1)
CC42 = MidiMapping("control_change", 1, 42)
RING = MidiMapping("control_change", 2, 9, 0, 13)


def test_values_become_midi_numbers_rounding_up():
    assert [to_midi(v) for v in (0.0, 0.001, 0.5, 0.999, 1.0)] == [0, 1, 64, 127, 127]


def test_input_notes_and_ccs_become_values():
    decoder = Decoder([NOTE1, CC42, RING])
    assert decoder.decode(mido.Message("note_on", channel=0, note=127, velocity=3)) == [(0, 1.0)]
    assert decoder.decode(mido.Message("note_on", channel=0, note=64, velocity=0)) == []
    assert decoder.decode(mido.Message("note_off", channel=0, note=64)) == []
    assert decoder.decode(mido.Message("control_change", channel=0, control=42, value=0)) == [
        (1, 0.0)
    ]
    assert decoder.decode(mido.Message("control_change", channel=1, control=42, value=0)) == []
    assert decoder.decode(mido.Message("pitchwheel", channel=0)) == []


def test_output_is_monophonic_per_channel_and_ranged_ccs_are_scaled():
    encoder = Encoder([NOTE1, CC42, RING])
    first = encoder.encode([0.5, 1.0, 1.0])
    assert first == [
        mido.Message("note_on", channel=0, note=64, velocity=127),
        mido.Message("control_change", channel=0, control=42, value=127),
        mido.Message("control_change", channel=1, control=9, value=13),
    ]
    second = encoder.encode([0.25, 0.0, 0.5])
    assert second[0] == mido.Message("note_off", channel=0, note=64, velocity=0)
    assert second[1] == mido.Message("note_on", channel=0, note=32, velocity=127)
    assert second[3].value == 7  # ceil(13 * 64 / 127)
    assert encoder.note_offs() == [mido.Message("note_off", channel=0, note=32, velocity=0)]
    assert encoder.note_offs() == []
    assert encoder.describe([0.5, 1.0, 1.0]) == "note ch1 64  CC42 ch1 127  CC9 ch2 13"


def test_labels_and_descriptions_for_people():
    assert label(NOTE1) == "note ch1" and label(CC42) == "CC42 ch1"
    assert describe(mido.Message("control_change", channel=10, control=1, value=100)) == (
        "CC1 ch11 = 100"
    )
    assert describe(mido.Message("note_on", note=60, velocity=90)) == "note_on ch1 60 vel 90"
