"""Every IMPSY example config starts a working engine, including those IMPSY crashes on."""

from __future__ import annotations

import socket

import pytest
from peers import OSCPeer, free_port, play, until

from antiphon.engine.instrument import Instrument
from antiphon.engine.setup import prepare
from antiphon.model import loader
from workspaces import model_in


def _free_ports(setup, tmp_path) -> None:
    """Point every listening port at a free one and every device at a missing file."""
    config = setup.config
    if config.osc:
        config.osc.server_ip, config.osc.server_port = "127.0.0.1", free_port()
        config.osc.client_port = free_port()
    if config.websocket:
        config.websocket.server_ip = "127.0.0.1"
        config.websocket.server_port = free_port(socket.SOCK_STREAM)
    for section in ("serial", "serialmidi"):
        if getattr(config, section):
            getattr(config, section).port = str(tmp_path / f"no-{section}")
    config.webui.monitor_port, config.webui.command_port = free_port(), free_port()
    setup.log_dir = tmp_path / "logs"


async def _start_and_play(setup) -> tuple[Instrument, list[str]]:
    """The engine after playing, and what it played in place of what was asked."""
    engine = Instrument(setup)
    await engine.start()
    try:
        if setup.config.osc:
            performer = await OSCPeer.listen()
            performer.send(
                setup.config.osc.server_port, "/interface", *[0.5] * (engine.dimension - 1)
            )
            await until(lambda: engine.inputs == 1)
        if setup.predictor is not None and engine.mode == "callresponse":
            played = engine.outputs
            await until(lambda: engine.outputs > played)  # it answered, after the threshold
        status = engine.status()
        assert status["mode"] in ("callresponse", "useronly")
    finally:
        await engine.stop()
    return engine, [s["message"] for s in status["substitutions"]]


@pytest.fixture
def bundled(tmp_path, monkeypatch):
    """Bundled default models for dimensions 4 and 9, as the data issue ships them."""
    folder = tmp_path / "bundled"
    folder.mkdir()
    for dimension in (4, 9):
        model_in(tmp_path, dimension).rename(folder / f"default-dim{dimension}.safetensors")
    monkeypatch.setattr(loader, "BUNDLED", folder)


def test_every_impsy_config_starts_and_plays(impsy_dir, tmp_path, bundled):
    paths = sorted((impsy_dir / "configs").glob("*.toml"))
    assert len(paths) >= 16
    warnings, errors, models = {}, {}, {}
    for path in paths:
        setup = prepare(path)
        _free_ports(setup, tmp_path)
        engine, substituted = play(_start_and_play(setup))
        warnings[path.name] = " | ".join(m for _, m in engine.warnings.recent)
        errors[path.name] = " | ".join(substituted)
        models[path.name] = setup.model_name
        if setup.config.model.dimension in (4, 9):
            assert setup.predictor is not None, path.name  # fell back to the bundled model
            assert setup.model_name.endswith("(bundled)")
            assert "instead of the configured model" in errors[path.name], path.name
    # the configured IMPSY model files are not here: an error, then the bundled model
    assert "configured model cannot be played" in errors["default.toml"]
    assert "no such model file" in errors["default.toml"]
    assert "bundled default model for dimension 9" in errors["microfreak.toml"]
    # values IMPSY crashes on get working defaults
    assert "client_ip = '0.0.0.0'" in warnings["roland-s-1.toml"]
    assert (
        "'192.168.0.81' is not an address of this machine"
        in warnings["arturia-minilab3-analogV.toml"]
    )
    assert "'name' is not used" in warnings["arturia-minilab3-analogV.toml"]
    assert "host.docker.internal" in warnings["pd-workshop-example.toml"]
    assert "[serial] alone (serial MIDI is switched off)" in errors["default.toml"]
    assert "retrying in the background" in warnings["serial-example.toml"]
    # MIDI hardware is absent (or there is no MIDI system at all): said, not fatal
    assert "midi:" in warnings["xtouch-to-volca-keys.toml"]
    # dimension 17 has no bundled model: performer-only, as that config asks
    assert "no bundled model for dimension 17" in models["user-only-example.toml"]
    assert errors["user-only-example.toml"] == ""


def test_a_flex_tflite_plays_its_own_weights(impsy_dir, tmp_path, bundled):
    tflite = impsy_dir / "models" / "musicMDRNN-dim4-layers2-units64-mixtures5-scale10.tflite"
    config = tmp_path / "config.toml"
    config.write_text(f'[model]\ndimension = 4\nfile = "{tflite}"\n')
    setup = prepare(config)
    assert setup.model_name == tflite.name
    assert not [w for w in setup.warnings if "model" in w], setup.warnings
    played, stored = setup.predictor.weights.tensors(), loader.read_model(tflite).weights.tensors()
    assert all((played[name] == stored[name]).all() for name in stored)
