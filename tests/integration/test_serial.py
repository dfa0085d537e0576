"""Serial channels through pseudo-terminal pairs (socat) standing in for a micro:bit
and for a synth on a MIDI UART: text and MIDI both ways, garbage, unplug and replug."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import mido
import pytest
from peers import Ports, play, running, until, write_config

from antiphon.engine.setup import Overrides
from waiting import wait_until
from workspaces import model_in

pytestmark = pytest.mark.skipif(shutil.which("socat") is None, reason="socat is missing")


class Cable:
    """Two linked pseudo-terminals: the engine opens ``device``, the test ``far``."""

    def __init__(self, directory: Path) -> None:
        self.device = directory / "ttyENGINE"
        self.far = directory / "ttyFAR"
        self.process: subprocess.Popen | None = None
        self.fd: int | None = None
        self.received = b""  # everything read from the far end

    def plug(self) -> None:
        self.process = subprocess.Popen(
            [
                "socat",
                f"pty,raw,echo=0,link={self.device}",
                f"pty,raw,echo=0,link={self.far}",
            ],
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: self.device.exists() and self.far.exists(), what="socat's pty pair")
        self.fd = os.open(self.far, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)

    def unplug(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.process is not None:
            self.process.terminate()
            self.process.wait()
            self.process = None

    def write(self, data: bytes) -> None:
        assert self.fd is not None
        os.write(self.fd, data)

    async def write_all(self, data: bytes, timeout: float = 30.0) -> None:
        """Write much more than the pty holds, waiting while the engine reads it."""
        deadline = asyncio.get_running_loop().time() + timeout
        view = memoryview(data)
        while view:
            assert asyncio.get_running_loop().time() < deadline, "the engine stopped reading"
            try:
                view = view[os.write(self.fd, view) :]
            except BlockingIOError:
                await asyncio.sleep(0.005)

    def available(self) -> bytes:
        try:
            return os.read(self.fd, 4096)
        except BlockingIOError:
            return b""

    async def read(self, until_bytes: int, timeout: float = 10.0) -> bytes:
        data = b""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(data) < until_bytes:
            assert asyncio.get_running_loop().time() < deadline, f"only got {data!r}"
            try:
                data += os.read(self.fd, 4096)
            except BlockingIOError:
                await asyncio.sleep(0.01)
        self.received += data
        return data

    async def messages(self, until, timeout: float = 10.0) -> list[mido.Message]:
        """Every MIDI message received so far, reading on until ``until(messages)``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            self.received += self.available()
            parser = mido.Parser()
            parser.feed(self.received)
            messages = list(parser)
            if messages and until(messages):
                return messages
            assert asyncio.get_running_loop().time() < deadline, f"only got {messages}"
            await asyncio.sleep(0.01)


SERIALMIDI_INPUT = 'input = [["note_on", 1], ["control_change", 1, 42], ["control_change", 2, 7]]\n'


@pytest.fixture
def cable(tmp_path):
    cable = Cable(tmp_path)
    cable.plug()
    yield cable
    cable.unplug()


def serial_config(tmp_path, cable):
    """A config that plays a serial text device (a micro:bit) on ``cable``, in polyphony."""
    extra = f'[serial]\nport = "{cable.device}"\nbaudrate = 115200\n'
    return write_config(tmp_path, Ports(), mode="polyphony", model=model_in(tmp_path), extra=extra)


def test_serial_lines_are_read_across_writes_and_garbage_is_counted(tmp_path, cable):
    config = serial_config(tmp_path, cable)

    async def scenario():
        async with running(config, Overrides(timescale=0.001)) as engine:
            with engine.subscribe() as events:
                cable.write(b"0.1,0.2,0.3\r\n0.4,0.")  # a line and a partial one ...
                await until(lambda: engine.inputs == 1)
                cable.write(b"5,0.6\n")  # ... completed later
                cable.write(b"\xff\xfe\x00junk\n1,2\n0.5,abc,0.1\n7,0.5,-3\n")
                await until(lambda: engine.inputs == 3)
                inputs = [e.values for e in events.drain() if e.kind == "input"]
            assert inputs[0] == pytest.approx((0.1, 0.2, 0.3))
            assert inputs[1] == pytest.approx((0.4, 0.5, 0.6))
            assert inputs[2] == (1.0, 0.5, 0.0)  # out of range: clamped
            counts = engine.warnings.counts
            assert counts["serial-garbage"] == 2 and counts["length serial"] == 1
            assert counts["range serial"] == 1

    play(scenario())


def test_serial_answers_are_lines_of_four_decimals(tmp_path, cable):
    config = serial_config(tmp_path, cable)

    async def scenario():
        async with running(config, Overrides(timescale=0.001)) as engine:
            cable.write(b"0.1,0.2,0.3\n0.4,0.5,0.6\n0.7,0.8,0.9\n")
            await until(lambda: engine.inputs == 3)
            lines = (await cable.read(3 * 21)).decode().splitlines()
            assert len(lines) == 3
            for line in lines:
                values = line.split(",")
                assert len(values) == 3 and all(len(v.split(".")[1]) == 4 for v in values)

    play(scenario())


def test_a_replugged_serial_device_is_read_again(tmp_path, cable):
    config = serial_config(tmp_path, cable)

    async def scenario():
        async with running(config, Overrides(timescale=0.001)) as engine:
            cable.write(b"0.1,0.2,0.3\n")
            await until(lambda: engine.inputs == 1)
            cable.unplug()  # the micro:bit is pulled out
            await until(lambda: "waiting for" in engine.channels["serial"].state)
            assert "lost it" in engine.channels["serial"].state
            cable.plug()  # and plugged in again
            await until(lambda: engine.channels["serial"].state.startswith("open"), 8)
            cable.write(b"0.9,0.9,0.9\n")
            await until(lambda: engine.inputs == 2)
            assert engine.last_input == pytest.approx([0.9, 0.9, 0.9])

    play(scenario())


def test_serial_device_missing_at_start_is_waited_for(tmp_path):
    ports = Ports()
    cable = Cable(tmp_path)
    extra = f'[serial]\nport = "{cable.device}"\n'
    config = write_config(tmp_path, ports, mode="useronly", extra=extra)

    async def scenario():
        async with running(config) as engine:
            assert "waiting for" in engine.channels["serial"].state
            said = [m for _, m in engine.warnings.recent if "retrying in the background" in m]
            assert len(said) == 1 and "not plugged in?" in said[0]
            cable.plug()
            try:
                await until(lambda: engine.channels["serial"].state.startswith("open"), 8)
                cable.write(b"0.5,0.5,0.5\n")
                await until(lambda: engine.inputs == 1)
            finally:
                cable.unplug()

    play(scenario())


def test_serial_midi_bytes_both_ways_and_note_off_on_stop(tmp_path, cable):
    ports = Ports()
    extra = (
        f'[serialmidi]\nport = "{cable.device}"\n'
        f"{SERIALMIDI_INPUT}"
        'output = [["note_on", 3], ["control_change", 3, 42], ["control_change", 3, 43, 0, 13]]\n'
    )
    config = write_config(tmp_path, ports, mode="polyphony", model=model_in(tmp_path), extra=extra)

    async def scenario():
        async with running(config, Overrides(timescale=0.001)) as engine:
            assert engine.labels() == ["note ch1", "CC42 ch1", "CC7 ch2"]
            note = mido.Message("note_on", channel=0, note=127, velocity=90).bytes()
            cc = mido.Message("control_change", channel=1, control=7, value=0).bytes()
            cable.write(bytes([0x12, 0x34]) + bytes(note) + bytes(cc))  # stray data bytes first
            await until(lambda: engine.inputs == 2)
            assert engine.last_input == [1.0, 0.5, 0.0]
            await cable.read(9)  # one answer: note_on and two CCs
        sent = await cable.messages(until=lambda sent: sent[-1].type == "note_off")
        assert [m.type for m in sent[:3]] == ["note_on", "control_change", "control_change"]
        assert all(m.channel == 2 for m in sent)
        assert sent[0].velocity == 127
        assert sent[2].value <= 13  # ranged CC
        # monophonic: each new note ends the previous one; stopping ends the last one
        notes = [m for m in sent if m.type in ("note_on", "note_off")]
        assert [m.type for m in notes] == ["note_on", "note_off"] * (len(notes) // 2)
        assert all(off.note == on.note for on, off in zip(notes[::2], notes[1::2], strict=True))

    play(scenario())


def test_a_device_that_never_ends_its_line_costs_one_line_of_memory(tmp_path, cable):
    ports = Ports()
    extra = f'[serial]\nport = "{cable.device}"\n'
    config = write_config(tmp_path, ports, mode="useronly", extra=extra)

    async def scenario():
        async with running(config) as engine:
            channel = engine.channels["serial"]
            await cable.write_all(b"0.5," * 65536)  # 256 KiB without a newline
            cable.write(b"\n0.25,0.25,0.25\n")  # the end of it, then a good line
            await until(lambda: engine.inputs == 1, 10)
            assert engine.last_input == [0.25, 0.25, 0.25]
            assert engine.warnings.counts["serial-garbage"] == 1
            assert len(channel._lines._partial) == 0

    play(scenario())


def test_serial_midi_drops_endless_sysex_and_reads_on(tmp_path, cable):
    ports = Ports()
    extra = f'[serialmidi]\nport = "{cable.device}"\n{SERIALMIDI_INPUT}'
    config = write_config(tmp_path, ports, mode="useronly", extra=extra)

    async def scenario():
        async with running(config) as engine:
            await cable.write_all(b"\xf0" + b"\x11" * 2**20)  # 1 MiB of SysEx without an end
            await until(lambda: engine.warnings.counts["serialmidi-sysex"] == 1, 10)
            cable.write(bytes([0xB0, 42, 127]))  # a status byte ends it; this CC counts
            await until(lambda: engine.inputs == 1, 10)
            assert engine.last_input == [0.5, 1.0, 0.5]

    play(scenario())


def test_a_device_that_reads_slowly_gets_whole_messages_or_none(cable):
    """A synth on a UART takes bytes slower than a model can send them: what waits is
    bounded, and what is dropped is dropped in whole messages (each counted), never
    half of one."""
    from antiphon.io.serial import MAX_PENDING, SerialDevice

    class Synth(SerialDevice):
        name = "serialmidi"

        def _received(self, data: bytes) -> None:
            pass

    class Warned:
        def __init__(self) -> None:
            self.warnings: list[str] = []

        def warn(self, kind: str, message: str) -> None:
            self.warnings.append(kind)

    note = bytes(mido.Message("note_on", note=60, velocity=100).bytes())
    sent = 20_000  # 60 KB: much more than the two ptys and MAX_PENDING hold

    async def scenario() -> tuple[bytes, list[str], int]:
        synth, inputs = Synth(str(cable.device), 31250), Warned()
        await synth.open(inputs)
        await until(lambda: synth.state.startswith("open"))
        for _ in range(sent):  # the far end reads nothing meanwhile
            synth.write(note)
        waiting = len(synth._pending)
        kept = (sent - len(inputs.warnings)) * len(note)
        received = await cable.read(kept, timeout=30)  # the rest as the far end reads
        await synth.close()
        return received, inputs.warnings, waiting

    received, warnings, waiting = play(scenario())
    assert 0 < waiting <= MAX_PENDING
    assert warnings and set(warnings) == {"overflow serialmidi"}
    assert received == note * (len(received) // len(note))  # whole messages only
