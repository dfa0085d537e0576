"""config.toml: every IMPSY config loads, bad values get one clear message."""

import pytest

from antiphon import config
from antiphon.config import ConfigError, MidiMapping
from antiphon.limits import DEFAULT_SIGMATEMP, MODES
from antiphon.workspace import config_template


def test_every_impsy_example_config_loads(impsy_dir):
    paths = sorted((impsy_dir / "configs").glob("*.toml"))
    assert len(paths) >= 16
    for path in paths:
        loaded = config.load(path)
        assert loaded.model.dimension >= 2
        assert loaded.interaction.mode in MODES


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
    assert loaded.model.dimension == 9 and loaded.model.sigmatemp == DEFAULT_SIGMATEMP
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
        ("[model]\ndimension = 1", ["model.dimension", "from 2 to 129"]),
        ("[model]\ndimension = 100000000", ["model.dimension", "from 2 to 129"]),
        ("[model]\ntimescale = 0", ["model.timescale", "greater than 0"]),
        ("[model]\ntimescale = 1e9", ["model.timescale", "at most 100"]),
        ("[interaction]\nthreshold = 1e9", ["interaction.threshold", "from 0 to 60"]),
        ("[model]\npitemp = nan", ["model.pitemp", "finite"]),
        ("[osc]\nserver_port = 4002", ["webui.command_port and osc.server_port", "4002"]),
        ("[model]\nsigmatemp = -1", ["model.sigmatemp"]),
        ('[model]\npitemp = "hot"', ["model.pitemp", "number"]),
        ("[osc]\nclient_port = 99999", ["osc.client_port", "65535"]),
        ("verbose = 1", ["verbose", "true or false"]),
        ('[midi]\ninput."A" = [["note_on", 0]]', ["channel 0", "1-16"]),
        ('[websocket]\noutput = [["aftertouch", 1]]', ["websocket.output[0]", "note_on"]),
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


def test_values_impsy_crashes_on_get_working_defaults_with_warnings():
    text = (
        "[model]\ndimension = 4\n"
        '[osc]\nclient_ip = "0.0.0.0"\nserver_ip = "192.0.2.1"\n'
        '[websocket]\nserver_ip = "192.168.0.81"\n'
        '[midi]\nin_device = ["X-TOUCH"]\nout_device = ["Volca"]\n'
        'output."Volca" = [["note_on", 1], ["note_on", 2], ["note_on", 3]]\n'
    )
    loaded = config.parse(text)
    warnings = " | ".join(loaded.warnings)
    assert loaded.osc.client_ip == "127.0.0.1" and "client_ip = '0.0.0.0'" in warnings
    assert loaded.osc.server_ip == "0.0.0.0" and "'192.0.2.1' is not an address" in warnings
    assert loaded.websocket.server_ip == "0.0.0.0"
    assert loaded.websocket.input == [MidiMapping("control_change", 1, i) for i in (1, 2, 3)]
    assert "[websocket] has no input mapping" in warnings
    assert loaded.midi.input["X-TOUCH"][2] == MidiMapping("control_change", 1, 3)
    assert "midi.input.'X-TOUCH' is missing" in warnings


def test_local_addresses():
    assert config.is_local_address("127.0.0.1") and config.is_local_address("0.0.0.0")
    assert config.is_local_address("localhost")
    assert not config.is_local_address("192.0.2.1")  # TEST-NET-1: never this machine
    assert not config.is_local_address("no-such-host.invalid")


def test_a_dimension_override_is_checked_against_the_mappings(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(
        '[model]\ndimension = 3\n[websocket]\ninput = [["note_on", 1], ["note_on", 2]]\n'
    )
    assert config.load(path).model.dimension == 3
    with pytest.raises(ConfigError, match="2 mappings but model.dimension = 5"):
        config.load(path, dimension=5)


@pytest.mark.parametrize(
    ("text", "password", "port"),
    [
        ('[model]\ndimension = 0\n[webui]\npassword = "s"\nport = 4100\n', "s", 4100),
        ('[webui]\npassword = "s"\nport = 4100\n[model\n', "s", 4100),  # not even TOML
        ('[webui]\npassword = "s"\nport = "x"\n', None, 4000),  # [webui] itself is broken
    ],
)
def test_a_broken_config_keeps_its_web_ui_settings_where_they_are_readable(
    tmp_path, text, password, port
):
    path = tmp_path / "config.toml"
    path.write_text(text)
    webui = config.salvage_webui(path)
    assert (webui.password, webui.port, webui.host) == (password, port, "127.0.0.1")
