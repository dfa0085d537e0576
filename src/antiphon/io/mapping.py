"""Controls <-> MIDI messages, for every MIDI-like channel (MIDI, serial MIDI, WebSocket).

One mapping per control, in the order of the model's values (``[midi].input``,
``[websocket].output``, ...). The semantics are IMPSY's:

- in: a note_on gives note/127 (its velocity is ignored; velocity 0 is a note-off and
  is ignored), a control change gives value/127;
- out: a value v in [0, 1] becomes ``ceil(v * 127)``; a note_on mapping first ends the
  channel's previous note (monophonic per channel), then plays the new note at
  velocity 127; a control change with a range maps to ``ceil((max-min)*midi/127 + min)``.

mido's ``Message`` is the one type used on every MIDI-like wire; channels here are
0-based as in mido, 1-based in the config.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import mido

from antiphon.config import MidiMapping


def label(mapping: MidiMapping) -> str:
    """How a control is named to people: "note ch1", "CC42 ch1"."""
    if mapping.kind == "note_on":
        return f"note ch{mapping.channel}"
    return f"CC{mapping.control} ch{mapping.channel}"


def describe(message: mido.Message) -> str:
    """A MIDI message in musicians' words, numbers 0-127: "note_on ch1 60 vel 127"."""
    if message.type in ("note_on", "note_off"):
        return f"{message.type} ch{message.channel + 1} {message.note} vel {message.velocity}"
    if message.type == "control_change":
        return f"CC{message.control} ch{message.channel + 1} = {message.value}"
    return str(message)


def to_midi(value: float) -> int:
    """A control value in [0, 1] as a MIDI number (IMPSY rounds up)."""
    return min(127, max(0, math.ceil(value * 127)))


class Decoder:
    """Incoming MIDI messages -> (control index, value in [0, 1]) updates."""

    def __init__(self, mappings: Sequence[MidiMapping]) -> None:
        self.mappings = list(mappings)
        self._notes: dict[int, list[int]] = {}  # 0-based channel -> control indices
        self._controls: dict[tuple[int, int], list[int]] = {}
        for index, m in enumerate(self.mappings):
            if m.kind == "note_on":
                self._notes.setdefault(m.channel - 1, []).append(index)
            else:
                self._controls.setdefault((m.channel - 1, m.control or 0), []).append(index)

    def decode(self, message: mido.Message) -> list[tuple[int, float]]:
        """Which controls this message sets; empty when it maps to none."""
        if message.type == "note_on" and message.velocity > 0:
            indices = self._notes.get(message.channel, ())
            return [(i, message.note / 127) for i in indices]
        if message.type == "control_change":
            indices = self._controls.get((message.channel, message.control), ())
            return [(i, message.value / 127) for i in indices]
        return []


class Encoder:
    """Played values -> MIDI messages, remembering each channel's sounding note."""

    def __init__(self, mappings: Sequence[MidiMapping]) -> None:
        self.mappings = list(mappings)
        self._sounding: dict[int, int] = {}  # 0-based channel -> note

    def numbers(self, values: Sequence[float]) -> list[int]:
        """The MIDI number each value becomes (for showing what is sent)."""
        out = []
        for m, v in zip(self.mappings, values, strict=False):
            midi = to_midi(v)
            if m.kind == "control_change":
                midi = math.ceil((m.high - m.low) * midi / 127 + m.low)
            out.append(midi)
        return out

    def encode(self, values: Sequence[float]) -> list[mido.Message]:
        messages = []
        for m, midi in zip(self.mappings, self.numbers(values), strict=False):
            channel = m.channel - 1
            if m.kind == "note_on":
                previous = self._sounding.get(channel)
                if previous is not None:
                    messages.append(
                        mido.Message("note_off", channel=channel, note=previous, velocity=0)
                    )
                messages.append(mido.Message("note_on", channel=channel, note=midi, velocity=127))
                self._sounding[channel] = midi
            else:
                messages.append(
                    mido.Message(
                        "control_change", channel=channel, control=m.control or 0, value=midi
                    )
                )
        return messages

    def describe(self, values: Sequence[float]) -> str:
        return "  ".join(
            f"{label(m)} {midi}"
            for m, midi in zip(self.mappings, self.numbers(values), strict=False)
        )

    def note_offs(self) -> list[mido.Message]:
        """End every sounding note (on stop, so nothing hangs)."""
        messages = [
            mido.Message("note_off", channel=channel, note=note, velocity=0)
            for channel, note in self._sounding.items()
        ]
        self._sounding.clear()
        return messages
