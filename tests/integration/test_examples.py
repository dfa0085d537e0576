"""The example configs load, and the micro:bit program speaks the serial protocol."""

from __future__ import annotations

import ast
from pathlib import Path

from antiphon import config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_example_configs_load_without_warnings():
    for name in ("workshop.toml", "microbit.toml"):
        loaded = config.load(EXAMPLES / "configs" / name)
        assert loaded.warnings == [], name
        assert loaded.model.dimension == 4 and loaded.interaction.mode == "callresponse"
    workshop = config.load(EXAMPLES / "configs" / "workshop.toml")
    assert (workshop.osc.server_port, workshop.osc.client_port) == (6000, 6001)
    microbit = config.load(EXAMPLES / "configs" / "microbit.toml")
    assert microbit.serial.baudrate == 115200


def test_microbit_program_is_valid_python_sending_three_scaled_values():
    source = (EXAMPLES / "microbit.py").read_text()
    tree = ast.parse(source)  # MicroPython is Python: it must at least parse
    assert "uart.init(baudrate=115200)" in source
    assert '"{:.4f},{:.4f},{:.4f}\\n"' in source
    # its scaling maps the accelerometer's +-1 g onto 0..1, clamped
    scaled = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "scaled")
    namespace = {"ONE_G": 1024}
    exec(compile(ast.Module([scaled], []), "microbit.py", "exec"), namespace)
    assert [namespace["scaled"](v) for v in (-2048, -1024, 0, 1024, 2047)] == [0, 0, 0.5, 1, 1]
