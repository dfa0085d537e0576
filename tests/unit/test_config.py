"""config.toml: every IMPSY config loads, bad values get one clear message."""

import pytest

from antiphon import config
from antiphon.config import ConfigError, MidiMapping
from antiphon.workspace import config_template


def test_every_impsy_example_config_loads(impsy_dir):
    paths = sorted((impsy_dir / "configs").glob("*.toml"))
    assert len(paths) >= 16
    for path in paths:
        loaded = config.load(path)
        assert loaded.model.dimension >= 2
        assert loaded.interaction.mode in config.MODES


def test_impsy_default_config_values(impsy_dir):
    loaded = config.load(impsy_dir / "configs" / "default.toml")
    assert loaded.midi and loaded.osc and loaded.websocket and loaded.serial and loaded.serialmidi
    assert loaded.midi.input["X-TOUCH"][0] == MidiMapping("control_change", 11, 1)
    assert loaded.midi.output["Studio 1824c"][0] == MidiMapping("note_on", 1)
    assert loaded.websocket.server_port == 5001
    assert loaded.webui.monitor_port == 4001 and loaded.webui.command_port == 4002
    assert loaded.serialmidi.baudrate == 31250


def test_ranged_mapping_and_unknown_keys(impsy_dir):
    loaded = config.load(impsy_dir / "configs" / "roland-s-1-xtouch.toml")
    assert loaded.midi.output["X-TOUCH"][0] == MidiMapping("control_change", 1, 9, 0, 13)
    assert MidiMapping.parse(["control_change", 1, 9, 0, 13]).to_toml() == [
        "control_change",
        1,
        9,
        0,
        13,
    ]
    arturia = config.load(impsy_dir / "configs" / "arturia-minilab3-analogV.toml")
    assert any("'name'" in w for w in arturia.warnings)


def test_defaults_fill_every_missing_key():
    loaded = config.parse("")
    assert loaded.interaction.mode == "callresponse" and loaded.interaction.threshold == 0.1
    assert loaded.model.dimension == 9 and loaded.model.sigmatemp == 0.01
    assert loaded.osc is None and loaded.midi is None  # absent sections are switched off
    partial = config.parse("[osc]\nserver_port = 7000\n")
    assert partial.osc.server_port == 7000 and partial.osc.client_port == 6001


def test_the_init_template_is_valid_and_complete():
    loaded = config.parse(config_template())
    assert loaded.warnings == []
    assert loaded.osc is not None and loaded.osc.server_port == 6000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[interaction]\nmode = "solo"', ["interaction.mode", "'solo'", "callresponse"]),
        ("[model]\ndimension = 1", ["model.dimension", "at least 2"]),
        ("[model]\nsigmatemp = -1", ["model.sigmatemp"]),
        ('[model]\npitemp = "hot"', ["model.pitemp", "number"]),
        ("[osc]\nclient_port = 99999", ["osc.client_port", "65535"]),
        ("verbose = 1", ["verbose", "true or false"]),
        ('[midi]\ninput."A" = [["note_on", 0]]', ["channel 0", "1-16"]),
        ('[websocket]\noutput = [["pitch_bend", 1]]', ["websocket.output[0]", "note_on"]),
        ("interaction = 3", ["[interaction] must be a table"]),
        ("[model\n", ["not valid TOML"]),
    ],
)
def test_bad_values_name_the_key_the_value_and_what_is_allowed(text, expected):
    with pytest.raises(ConfigError) as info:
        config.parse(text)
    for fragment in expected:
        assert fragment in str(info.value)


def test_mapping_length_must_match_the_dimension():
    text = '[model]\ndimension = 4\n[websocket]\ninput = [["note_on", 1], ["note_on", 2]]\n'
    with pytest.raises(ConfigError, match="2 mappings but model.dimension = 4"):
        config.parse(text)


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[model]\ndimension = 0\n")
    with pytest.raises(ConfigError, match=str(path)):
        config.load(path)
    with pytest.raises(ConfigError, match="antiphon init"):
        config.load(tmp_path / "missing.toml")


def test_model_path_is_relative_to_the_config(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[model]\nfile = "models/a.safetensors"\n')
    assert config.load(path).model_path == tmp_path / "models" / "a.safetensors"
