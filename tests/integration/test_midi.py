"""MIDI through a fake mido backend (this machine has no ALSA sequencer): mapping,
several ports, thru_matrix, feedback protection, hot-plugging, note-offs on stop."""

from __future__ import annotations

import threading

import mido
import pytest
from peers import OSCPeer, Ports, play, running, until, write_config

from antiphon.engine.setup import Overrides
from antiphon.io import midi
from antiphon.io.midiwire import MAX_SYSEX
from workspaces import edit_config, edited, model_in


class FakeOutput(mido.ports.BaseOutput):
    def __init__(self, name: str, sent: list) -> None:
        self.sent = sent
        super().__init__(name)

    def _send(self, message: mido.Message) -> None:
        self.sent.append(message)


class FakeInput:
    def __init__(self, name: str, callback) -> None:
        self.name, self.callback, self.closed = name, callback, False

    def close(self) -> None:
        self.closed = True


class FakeMIDI:
    """Ports that can be plugged and unplugged; input arrives on another thread."""

    def __init__(self, inputs: list[str], outputs: list[str]) -> None:
        self.plugged = {*inputs, *outputs}
        self.input_names, self.output_names = inputs, outputs
        self.open_inputs: dict[str, FakeInput] = {}
        self.sent: dict[str, list[mido.Message]] = {name: [] for name in outputs}

    def get_input_names(self) -> list[str]:
        return [n for n in self.input_names if n in self.plugged]

    def get_output_names(self) -> list[str]:
        return [n for n in self.output_names if n in self.plugged]

    def open_input(self, name: str, callback) -> FakeInput:
        if name not in self.plugged:
            raise OSError(f"no port {name}")
        self.open_inputs[name] = FakeInput(name, callback)
        return self.open_inputs[name]

    def open_output(self, name: str) -> FakeOutput:
        if name not in self.plugged:
            raise OSError(f"no port {name}")
        return FakeOutput(name, self.sent[name])

    def play(self, name: str, *messages: mido.Message) -> None:
        port = self.open_inputs[name]
        thread = threading.Thread(target=lambda: [port.callback(m) for m in messages])
        thread.start()
        thread.join()


CONFIG = """
[midi]
in_device = ["X-TOUCH", "S-1"]
out_device = ["Volca", "S-1"]
feedback_protection = true
feedback_threshold = 0.5
input."X-TOUCH" = [["control_change", 11, 1], ["control_change", 11, 2], ["note_on", 1]]
input."S-1" = [["note_on", 3], ["control_change", 3, 19], ["control_change", 3, 20]]
output."Volca" = [["note_on", 1], ["control_change", 1, 42], ["control_change", 1, 43, 0, 13]]
output."S-1" = [["note_on", 3], ["control_change", 3, 19], ["control_change", 3, 20]]
thru_matrix."X-TOUCH" = ["S-1"]
"""


def cc(channel: int, control: int, value: int) -> mido.Message:
    return mido.Message("control_change", channel=channel - 1, control=control, value=value)


XTOUCH = "X-TOUCH MINI:X-TOUCH MINI MIDI 1 20:0"
S1 = "S-1:S-1 MIDI 1 24:0"
VOLCA = "Volca FM:Volca FM MIDI 1 28:0"


@pytest.fixture
def studio(tmp_path, monkeypatch):
    """CONFIG's ports as fake devices (the S-1 not plugged in yet) and a config playing
    them in polyphony, answering at once: (the devices, the config)."""
    fake = FakeMIDI([XTOUCH, S1], [VOLCA, S1])
    fake.plugged.discard(S1)
    monkeypatch.setattr(midi, "open_backend", lambda: fake)
    monkeypatch.setattr(midi, "WATCH_INTERVAL", 0.05)
    config = write_config(
        tmp_path, Ports(), mode="polyphony", model=model_in(tmp_path), extra=CONFIG
    )
    return fake, config


FAST = Overrides(timescale=0.001)


def test_midi_in_and_out_follow_the_mappings_one_note_at_a_time(studio):
    fake, config = studio
    volca = fake.sent[VOLCA]

    async def scenario():
        async with running(config, FAST) as engine:
            assert engine.labels() == ["CC1 ch11", "CC2 ch11", "note ch1"]
            fake.play(XTOUCH, cc(11, 1, 127))
            await until(lambda: engine.inputs == 1 and engine.outputs == 1)
            assert engine.last_input == [1.0, 0.5, 0.5]  # untouched controls keep their value
            fake.play(XTOUCH, cc(11, 2, 0), mido.Message("note_on", note=64, velocity=1))
            fake.play(XTOUCH, mido.Message("note_on", note=10, velocity=0))  # a note-off
            await until(lambda: engine.outputs == 3)
            assert engine.last_input == [1.0, 0.0, 64 / 127]
        # the Volca hears notes and CCs as mapped, one note at a time
        assert [m.type for m in volca[:3]] == ["note_on", "control_change", "control_change"]
        assert volca[0].velocity == 127 and volca[1].control == 42
        assert volca[2].control == 43 and volca[2].value <= 13
        assert [m.type for m in volca[3:5]] == ["note_off", "note_on"]
        assert volca[3].note == volca[0].note

    play(scenario())


def test_an_output_plugged_in_later_is_found_and_played(studio):
    fake, config = studio
    s1 = fake.sent[S1]

    async def scenario():
        async with running(config, FAST) as engine:
            channel = engine.channels["midi"]
            assert "out S-1 (waiting for it)" in channel.state
            fake.play(XTOUCH, cc(11, 1, 127))
            await until(lambda: engine.outputs == 1)
            assert s1 == []  # not plugged in: nothing sent, nothing crashed
            fake.plugged.add(S1)  # plug it in: found by the retry
            await until(lambda: "(waiting" not in channel.state, 8)
            fake.play(XTOUCH, cc(11, 1, 5))
            await until(lambda: engine.outputs == 2)
            await until(lambda: any(m.type == "control_change" for m in s1))

    play(scenario())


def test_thru_matrix_translates_the_x_touch_into_the_s1s_mapping(studio):
    fake, config = studio
    fake.plugged.add(S1)
    s1 = fake.sent[S1]

    async def scenario():
        async with running(config, FAST) as engine:
            fake.play(XTOUCH, cc(11, 1, 5))
            await until(lambda: engine.outputs == 1)
            await until(lambda: any(m.type == "control_change" for m in s1))
        # the X-TOUCH's first control is the S-1's note; everything on the S-1's channel
        assert mido.Message("note_on", channel=2, note=5, velocity=127) in s1
        assert {m.channel for m in s1} == {2}

    play(scenario())


def test_an_echo_of_what_was_sent_is_ignored_and_real_input_is_not(studio):
    fake, config = studio
    fake.plugged.add(S1)
    s1 = fake.sent[S1]

    async def scenario():
        async with running(config, FAST) as engine:
            channel = engine.channels["midi"]
            fake.play(XTOUCH, cc(11, 1, 5))
            await until(lambda: any(m.type == "control_change" for m in s1))
            answer = next(m for m in s1 if m.type == "control_change")
            fake.play(S1, answer)  # the S-1 echoes what it was sent back on its input
            await until(lambda: channel.echoes == 1)
            assert engine.inputs == 1
            fake.play(S1, cc(3, 20, 127))  # a real S-1 knob
            await until(lambda: engine.inputs == 2)
            assert engine.status()["last_input"]["source"] == "midi S-1"

    play(scenario())


def test_an_output_unplugged_mid_performance_is_waited_for_while_the_rest_plays(studio):
    fake, config = studio
    fake.plugged.add(S1)
    volca = fake.sent[VOLCA]

    async def scenario():
        async with running(config, FAST) as engine:
            channel = engine.channels["midi"]
            await until(lambda: "(waiting" not in channel.state)
            fake.plugged.discard(VOLCA)  # unplugged mid-performance
            await until(lambda: "out Volca (waiting" in channel.state)
            fake.play(XTOUCH, cc(11, 1, 6))
            await until(lambda: engine.outputs == 1)  # the rest keeps playing
            fake.plugged.add(VOLCA)
            await until(lambda: "(waiting" not in channel.state, 8)
            before = len(volca)
            fake.play(XTOUCH, cc(11, 1, 7))
            await until(lambda: len(volca) > before)

    play(scenario())


def test_stopping_ends_the_sounding_notes_on_every_output(studio):
    fake, config = studio
    fake.plugged.add(S1)
    volca, s1 = fake.sent[VOLCA], fake.sent[S1]

    async def scenario():
        async with running(config, FAST) as engine:
            fake.play(XTOUCH, cc(11, 1, 7))
            await until(lambda: engine.outputs == 1)
            await until(lambda: any(m.type == "note_on" for m in volca))
            await until(lambda: any(m.type == "note_on" for m in s1))

    play(scenario())
    assert volca[-1].type == "note_off"
    sounding = [m for m in s1[:-1] if m.type == "note_on"][-1].note
    assert s1[-1] == mido.Message("note_off", channel=2, note=sounding, velocity=0)


def test_without_a_midi_system_the_other_channels_play(tmp_path, monkeypatch):
    def no_alsa():
        raise OSError("MidiInAlsa::initialize: error creating ALSA sequencer client object.")

    monkeypatch.setattr(midi, "open_backend", no_alsa)
    ports = Ports()
    config = write_config(tmp_path, ports, mode="polyphony", model=model_in(tmp_path), extra=CONFIG)

    async def scenario():
        synth, performer = await OSCPeer.listen(ports.client), await OSCPeer.listen()
        async with running(config, Overrides(timescale=0.001)) as engine:
            assert engine.channels["midi"].state.startswith("no MIDI system")
            messages = [m for _, m in engine.warnings.recent if m.startswith("midi:")]
            assert len(messages) == 1 and "ALSA sequencer" in messages[0]
            performer.send(ports.server, "/interface", 0.5, 0.5, 0.5)
            assert (await synth.next(2.0))[1] == "/impsy"

    play(scenario())


@pytest.mark.parametrize(
    ("pattern", "names", "found"),
    [
        ("X-TOUCH", ["Midi Through:0", "X-TOUCH MINI:X-TOUCH MINI MIDI 1 20:0"], 1),
        ("S-1", ["S-1", "S-1 MIDI 2"], 0),
        ("Volca", ["Midi Through:0"], None),
    ],
)
def test_port_names_match_exactly_or_by_part(pattern, names, found):
    assert midi.find_port(pattern, names) == (None if found is None else names[found])


def test_sysex_is_forwarded_thru_up_to_a_size_and_a_failing_output_is_waited_for(
    tmp_path, monkeypatch
):
    xtouch, s1 = "X-TOUCH MINI:X-TOUCH MINI MIDI 1 20:0", "S-1:S-1 MIDI 1 24:0"
    fake = FakeMIDI([xtouch, s1], ["Volca FM:Volca FM MIDI 1 28:0", s1])
    monkeypatch.setattr(midi, "open_backend", lambda: fake)
    ports = Ports()
    config = write_config(
        tmp_path,
        ports,
        mode="polyphony",
        model=model_in(tmp_path),
        extra=CONFIG,
    )
    edit_config(config, adding={"midi.thru_raw": True})
    s1_sent = fake.sent[s1]

    async def scenario():
        async with running(config, Overrides(timescale=0.001)) as engine:
            channel = engine.channels["midi"]
            dump = mido.Message("sysex", data=[1] * (MAX_SYSEX - 2))
            fake.play(xtouch, dump, mido.Message("sysex", data=[2] * (MAX_SYSEX - 1)))
            await until(lambda: engine.warnings.counts["midi-sysex"] == 1)
            assert s1_sent == [dump]  # the one that fits is forwarded whole (thru_raw)

            def broken(message):
                raise OSError("device disappeared")

            monkeypatch.setattr(FakeOutput, "_send", lambda self, message: broken(message))
            fake.plugged.discard("Volca FM:Volca FM MIDI 1 28:0")
            fake.play(xtouch, cc(11, 1, 64))
            await until(lambda: "out Volca (waiting" in channel.state)  # unplugged: stays so
            await until(lambda: engine.warnings.counts["midi output S-1"] == 1)  # lost, retried
            said = [m for _, m in engine.warnings.recent if "lost it (device disappeared)" in m]
            assert len(said) == 2

    play(scenario())


QUNEO = "QuNeo:QuNeo MIDI 1 32:0"


def _quneo_and_s1(tmp_path, impsy_dir, monkeypatch, *, raw: bool):
    """IMPSY's own roland-s-1-quneo.toml (QuNeo pads and sliders thru to the S-1, the
    S-1's knobs thru to the QuNeo's LEDs), its model beside it, in useronly mode: what
    reaches the synths is the thru alone."""
    text = (impsy_dir / "configs" / "roland-s-1-quneo.toml").read_text()
    assert 'thru_matrix."QuNeo" = ["S-1"]' in text
    if raw:
        text = edited(text, adding={"midi.thru_raw": True})
    models = tmp_path / "models"
    models.mkdir()
    name = "musicMDRNN-dim9-layers2-units64-mixtures5-scale10.tflite"
    models.joinpath(name).write_bytes((impsy_dir / "models" / name).read_bytes())
    ports = Ports()
    config = tmp_path / "config.toml"
    webui = f"\n[webui]\nmonitor_port = {ports.monitor}\ncommand_port = {ports.command}\n"
    config.write_text(text + webui)
    fake = FakeMIDI([QUNEO, S1], [QUNEO, S1])
    monkeypatch.setattr(midi, "open_backend", lambda: fake)
    return config, fake


def test_thru_matrix_translates_through_both_mappings(tmp_path, impsy_dir, monkeypatch):
    config, fake = _quneo_and_s1(tmp_path, impsy_dir, monkeypatch, raw=False)
    to_s1, to_quneo = fake.sent[S1], fake.sent[QUNEO]

    async def scenario():
        async with running(config, Overrides(mode="useronly")) as engine:
            channel = engine.channels["midi"]
            await until(lambda: "waiting" not in channel.state)
            # a QuNeo pad (note_on ch1, control 1) plays the S-1's note (note_on ch3)
            fake.play(QUNEO, mido.Message("note_on", channel=0, note=60, velocity=100))
            await until(lambda: len(to_s1) == 1)
            assert to_s1 == [mido.Message("note_on", channel=2, note=60, velocity=127)]
            # a QuNeo slider (CC7 ch1, control 2) moves the S-1's square level (CC19 ch3)
            fake.play(QUNEO, cc(1, 7, 64))
            await until(lambda: len(to_s1) == 2)
            assert to_s1[1] == cc(3, 19, 64)
            # what the QuNeo's mapping does not know does not pass
            fake.play(
                QUNEO,
                cc(1, 99, 10),
                mido.Message("note_on", channel=5, note=1, velocity=1),
                mido.Message("sysex", data=[1, 2, 3]),
                mido.Message("note_on", channel=0, note=62, velocity=80),  # mapped: a marker
            )
            await until(lambda: len(to_s1) == 4)
            assert to_s1[2:] == [
                mido.Message("note_off", channel=2, note=60, velocity=0),
                mido.Message("note_on", channel=2, note=62, velocity=127),
            ]
            # and the other way: the S-1's tri level knob (CC20 ch3, control 3) lights the
            # QuNeo's third slider (CC3 ch1)
            fake.play(S1, cc(3, 20, 100))
            await until(lambda: len(to_quneo) == 1)
            assert to_quneo == [cc(1, 3, 100)]
            assert engine.outputs == 0  # useronly: everything above was the thru
            assert engine.inputs == 4

    play(scenario())


def test_thru_raw_forwards_every_message_as_it_came(tmp_path, impsy_dir, monkeypatch):
    config, fake = _quneo_and_s1(tmp_path, impsy_dir, monkeypatch, raw=True)
    to_s1 = fake.sent[S1]
    unmapped = [cc(1, 99, 10), mido.Message("sysex", data=[1, 2, 3])]

    async def scenario():
        async with running(config, Overrides(mode="useronly")) as engine:
            await until(lambda: "waiting" not in engine.channels["midi"].state)
            fake.play(QUNEO, *unmapped, cc(1, 7, 64))
            await until(lambda: len(to_s1) == 3)
            assert to_s1 == [*unmapped, cc(1, 7, 64)]

    play(scenario())
