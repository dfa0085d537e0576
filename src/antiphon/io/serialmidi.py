"""Raw MIDI bytes on a serial port (31250 baud), e.g. a Raspberry Pi's GPIO UART
wired to a synth's DIN socket. Mapped like MIDI; ``port`` is ``[serialmidi].port``,
the device's path. The bytes are read by ``midiwire.Parser`` (running status, and
SysEx bounded in length)."""

from __future__ import annotations

from collections.abc import Sequence

from antiphon.config import SerialMIDIConfig
from antiphon.io.mapping import Decoder, Encoder, describe, label
from antiphon.io.midiwire import MAX_SYSEX, Parser
from antiphon.io.serial import SerialDevice


class SerialMIDIChannel(SerialDevice):
    name = "serialmidi"

    def __init__(self, config: SerialMIDIConfig) -> None:
        super().__init__(config.port, config.baudrate)
        self._decoder = Decoder(config.input or [])
        self._encoder = Encoder(config.output or [])
        self.input_labels = [label(m) for m in self._decoder.mappings]
        self.output_labels = [label(m) for m in self._encoder.mappings]
        self._parser = Parser()

    def _opened(self) -> None:
        self._parser = Parser()  # a half-received message is lost with the old link
        self._encoder.resend()  # the device may have missed every control change

    def _received(self, data: bytes) -> None:
        assert self._inputs is not None
        oversized = self._parser.oversized
        for message in self._parser.feed(data):
            updates = self._decoder.decode(message)
            if updates:
                self._inputs.on_controls(self.name, updates, describe(message))
        if self._parser.oversized > oversized:
            self._inputs.warn(
                "serialmidi-sysex",
                f"serialmidi: dropped a SysEx message longer than {MAX_SYSEX} bytes",
            )

    def _send(self, values: Sequence[float]) -> None:
        self.write(b"".join(bytes(m.bytes()) for m in self._encoder.encode(values)))

    def describe(self, values: Sequence[float]) -> str:
        return self._encoder.describe(values)

    def _goodbye(self) -> None:
        self.write(b"".join(bytes(m.bytes()) for m in self._encoder.note_offs()))
