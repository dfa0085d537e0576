"""The schema of ``config.toml``: every IMPSY key, a default for each, clear errors.

IMPSY configs load as they are. A section's presence switches its channel on
(``[osc]``, ``[midi]``, ``[websocket]``, ``[serial]``, ``[serialmidi]``). Unknown keys
and values IMPSY tolerated but cannot work are reported as warnings; a value that
cannot be used stops loading with one message naming the file, the key, the value
and what is allowed.

The schema is plain dataclasses checked by a small loader below rather than a
validation framework: it must load in milliseconds on a Raspberry Pi Zero, where
``antiphon run`` has to be playing within a second of boot.
"""

from __future__ import annotations

import dataclasses
import errno
import math
import re
import socket
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from antiphon.errors import AntiphonError
from antiphon.limits import (
    BAUD,
    DEFAULT_SIGMATEMP,
    DIMENSION,
    FEEDBACK_THRESHOLD,
    PITEMP,
    PORT,
    SIGMATEMP,
    SIZES,
    THRESHOLD,
    TIMESCALE,
    Mode,
)


class ConfigError(AntiphonError):
    """A config that cannot be used; the message says where and what is allowed."""


MappingKind = Literal["note_on", "control_change", "note_velocity", "pitch_bend"]
MAPPING_FORMS = (
    '["note_on", channel] (or ["note_on", channel, velocity]), '
    '["control_change", channel, cc] (or ["control_change", channel, cc, min, max]), '
    '["note_velocity", channel] or ["pitch_bend", channel]'
)


@dataclass(frozen=True)
class MidiMapping:
    """Where one control lives on a MIDI-like channel (MIDI, WebSocket, serial MIDI).

    Written in TOML as IMPSY 1.2 writes it; channels are 1-based:

    - ``["note_on", channel]``: the note number; ``["note_on", channel, velocity]``
      plays its notes at that fixed velocity;
    - ``["control_change", channel, cc]``, or ``[..., min, max]`` to use only part of
      the controller's range;
    - ``["note_velocity", channel]``: the velocity of that channel's notes;
    - ``["pitch_bend", channel]``: the channel's 14-bit pitch bend.
    """

    kind: MappingKind
    channel: int
    control: int | None = None
    low: int = 0
    high: int = 127
    velocity: int | None = None  # note_on only: a fixed velocity for the notes it plays

    @classmethod
    def parse(cls, value: Any) -> MidiMapping:
        """From the TOML list form; raises ValueError with what is wrong."""
        kinds = get_args(MappingKind)
        if not isinstance(value, list) or not value or value[0] not in kinds:
            raise ValueError(f"expected {MAPPING_FORMS}")
        kind, *numbers = value
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
            raise ValueError("channel, controller, velocity and range must be whole numbers")
        match kind, numbers:
            case "note_on", [channel]:
                mapping = cls("note_on", channel)
            case "note_on", [channel, velocity]:
                mapping = cls("note_on", channel, velocity=velocity)
            case "control_change", [channel, control]:
                mapping = cls("control_change", channel, control)
            case "control_change", [channel, control, low, high]:
                mapping = cls("control_change", channel, control, low, high)
            case "note_velocity" | "pitch_bend", [channel]:
                mapping = cls(kind, channel)
            case _:
                raise ValueError(
                    f"{kind} does not take {len(numbers)} numbers; expected {MAPPING_FORMS}"
                )
        if not 1 <= mapping.channel <= 16:
            raise ValueError(f"channel {mapping.channel} is outside 1-16")
        if mapping.control is not None and not 0 <= mapping.control <= 127:
            raise ValueError(f"controller {mapping.control} is outside 0-127")
        if not (0 <= mapping.low <= 127 and 0 <= mapping.high <= 127):
            raise ValueError(f"range {mapping.low}-{mapping.high} is outside 0-127")
        if mapping.velocity is not None and not 0 <= mapping.velocity <= 127:
            raise ValueError(f"velocity {mapping.velocity} is outside 0-127")
        return mapping

    def to_toml(self) -> list[str | int]:
        if self.kind == "note_on":
            fixed = [] if self.velocity is None else [self.velocity]
            return ["note_on", self.channel, *fixed]
        if self.kind != "control_change":
            return [self.kind, self.channel]
        control = typing.cast(int, self.control)
        if (self.low, self.high) == (0, 127):
            return ["control_change", self.channel, control]
        return ["control_change", self.channel, control, self.low, self.high]


@dataclass
class InteractionConfig:
    mode: Mode = "callresponse"
    threshold: float = field(default=0.1, metadata={"bounds": THRESHOLD})
    input_thru: bool = False
    # callresponse: the model plays from the start, as IMPSY's does; true makes it wait
    # until the performer has played once.
    wait_for_performer: bool = False


@dataclass
class ModelConfig:
    dimension: int = field(default=9, metadata={"bounds": DIMENSION})
    file: str | None = None
    size: str = field(default="s", metadata={"choices": tuple(SIZES)})
    sigmatemp: float = field(default=DEFAULT_SIGMATEMP, metadata={"bounds": SIGMATEMP})
    pitemp: float = field(default=1.0, metadata={"bounds": PITEMP})
    timescale: float = field(default=1.0, metadata={"bounds": TIMESCALE})


@dataclass
class OSCConfig:
    server_ip: str = "0.0.0.0"
    server_port: int = field(default=6000, metadata={"bounds": PORT})
    client_ip: str = "127.0.0.1"
    client_port: int = field(default=6001, metadata={"bounds": PORT})


@dataclass
class MIDIConfig:
    in_device: list[str] = field(default_factory=list)
    out_device: list[str] = field(default_factory=list)
    input: dict[str, list[MidiMapping]] = field(default_factory=dict)
    output: dict[str, list[MidiMapping]] = field(default_factory=dict)
    feedback_protection: bool = False
    feedback_threshold: float = field(default=0.02, metadata={"bounds": FEEDBACK_THRESHOLD})
    thru_matrix: dict[str, list[str]] = field(default_factory=dict)
    # thru_matrix translates through the mappings (IMPSY's way); true forwards every
    # message from the input port as it came, mapped or not.
    thru_raw: bool = False


@dataclass
class WebSocketConfig:
    server_ip: str = "0.0.0.0"
    server_port: int = field(default=5001, metadata={"bounds": PORT})
    input: list[MidiMapping] | None = None
    output: list[MidiMapping] | None = None
    # Web pages (by origin, e.g. "http://my-site.example") allowed to connect besides
    # this machine's own; programs that send no Origin (Pd, the IMPSY app) always may.
    allowed_origins: list[str] = field(default_factory=list)


@dataclass
class SerialConfig:
    port: str = "/dev/ttyACM0"
    baudrate: int = field(default=115200, metadata={"bounds": BAUD})


@dataclass
class SerialMIDIConfig:
    port: str = "/dev/ttyAMA0"
    baudrate: int = field(default=31250, metadata={"bounds": BAUD})
    input: list[MidiMapping] | None = None
    output: list[MidiMapping] | None = None


def browser_host(host: str) -> str:
    """How a browser on this computer names a web UI listening on ``host``."""
    return "localhost" if host in ("0.0.0.0", "::", "127.0.0.1") else host


@dataclass
class WebUIConfig:
    host: str = "127.0.0.1"
    port: int = field(default=4000, metadata={"bounds": PORT})
    password: str | None = None
    monitor_port: int = field(default=4001, metadata={"bounds": PORT})
    command_port: int = field(default=4002, metadata={"bounds": PORT})
    # Names the web UI answers to besides this machine's own (a DNS name of the
    # instrument); requests for any other Host are refused (DNS rebinding).
    allowed_hosts: list[str] = field(default_factory=list)


@dataclass
class Config:
    title: str = ""
    owner: str = ""
    description: str = ""
    verbose: bool = False
    log_input: bool = True
    log_predictions: bool = False
    interaction: InteractionConfig = field(default_factory=InteractionConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    osc: OSCConfig | None = None
    midi: MIDIConfig | None = None
    websocket: WebSocketConfig | None = None
    serial: SerialConfig | None = None
    serialmidi: SerialMIDIConfig | None = None
    webui: WebUIConfig = field(default_factory=WebUIConfig)
    # Not read from the file: where it came from and what was wrong but tolerated.
    path: Path | None = field(default=None, metadata={"internal": True})
    warnings: list[str] = field(default_factory=list, metadata={"internal": True})

    @property
    def directory(self) -> Path:
        """Relative paths in the config (the model file) are relative to this first
        (see ``locate``)."""
        return self.path.parent if self.path else Path.cwd()

    @property
    def model_path(self) -> Path | None:
        if not self.model.file:
            return None
        return locate(self.directory, self.model.file)


def locate(directory: Path, relative: str | Path) -> Path:
    """Where a path written in a config is: absolute as it is; else beside the config,
    or, when it is not there but is in the working directory, there.

    The second is IMPSY's rule (it opens every path from the working directory), so
    ``antiphon run -c configs/x.toml`` in an IMPSY folder finds ``models/...`` where
    IMPSY finds it; the first keeps a workspace working from any folder. When neither
    exists, the path beside the config is the one reported missing.
    """
    path = Path(relative).expanduser()
    if path.is_absolute():
        return path
    beside = directory / path
    if beside.exists():
        return beside
    here = Path.cwd() / path
    return here if here.exists() else beside


_IGNORED_TOP_LEVEL = {"name"}  # free text some IMPSY configs use in place of `owner`


def load(path: str | Path, *, dimension: int | None = None) -> Config:
    """Read and check a config file; raises ConfigError with one clear message.

    ``dimension`` replaces ``model.dimension`` before anything is checked against it
    (``antiphon run --dimension``).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such config file (create one with `antiphon init`)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc})") from None
    return parse(text, path, dimension=dimension)


def parse(text: str, path: Path | None = None, *, dimension: int | None = None) -> Config:
    """Check config text; ``path`` names the file in messages and anchors relative paths."""
    where = str(path) if path else "config"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    warnings: list[str] = []
    for key in _IGNORED_TOP_LEVEL & data.keys():
        warnings.append(f"{where}: key '{key}' is not used by antiphon (ignored)")
        del data[key]
    _merge_aliases(data, where, warnings)
    config = _build(Config, data, "", where, warnings)
    if dimension is not None:
        config.model.dimension = dimension
    config.path = path
    config.warnings = warnings
    check_mappings(config)
    _check_ports(config, where)
    _repair(config, where)
    return config


_SECTION_ALIASES = {"websockets": "websocket"}
"""Other names of a section: IMPSY's workshop text calls [websocket] [websockets]."""


def _merge_aliases(data: dict[str, Any], where: str, warnings: list[str]) -> None:
    """Read each alias as its section; both present are one section (a key set in
    both is refused, since one of the two values would be dropped)."""
    for alias, name in _SECTION_ALIASES.items():
        if alias not in data:
            continue
        table, existing = data.pop(alias), data.get(name, {})
        if not isinstance(table, dict) or not isinstance(existing, dict):
            raise ConfigError(f"{where}: [{alias}] and [{name}] must be tables (sections)")
        both = sorted(table.keys() & existing.keys())
        if both:
            raise ConfigError(
                f"{where}: [{alias}] and [{name}] are one section, and both set "
                f"{', '.join(both)}; keep one of each key"
            )
        data[name] = {**existing, **table}
        warnings.append(
            f"{where}: [{alias}] is read as [{name}] (IMPSY itself reads only [{name}])"
        )


def _check_ports(config: Config, where: str) -> None:
    """Raise ConfigError when two of antiphon's own listeners would need one port."""
    udp = {"webui.command_port": config.webui.command_port}
    tcp = {"webui.port": config.webui.port}
    if config.osc:
        udp["osc.server_port"] = config.osc.server_port
    if config.websocket:
        tcp["websocket.server_port"] = config.websocket.server_port
    for protocol, listeners in (("UDP", udp), ("TCP", tcp)):
        seen: dict[int, str] = {}
        for key, port in listeners.items():
            if port in seen:
                raise ConfigError(
                    f"{where}: {seen[port]} and {key} are both {port}, but two {protocol} "
                    "listeners cannot share a port; give one of them another port"
                )
            seen[port] = key


def salvage_webui(path: Path | None) -> WebUIConfig:
    """The [webui] section of a config that cannot be used as a whole, when that section
    itself is valid (a broken model line must not drop the web UI's password or move
    it to another address); the defaults otherwise."""
    if path is None:
        return WebUIConfig()
    try:
        text = path.read_text(encoding="utf-8")
        try:
            table = tomllib.loads(text).get("webui", {})
        except tomllib.TOMLDecodeError:  # broken elsewhere: the [webui] lines alone
            found = re.search(r"^\[webui\][ \t]*\n(.*?)(?=^[ \t]*\[|\Z)", text, re.M | re.S)
            table = tomllib.loads(found.group(1)) if found else {}
        webui = _build(WebUIConfig, table, "webui.", str(path), [])
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ConfigError):
        return WebUIConfig()
    return (
        webui
        if is_local_address(webui.host)
        else WebUIConfig(**{**vars(webui), "host": "127.0.0.1"})
    )


def check_mappings(config: Config) -> None:
    """Raise ConfigError unless every mapping list has one entry per control, so a
    mismatch stops antiphon at start rather than in the middle of a performance."""
    where = str(config.path) if config.path else "config"
    controls = config.model.dimension - 1
    lists: list[tuple[str, list[MidiMapping] | None]] = []
    if config.midi:
        lists += [(f"midi.input.{port!r}", m) for port, m in config.midi.input.items()]
        lists += [(f"midi.output.{port!r}", m) for port, m in config.midi.output.items()]
    for section in ("websocket", "serialmidi"):
        table = getattr(config, section)
        if table:
            lists += [(f"{section}.input", table.input), (f"{section}.output", table.output)]
    for key, mappings in lists:
        if mappings is not None and len(mappings) != controls:
            raise ConfigError(
                f"{where}: [{key}] has {len(mappings)} mappings but model.dimension = "
                f"{config.model.dimension} means {controls} controls; give exactly one "
                f"mapping per control (or change model.dimension)"
            )


# -- working defaults for what IMPSY crashes on ----------------------------------------


def _repair(config: Config, where: str) -> None:
    """Replace values IMPSY accepts but cannot work with by working ones, warning for each."""
    warn = config.warnings.append
    controls = config.model.dimension - 1
    if config.osc and config.osc.client_ip in ("0.0.0.0", "::", ""):
        warn(
            f"{where}: osc.client_ip = {config.osc.client_ip!r} is not an address to send "
            "to on every system; sending to 127.0.0.1 (this machine) instead"
        )
        config.osc.client_ip = "127.0.0.1"
    for section in ("osc", "websocket"):
        table = getattr(config, section)
        if table and not is_local_address(table.server_ip):
            warn(
                f"{where}: {section}.server_ip = {table.server_ip!r} is not an address of this "
                "machine; listening on every interface (0.0.0.0) instead"
            )
            table.server_ip = "0.0.0.0"
    if not is_local_address(config.webui.host):
        warn(
            f"{where}: webui.host = {config.webui.host!r} is not an address of this machine; "
            "using 127.0.0.1"
        )
        config.webui.host = "127.0.0.1"
    for section in ("websocket", "serialmidi"):
        table = getattr(config, section)
        for direction in ("input", "output"):
            if table and getattr(table, direction) is None:
                setattr(table, direction, _default_mappings(controls))
                warn(
                    f"{where}: [{section}] has no {direction} mapping; using control changes "
                    f"1-{controls} on MIDI channel 1"
                )
    if config.midi:
        for direction, devices in (
            ("input", config.midi.in_device),
            ("output", config.midi.out_device),
        ):
            mappings = getattr(config.midi, direction)
            for device in devices:
                if device not in mappings:
                    mappings[device] = _default_mappings(controls)
                    warn(
                        f"{where}: midi.{direction}.{device!r} is missing; using control "
                        f"changes 1-{controls} on MIDI channel 1 for that port"
                    )


def _default_mappings(controls: int) -> list[MidiMapping]:
    """What a MIDI-like section without a mapping uses: CC1, CC2, ... on channel 1."""
    return [MidiMapping("control_change", 1, (i % 127) + 1) for i in range(controls)]


def is_local_address(host: str) -> bool:
    """Whether this machine can listen on ``host`` (a name or an IP address)."""
    if host in ("", "0.0.0.0", "::", "localhost"):
        return True
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, 0))
    except OSError as exc:
        return exc.errno not in (errno.EADDRNOTAVAIL, None) and not isinstance(exc, socket.gaierror)
    return True


# -- the loader -----------------------------------------------------------------------


def _build(cls: type, table: Any, prefix: str, where: str, warnings: list[str]) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [{prefix.rstrip('.')}] must be a table (a section)")
    hints = typing.get_type_hints(cls)
    values = {}
    names = set()
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        names.add(f.name)
        if f.name in table:
            values[f.name] = _convert(
                table[f.name], hints[f.name], f, prefix + f.name, where, warnings
            )
    for key in table.keys() - names:
        warnings.append(f"{where}: unknown key '{prefix}{key}' (ignored)")
    return cls(**values)


def _convert(
    value: Any, hint: Any, f: dataclasses.Field, key: str, where: str, warnings: list[str]
) -> Any:
    origin, args = get_origin(hint), get_args(hint)

    def fail(allowed: str) -> typing.NoReturn:
        raise ConfigError(f"{where}: {key} = {value!r} is not allowed; {allowed}")

    if origin in (types.UnionType, typing.Union):  # X | None: None is "absent"
        inner = next(a for a in args if a is not type(None))
        return _convert(value, inner, f, key, where, warnings)
    if hint is MidiMapping:
        try:
            return MidiMapping.parse(value)
        except ValueError as exc:
            fail(str(exc))
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key + ".", where, warnings)
    if origin is Literal:
        if value not in args:
            fail(f"use one of {', '.join(repr(a) for a in args)}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            fail("use true or false")
        return value
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            fail(f"use a number{'' if hint is float else ' (a whole number)'}")
        if hint is int and not isinstance(value, int):
            fail("use a whole number")
        if not math.isfinite(value):
            fail("use a finite number")
        _check_range(value, f, fail)
        return hint(value)
    if hint is str:
        if not isinstance(value, str):
            fail("use a quoted string")
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            fail(f"use one of {', '.join(repr(c) for c in choices)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            fail("use a list [...]")
        return [
            _convert(v, args[0], f, f"{key}[{i}]", where, warnings) for i, v in enumerate(value)
        ]
    if origin is dict:
        if not isinstance(value, dict):
            fail('use a table, e.g. key."name" = ...')
        return {
            k: _convert(v, args[1], f, f"{key}.{k!r}", where, warnings) for k, v in value.items()
        }
    raise TypeError(f"config schema has an unsupported type {hint!r}")  # a bug, not user input


def _check_range(value: float, f: dataclasses.Field, fail: Any) -> None:
    allowed = f.metadata.get("bounds")
    problem = allowed.problem(value) if allowed else None
    if problem:
        fail(problem)
