"""The setup form: a musician's answers become a runnable, commented ``config.toml``.

The form is plain HTML (it works without JavaScript): changing the dimension or the
number of MIDI ports re-renders it with the right number of mapping rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import tomlkit
from starlette.datastructures import FormData

from antiphon.config import MODES, MidiMapping, WebUIConfig

KINDS = ("control_change", "note_on")


@dataclass
class MappingRow:
    kind: str = "control_change"
    channel: int = 1
    control: int = 0
    low: int = 0
    high: int = 127

    def mapping(self) -> MidiMapping:
        if self.kind == "note_on":
            return MidiMapping("note_on", self.channel)
        return MidiMapping("control_change", self.channel, self.control, self.low, self.high)


@dataclass
class Port:
    name: str = ""
    rows: list[MappingRow] = field(default_factory=list)


@dataclass
class SetupForm:
    title: str = "My instrument"
    mode: str = "callresponse"
    dimension: int = 9
    threshold: float = 0.1
    input_thru: bool = False
    osc: bool = True
    osc_server_port: int = 6000
    osc_client_ip: str = "127.0.0.1"
    osc_client_port: int = 6001
    websocket: bool = False
    websocket_port: int = 5001
    serial: bool = False
    serial_port: str = "/dev/ttyACM0"
    serial_baudrate: int = 115200
    midi: bool = False
    midi_inputs: list[Port] = field(default_factory=list)
    midi_outputs: list[Port] = field(default_factory=list)

    @property
    def controls(self) -> int:
        return self.dimension - 1

    @classmethod
    def from_form(cls, form: FormData) -> SetupForm:
        def text(key: str, default: str) -> str:
            return str(form.get(key, default)).strip()

        def number(key: str, default: float, low: float, high: float) -> float:
            try:
                value = float(str(form.get(key, default)))
            except ValueError:
                return default
            return min(max(value, low), high)

        setup = cls(
            title=text("title", cls.title) or cls.title,
            mode=text("mode", cls.mode) if text("mode", cls.mode) in MODES else cls.mode,
            dimension=int(number("dimension", cls.dimension, 2, 64)),
            threshold=number("threshold", cls.threshold, 0, 60),
            input_thru=form.get("input_thru") == "on",
            osc=form.get("osc") == "on",
            osc_server_port=int(number("osc_server_port", 6000, 1, 65535)),
            osc_client_ip=text("osc_client_ip", "127.0.0.1") or "127.0.0.1",
            osc_client_port=int(number("osc_client_port", 6001, 1, 65535)),
            websocket=form.get("websocket") == "on",
            websocket_port=int(number("websocket_port", 5001, 1, 65535)),
            serial=form.get("serial") == "on",
            serial_port=text("serial_port", "/dev/ttyACM0") or "/dev/ttyACM0",
            serial_baudrate=int(number("serial_baudrate", 115200, 1, 4_000_000)),
            midi=form.get("midi") == "on",
        )
        for direction in ("in", "out"):
            count = int(number(f"midi_{direction}_count", 1, 0, 8))
            ports = [setup._port(form, direction, i, number) for i in range(count)]
            if direction == "in":
                setup.midi_inputs = ports
            else:
                setup.midi_outputs = ports
        return setup

    def _port(self, form: FormData, direction: str, index: int, number) -> Port:
        prefix = f"midi_{direction}_{index}"
        port = Port(name=str(form.get(f"{prefix}_name", "")).strip())
        for k in range(self.controls):
            key = f"{prefix}_{k}"
            kind = str(form.get(f"{key}_kind", "control_change"))
            port.rows.append(
                MappingRow(
                    kind=kind if kind in KINDS else "control_change",
                    channel=int(number(f"{key}_channel", 1, 1, 16)),
                    control=int(number(f"{key}_control", k + 1, 0, 127)),
                    low=int(number(f"{key}_low", 0, 0, 127)),
                    high=int(number(f"{key}_high", 127, 0, 127)),
                )
            )
        return port

    @classmethod
    def blank(cls) -> SetupForm:
        setup = cls()
        setup.midi_inputs = [setup.default_port()]
        setup.midi_outputs = [setup.default_port()]
        return setup

    def default_port(self) -> Port:
        return Port(rows=[MappingRow(control=k + 1) for k in range(self.controls)])

    def to_toml(self, webui: WebUIConfig) -> str:
        """The config text; ``webui`` is kept as it is so the browser stays connected."""
        doc = tomlkit.document()
        doc.add(tomlkit.comment("antiphon configuration, made with the web UI's setup form."))
        doc.add(tomlkit.comment("Every key is explained in `antiphon init`'s template."))
        doc.add(tomlkit.nl())
        doc["title"] = self.title
        doc["verbose"] = False
        doc["log_input"] = True
        doc["log_predictions"] = False
        interaction = tomlkit.table()
        interaction["mode"] = self.mode
        interaction["threshold"] = self.threshold
        interaction["input_thru"] = self.input_thru
        doc["interaction"] = interaction
        model = tomlkit.table()
        model["dimension"] = self.dimension
        model["size"] = "s"
        model["sigmatemp"] = 0.01
        model["pitemp"] = 1.0
        model["timescale"] = 1.0
        model.add(tomlkit.comment('file = "models/...": omit to play the bundled default model'))
        doc["model"] = model
        if self.osc:
            osc = tomlkit.table()
            osc["server_ip"] = "0.0.0.0"
            osc["server_port"] = self.osc_server_port
            osc["client_ip"] = self.osc_client_ip
            osc["client_port"] = self.osc_client_port
            doc["osc"] = osc
        if self.midi:
            midi = tomlkit.table()
            inputs = [p for p in self.midi_inputs if p.name]
            outputs = [p for p in self.midi_outputs if p.name]
            midi["in_device"] = [p.name for p in inputs]
            midi["out_device"] = [p.name for p in outputs]
            for key, ports in (("input", inputs), ("output", outputs)):
                if ports:
                    table = tomlkit.table(is_super_table=True)
                    for port in ports:
                        table[port.name] = _mapping_array(port.rows)
                    midi[key] = table
            doc["midi"] = midi
        if self.websocket:
            ws = tomlkit.table()
            ws["server_ip"] = "0.0.0.0"
            ws["server_port"] = self.websocket_port
            rows = [MappingRow(control=k + 1) for k in range(self.controls)]
            ws["input"] = _mapping_array(rows)
            ws["output"] = _mapping_array(rows)
            doc["websocket"] = ws
        if self.serial:
            serial = tomlkit.table()
            serial["port"] = self.serial_port
            serial["baudrate"] = self.serial_baudrate
            doc["serial"] = serial
        table = tomlkit.table()
        table["host"] = webui.host
        table["port"] = webui.port
        if webui.password:
            table["password"] = webui.password
        doc["webui"] = table
        return tomlkit.dumps(doc)


def _mapping_array(rows: list[MappingRow]) -> tomlkit.items.Array:
    array = tomlkit.array()
    for row in rows:
        array.append(row.mapping().to_toml())
    array.multiline(True)
    return array
