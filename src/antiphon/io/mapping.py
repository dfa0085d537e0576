"""Controls <-> MIDI messages, for every MIDI-like channel (MIDI, serial MIDI, WebSocket).

One mapping per control, in the order of the model's values (``[midi].input``,
``[websocket].output``, ...). The arithmetic is IMPSY 1.2's, pinned down by its
conformance vectors (``tests/compat/test_conformance.py`` runs them):

- in: a note-on gives note/127 to its channel's ``note_on`` controls and
  velocity/127 to its ``note_velocity`` controls, as one update (velocity 0 is a
  note-off and changes nothing); a control change gives ``(raw - min) / (max - min)``
  with raw clamped to the mapping's range (0-127 unless given); a pitch bend gives
  its 14-bit value / 16383;
- out: values are clipped to [0, 1]; a number is ``floor(min + v * (max - min) + 0.5)``
  (rounding to nearest: 0.3 is 38, where IMPSY before 1.2 rounded up to 39); each
  ``note_on`` control ends its own previous note (unless another control on the
  channel still holds it) and plays the new one at the velocity of the channel's
  first ``note_velocity`` control (at least 1), else its fixed velocity, else 127;
  a control change or pitch bend is sent only when its number differs from the last
  one sent for that controller (or channel): a synth already there needs no message,
  and a dense model output would otherwise fill the wire with repeats.

mido's ``Message`` is the one type used on every MIDI-like wire; channels here are
0-based as in mido, 1-based in the config.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import mido

from antiphon.config import MidiMapping

PITCH_BEND_TOP = 16383
"""The largest 14-bit pitch bend; mido counts from the centre, 8192."""
PITCH_BEND_CENTRE = 8192


def label(mapping: MidiMapping) -> str:
    """How a control is named to people: "note ch1", "CC42 ch1", "velocity ch1"."""
    if mapping.kind == "note_on":
        return f"note ch{mapping.channel}"
    if mapping.kind == "note_velocity":
        return f"velocity ch{mapping.channel}"
    if mapping.kind == "pitch_bend":
        return f"bend ch{mapping.channel}"
    return f"CC{mapping.control} ch{mapping.channel}"


def describe(message: mido.Message) -> str:
    """A MIDI message in musicians' words, numbers 0-127: "note_on ch1 60 vel 127"."""
    if message.type in ("note_on", "note_off"):
        return f"{message.type} ch{message.channel + 1} {message.note} vel {message.velocity}"
    if message.type == "control_change":
        return f"CC{message.control} ch{message.channel + 1} = {message.value}"
    if message.type == "pitchwheel":
        return f"bend ch{message.channel + 1} = {message.pitch + PITCH_BEND_CENTRE}"
    return str(message)


def _unit(value: float) -> float:
    return 0.0 if value < 0.0 else 1.0 if value > 1.0 else value


def to_midi(value: float, low: int = 0, high: int = 127) -> int:
    """A control value as a MIDI number in the range ``low``-``high`` (nearest)."""
    number = math.floor(low + _unit(value) * (high - low) + 0.5)
    return 0 if number < 0 else 127 if number > 127 else number


def from_midi(number: int, low: int = 0, high: int = 127) -> float:
    """A MIDI number in the range ``low``-``high`` as a control value (the inverse of
    ``to_midi``); numbers outside the range count as its ends."""
    if low == high:
        return 0.0
    bottom, top = min(low, high), max(low, high)
    clamped = bottom if number < bottom else top if number > top else number
    return (clamped - low) / (high - low)


def to_bend(value: float) -> int:
    """A control value as a 14-bit pitch bend, 0-16383."""
    return math.floor(_unit(value) * PITCH_BEND_TOP + 0.5)


class Decoder:
    """Incoming MIDI messages -> (control index, value in [0, 1]) updates."""

    def __init__(self, mappings: Sequence[MidiMapping]) -> None:
        self.mappings = list(mappings)
        # 0-based channel -> [(index, is velocity)] for note-ons
        self._notes: dict[int, list[tuple[int, bool]]] = {}
        self._controls: dict[tuple[int, int], list[tuple[int, MidiMapping]]] = {}
        self._bends: dict[int, list[int]] = {}
        for index, m in enumerate(self.mappings):
            channel = m.channel - 1
            if m.kind in ("note_on", "note_velocity"):
                self._notes.setdefault(channel, []).append((index, m.kind == "note_velocity"))
            elif m.kind == "pitch_bend":
                self._bends.setdefault(channel, []).append(index)
            else:
                self._controls.setdefault((channel, m.control or 0), []).append((index, m))

    def decode(self, message: mido.Message) -> list[tuple[int, float]]:
        """Which controls this message sets; empty when it maps to none."""
        kind = message.type
        if kind == "note_on" and message.velocity > 0:
            note, velocity = message.note / 127, message.velocity / 127
            targets = self._notes.get(message.channel, ())
            return [(i, velocity if is_velocity else note) for i, is_velocity in targets]
        if kind == "control_change":
            targets = self._controls.get((message.channel, message.control), ())
            return [(i, from_midi(message.value, m.low, m.high)) for i, m in targets]
        if kind == "pitchwheel":
            value = (message.pitch + PITCH_BEND_CENTRE) / PITCH_BEND_TOP
            return [(i, value) for i in self._bends.get(message.channel, ())]
        return []


class Encoder:
    """Played values -> MIDI messages, remembering what sounds and what was last sent."""

    def __init__(self, mappings: Sequence[MidiMapping]) -> None:
        self.mappings = list(mappings)
        self._sounding: dict[int, tuple[int, int]] = {}  # control index -> (channel, note)
        self._sent: dict[tuple[int, int], int] = {}  # (channel, cc or -1 for bend) -> number
        self._velocity_of: dict[int, int] = {}  # channel -> index of its velocity control
        for index, m in enumerate(self.mappings):
            if m.kind == "note_velocity":
                self._velocity_of.setdefault(m.channel - 1, index)

    def numbers(self, values: Sequence[float]) -> list[int]:
        """The MIDI number each value becomes (for showing what is sent)."""
        out = []
        for m, v in zip(self.mappings, values, strict=False):
            if m.kind == "pitch_bend":
                out.append(to_bend(v))
            elif m.kind == "control_change":
                out.append(to_midi(v, m.low, m.high))
            else:
                out.append(to_midi(v))
        return out

    def _velocity(self, m: MidiMapping, values: Sequence[float]) -> int:
        index = self._velocity_of.get(m.channel - 1)
        if index is not None and index < len(values):
            return max(1, to_midi(values[index]))  # velocity 0 would be a note-off
        if m.velocity is not None:
            return min(max(m.velocity, 1), 127)
        return 127

    def encode(
        self, values: Sequence[float], only: Sequence[int] | None = None
    ) -> list[mido.Message]:
        """The messages that play ``values``; ``only`` limits them to some controls
        (the others are neither sent nor forgotten)."""
        messages = []
        indices = range(min(len(self.mappings), len(values))) if only is None else only
        for i in indices:
            m, value = self.mappings[i], values[i]
            channel = m.channel - 1
            if m.kind == "note_on":
                note = to_midi(value)
                previous = self._sounding.pop(i, None)
                if previous is not None and previous not in self._sounding.values():
                    messages.append(
                        mido.Message("note_off", channel=previous[0], note=previous[1], velocity=0)
                    )
                velocity = self._velocity(m, values)
                messages.append(
                    mido.Message("note_on", channel=channel, note=note, velocity=velocity)
                )
                self._sounding[i] = (channel, note)
            elif m.kind == "control_change":
                control = m.control or 0
                number = to_midi(value, m.low, m.high)
                if self._sent.get((channel, control)) != number:
                    self._sent[(channel, control)] = number
                    messages.append(
                        mido.Message(
                            "control_change", channel=channel, control=control, value=number
                        )
                    )
            elif m.kind == "pitch_bend":
                bend = to_bend(value)
                if self._sent.get((channel, -1)) != bend:
                    self._sent[(channel, -1)] = bend
                    messages.append(
                        mido.Message("pitchwheel", channel=channel, pitch=bend - PITCH_BEND_CENTRE)
                    )
        return messages

    def describe(self, values: Sequence[float]) -> str:
        return "  ".join(
            f"{label(m)} {midi}"
            for m, midi in zip(self.mappings, self.numbers(values), strict=False)
        )

    def resend(self) -> None:
        """Send every control change and pitch bend next time, changed or not (a device
        was plugged in again or a client connected: it has not heard them)."""
        self._sent.clear()

    def note_offs(self) -> list[mido.Message]:
        """End every sounding note (on stop, so nothing hangs); one note-off per
        sounding (channel, note). Everything is sent again afterwards."""
        messages = [
            mido.Message("note_off", channel=channel, note=note, velocity=0)
            for channel, note in dict.fromkeys(self._sounding.values())
        ]
        self._sounding.clear()
        self._sent.clear()
        return messages
