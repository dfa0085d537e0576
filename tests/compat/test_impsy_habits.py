"""What IMPSY users do keeps working: their folder layout and relative paths, their
command-line spellings, the workshop's section names, and nothing played in place of
what they asked without saying so. (The real-process side is in
tests/integration/test_impsy_layout.py; the conformance vectors in test_conformance.py.)"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import stat
from pathlib import Path

import mido
import numpy as np
import pytest
from click.testing import CliRunner

from antiphon import config as config_module
from antiphon.cli import cli
from antiphon.data import dataset as datasets
from antiphon.data.logs import write_events
from antiphon.engine.instrument import Instrument
from antiphon.engine.runner import banner
from antiphon.engine.schedule import new_event_loop
from antiphon.engine.setup import prepare
from antiphon.io import websocket
from antiphon.io.midiwire import Parser
from workspaces import edit_config, save_model

PD_CONFIG = "pd-workshop-example.toml"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_ports() -> str:
    """[webui]'s localhost ports on free ports (tests run side by side)."""
    return f"\n[webui]\ncommand_port = {free_port()}\nmonitor_port = {free_port()}\n"


DIM4 = "musicMDRNN-dim4-layers2-units64-mixtures5-scale10.tflite"


def impsy_project(root: Path, impsy_dir: Path, *, with_model: bool = True) -> Path:
    """An IMPSY project folder as IMPSY's own docs lay it out: configs/, models/, logs/,
    with IMPSY's Pd workshop config (whose model is ``models/...``, relative)."""
    (root / "configs").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "logs").mkdir()
    shutil.copy(impsy_dir / "configs" / PD_CONFIG, root / "configs" / PD_CONFIG)
    if with_model:
        shutil.copy(impsy_dir / "models" / DIM4, root / "models" / DIM4)
    return root / "configs" / PD_CONFIG


# -- relative paths (IMPSY reads them from the working directory) -----------------------


def test_run_c_configs_x_in_an_impsy_project_finds_its_model_and_logs(
    tmp_path, impsy_dir, monkeypatch
):
    config = impsy_project(tmp_path, impsy_dir)
    monkeypatch.chdir(tmp_path)
    setup = prepare(Path("configs") / PD_CONFIG)
    assert setup.model_path.resolve() == (tmp_path / "models" / DIM4).resolve()
    assert setup.model_name == DIM4 and not setup.substitutions
    assert setup.root.resolve() == tmp_path.resolve()  # the web UI's workspace too
    assert setup.log_dir.resolve() == (tmp_path / "logs").resolve()
    said = " ".join(setup.warnings)
    assert "is not beside" in said and "working directory" in said  # and says which
    assert "using the workspace" in said
    # the same config, run from elsewhere, still finds a model beside it
    monkeypatch.chdir(config.parent)
    (config.parent / "models").mkdir()
    shutil.copy(tmp_path / "models" / DIM4, config.parent / "models" / DIM4)
    beside = prepare(Path(PD_CONFIG))
    assert beside.model_path.resolve() == (config.parent / "models" / DIM4).resolve()
    assert beside.root.resolve() == config.parent.resolve()
    assert not any("working directory" in w for w in beside.warnings)


def test_a_missing_model_is_played_around_only_as_an_error_naming_both_places(
    tmp_path, impsy_dir, monkeypatch
):
    impsy_project(tmp_path, impsy_dir, with_model=False)
    monkeypatch.chdir(tmp_path)
    setup = prepare(Path("configs") / PD_CONFIG)
    assert setup.model_name.endswith("(bundled)")
    (substitution,) = setup.substitutions
    assert substitution.asked == f"the configured model models/{DIM4}"
    assert "bundled default model for dimension 4" in substitution.playing
    assert "no such" in substitution.reason or "not found" in substitution.reason
    assert "beside the config" in substitution.fix and "working directory" in substitution.fix
    assert setup.log_dir.resolve() == (tmp_path / "logs").resolve()  # not configs/logs


# -- nothing is played in place of what was asked without an error --------------------


def test_a_client_address_that_does_not_resolve_is_an_error_with_what_is_used(
    tmp_path, impsy_dir, monkeypatch
):
    """IMPSY's Docker workshop config sends to host.docker.internal; outside Docker that
    name does not resolve (made so here without asking any name server)."""
    config = impsy_project(tmp_path, impsy_dir)
    text = edit_config(config, {"osc.server_port": free_port()})
    config.write_text(text + local_ports())
    real = socket.getaddrinfo

    def no_docker(host, *args, **kwargs):
        if host == "host.docker.internal":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", no_docker)
    monkeypatch.chdir(tmp_path)
    engine = Instrument(prepare(config))

    async def scenario():
        await engine.start()
        try:
            return engine.status(), banner(engine)
        finally:
            await engine.stop()

    loop = new_event_loop()
    try:
        status, lines = loop.run_until_complete(scenario())
    finally:
        loop.close()
    (osc,) = [c for c in status["channels"] if c["name"] == "osc"]
    assert "out 127.0.0.1 (in place of host.docker.internal" in osc["state"]
    (substitution,) = status["substitutions"]
    assert substitution["asked"] == "[osc].client_ip = 'host.docker.internal'"
    assert substitution["playing"].startswith("sending to 127.0.0.1")
    assert "Fix:" in substitution["message"]
    errors = [line for level, line in lines if level >= 40]
    assert errors == [f"PLAYING {substitution['message']}"]
    assert any("in place of host.docker.internal" in line for _, line in lines)


def test_config_check_reports_the_serial_port_clash_that_run_reports(tmp_path):
    path = tmp_path / "config.toml"
    mapping = '[["control_change", 1, 1], ["control_change", 1, 2], ["control_change", 1, 3]]'
    path.write_text(
        "[model]\ndimension = 4\n"
        '[serial]\nport = "/dev/ttyAMA0"\n'
        f'[serialmidi]\nport = "/dev/ttyAMA0"\ninput = {mapping}\noutput = {mapping}\n'
    )
    run = prepare(path)
    checked = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert checked.exit_code == 0
    (substitution,) = run.substitutions
    assert f"error: would play {substitution}" in checked.output
    assert "[serial] and [serialmidi] both use /dev/ttyAMA0" in checked.output
    assert "Fix: give [serialmidi] its own port" in checked.output
    assert "plays, but not as written" in checked.output


# -- the workshop's section name, and its WebSocket habits ----------------------------


def test_websockets_is_read_as_websocket_and_both_are_one_section():
    mapping = '[["note_on", 1], ["control_change", 1, 42], ["control_change", 1, 43]]'
    text = f"[model]\ndimension = 4\n[websockets]\nserver_port = 5005\ninput = {mapping}\n"
    loaded = config_module.parse(text)
    assert loaded.websocket is not None and loaded.websocket.server_port == 5005
    assert loaded.websocket.input[1] == config_module.MidiMapping("control_change", 1, 42)
    assert any("[websockets] is read as [websocket]" in w for w in loaded.warnings)
    both = config_module.parse(text + f"[websocket]\noutput = {mapping}\n")
    assert both.websocket.server_port == 5005 and both.websocket.output[0].kind == "note_on"
    with pytest.raises(config_module.ConfigError, match="one section, and both set server_port"):
        config_module.parse(text + "[websocket]\nserver_port = 5006\n")


def test_a_websocket_note_on_at_velocity_0_is_a_note_off():
    message, clamped = websocket.parse("/channel/2/noteon/64/0")
    assert message == mido.Message("note_off", channel=1, note=64, velocity=0) and not clamped


def test_midi_and_serial_midi_cannot_carry_a_value_over_127():
    """A MIDI data byte has 7 bits: a byte of 128 or more is a status byte, so there is
    no value over 127 to clamp (WebSocket text can say 200: it is clamped and counted,
    see test_websocket.py). A CC with a stray high byte is a broken message and is not
    read as a value."""
    parser = Parser()
    assert parser.feed(bytes([0xB0, 7, 0xC8])) == []  # C8: a program change starts
    assert parser.feed(bytes([0x05])) == [mido.Message("program_change", channel=8, program=5)]
    with pytest.raises(ValueError):
        mido.Message("control_change", control=7, value=128)  # what rtmidi hands over


# -- IMPSY's command-line spellings ---------------------------------------------------


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        (["run"], ["-l", "elsewhere", "-d", "5", "--log-input"], {"logdir": Path("elsewhere")}),
        (["run"], ["--logdir", "x", "--dimension", "3", "--no-log-input"], {"dimension": 3}),
        (["dataset"], ["-O", "out", "-F", "mine.npz"], {"destination": Path("out")}),
        (["train"], ["-O", "trained"], {"destination": Path("trained")}),
        (["init"], ["-f"], {"force": True}),
    ],
)
def test_impsy_option_spellings_are_accepted(command, args, expected):
    found = cli
    for name in command:
        found = found.commands[name]
    context = found.make_context(command[-1], list(args))
    for key, value in expected.items():
        assert context.params[key] == value
    if command == ["run"]:
        assert context.params["log_input"] is ("--log-input" in args)


def test_webui_is_another_name_for_web():
    assert cli.commands["webui"].callback is cli.commands["web"].callback
    assert cli.commands["webui"].hidden
    result = CliRunner().invoke(cli, ["webui", "--help"])
    assert result.exit_code == 0 and "browser" in result.output


def test_dataset_o_and_f_write_where_impsy_users_say(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    events = np.column_stack([rng.uniform(0.01, 0.1, 60), rng.uniform(0, 1, (60, 3))])
    write_events(tmp_path / "logs", events.astype(np.float32))
    result = CliRunner().invoke(cli, ["dataset", "-D", "4", "-O", "elsewhere", "-F", "mine.npz"])
    assert result.exit_code == 0, result.output
    assert len(datasets.load(tmp_path / "elsewhere" / "mine.npz").events) == 59


# -- files other programs and users read ----------------------------------------------


def test_models_and_datasets_are_written_readable_by_all_like_logs(tmp_path):
    before = os.umask(0o077)  # a strict umask must not make them private
    try:
        model = save_model(tmp_path / "m.safetensors", 3, "xxs")
        events = np.full((4, 3), 0.5, np.float32)
        data = datasets.Dataset.from_performances([events])
        saved = [datasets.save(tmp_path / f"{f}.npz", data, f) for f in ("antiphon", "impsy")]
        log = write_events(tmp_path / "logs", events)
    finally:
        os.umask(before)
    for path in (model, *saved, log):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_callresponse_answers_from_the_start_until_the_performer_plays(tmp_path):
    """The engine in callresponse with nobody playing: answers come threshold after
    the start, from a neutral first event, and stop as soon as the performer plays."""
    path = tmp_path / "config.toml"
    model = tmp_path / "m.safetensors"
    save_model(model, 4, "xxs")
    path.write_text(
        f'[interaction]\nmode = "callresponse"\nthreshold = 0.2\n'
        f'[model]\ndimension = 4\nfile = "{model}"\ntimescale = 0.05\n' + local_ports()
    )
    engine = Instrument(prepare(path))
    fed: list[list[float]] = []

    async def scenario():
        generate = engine.model.generate
        engine.model.generate = lambda event: fed.append(list(event)) or generate(event)
        with engine.subscribe() as events:
            await engine.start()
            started = engine.now()
            outputs = []
            async for event in events:
                if event.kind == "output":
                    outputs.append(event.time)
                    if len(outputs) == 3:
                        break
            engine.on_input("test", [0.1, 0.2, 0.3])
            heard = None
            async for event in events:  # told by the engine's clock, however busy the machine
                if event.kind == "input":
                    heard = event.time
                elif event.kind == "output" and heard is not None:
                    silence = event.detail["played"] - heard
                    break
        await engine.stop()
        return started, outputs, silence

    loop = new_event_loop()
    try:
        started, outputs, silence = loop.run_until_complete(asyncio.wait_for(scenario(), 30))
    finally:
        loop.close()
    assert fed[0] == [0.0, 0.5, 0.5, 0.5]  # a neutral first event
    assert outputs[0] - started >= 0.2 - 0.005  # answered after the threshold
    assert silence >= 0.2 - 0.001  # once the performer played, the model listened first
