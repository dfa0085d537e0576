"""The setup form: a musician's answers change ``config.toml``.

The form starts from the config as it is and changes only what it asks about (mode,
dimension, channels and their mappings): the model file, temperatures, [webui] ports
and password, and every comment stay as they were. It is plain HTML (it works without
JavaScript): changing the dimension or the number of MIDI ports re-renders it with the
right number of mapping rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import tomlkit
from starlette.datastructures import FormData

from antiphon import limits
from antiphon.config import Config, MidiMapping
from antiphon.limits import MODES

KINDS = ("control_change", "note_on")


@dataclass
class MappingRow:
    kind: str = "control_change"
    channel: int = 1
    control: int = 0
    low: int = 0
    high: int = 127

    @classmethod
    def of(cls, mapping: MidiMapping) -> MappingRow:
        return cls(mapping.kind, mapping.channel, mapping.control or 0, mapping.low, mapping.high)

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

        def port(key: str, default: int) -> int:
            return int(number(key, default, *limits.PORT[:2]))

        setup = cls(
            title=text("title", cls.title) or cls.title,
            mode=text("mode", cls.mode) if text("mode", cls.mode) in MODES else cls.mode,
            dimension=int(number("dimension", cls.dimension, *limits.DIMENSION[:2])),
            threshold=number("threshold", cls.threshold, *limits.THRESHOLD[:2]),
            input_thru=form.get("input_thru") == "on",
            osc=form.get("osc") == "on",
            osc_server_port=port("osc_server_port", cls.osc_server_port),
            osc_client_ip=text("osc_client_ip", cls.osc_client_ip) or cls.osc_client_ip,
            osc_client_port=port("osc_client_port", cls.osc_client_port),
            websocket=form.get("websocket") == "on",
            websocket_port=port("websocket_port", cls.websocket_port),
            serial=form.get("serial") == "on",
            serial_port=text("serial_port", cls.serial_port) or cls.serial_port,
            serial_baudrate=int(number("serial_baudrate", cls.serial_baudrate, *limits.BAUD[:2])),
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
    def from_config(cls, config: Config) -> SetupForm:
        """The form as the config has it now."""
        setup = cls(
            title=config.title or cls.title,
            mode=config.interaction.mode,
            dimension=config.model.dimension,
            threshold=config.interaction.threshold,
            input_thru=config.interaction.input_thru,
            osc=config.osc is not None,
            websocket=config.websocket is not None,
            serial=config.serial is not None,
            midi=config.midi is not None,
        )
        if config.osc:
            setup.osc_server_port = config.osc.server_port
            setup.osc_client_ip = config.osc.client_ip
            setup.osc_client_port = config.osc.client_port
        if config.websocket:
            setup.websocket_port = config.websocket.server_port
        if config.serial:
            setup.serial_port = config.serial.port
            setup.serial_baudrate = config.serial.baudrate
        midi = config.midi
        setup.midi_inputs = [
            Port(name, [MappingRow.of(m) for m in midi.input.get(name, [])])
            for name in (midi.in_device if midi else [])
        ] or [setup.default_port()]
        setup.midi_outputs = [
            Port(name, [MappingRow.of(m) for m in midi.output.get(name, [])])
            for name in (midi.out_device if midi else [])
        ] or [setup.default_port()]
        return setup

    def default_port(self) -> Port:
        return Port(rows=[MappingRow(control=k + 1) for k in range(self.controls)])

    def to_toml(self, current: str) -> str:
        """``current`` (a config's text) with the form's answers in it; everything the
        form does not ask about, comments included, stays as it was."""
        doc = tomlkit.parse(current)
        doc["title"] = self.title
        interaction = _table(doc, "interaction")
        interaction["mode"] = self.mode
        interaction["threshold"] = self.threshold
        interaction["input_thru"] = self.input_thru
        _table(doc, "model")["dimension"] = self.dimension
        if self.osc:
            osc = _table(doc, "osc")
            osc["server_port"] = self.osc_server_port
            osc["client_ip"] = self.osc_client_ip
            osc["client_port"] = self.osc_client_port
        if self.midi:
            midi = _table(doc, "midi")
            inputs = [p for p in self.midi_inputs if p.name]
            outputs = [p for p in self.midi_outputs if p.name]
            midi["in_device"] = [p.name for p in inputs]
            midi["out_device"] = [p.name for p in outputs]
            for key, ports in (("input", inputs), ("output", outputs)):
                table = tomlkit.table(is_super_table=True)
                for port in ports:
                    table[port.name] = _mapping_array(port.rows)
                midi[key] = table
        if self.websocket:
            ws = _table(doc, "websocket")
            ws["server_port"] = self.websocket_port
            rows = [MappingRow(control=k + 1) for k in range(self.controls)]
            for key in ("input", "output"):
                if len(ws.get(key, [])) != self.controls:  # keep a mapping that still fits
                    ws[key] = _mapping_array(rows)
        if self.serial:
            serial = _table(doc, "serial")
            serial["port"] = self.serial_port
            serial["baudrate"] = self.serial_baudrate
        for section, on in (
            ("osc", self.osc),
            ("midi", self.midi),
            ("websocket", self.websocket),
            ("serial", self.serial),
        ):
            if not on and section in doc:
                del doc[section]
        return tomlkit.dumps(doc)


def _table(doc: tomlkit.TOMLDocument, name: str) -> tomlkit.items.Table:
    """The section ``name``, added (at the end) when the config has none."""
    if name not in doc:
        doc[name] = tomlkit.table()
    return doc[name]  # type: ignore[return-value]


def _mapping_array(rows: list[MappingRow]) -> tomlkit.items.Array:
    array = tomlkit.array()
    for row in rows:
        array.append(row.mapping().to_toml())
    array.multiline(True)
    return array
