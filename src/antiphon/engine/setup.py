"""Everything decided before the music starts: config, overrides, model, channels.

``prepare`` does all the file work (config, model) and every check, and can run in a
thread, so a reload never blocks the playing loop. Starting is forgiving where IMPSY
crashes (a configured model that is missing falls back to the bundled one); a reload
is strict (a bad new setup is refused and the old one plays on). Whatever is played
in place of what was asked is a ``Substitution``, shown as an error wherever the
instrument is watched: never a quiet fallback.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from antiphon import config as config_module
from antiphon.config import Config, ConfigError
from antiphon.errors import AntiphonError, Substitution
from antiphon.io import registry
from antiphon.limits import MODES
from antiphon.workspace import config_template, root_for

if TYPE_CHECKING:
    from antiphon.io.channel import Channel
    from antiphon.model.mdrnn import Predictor


@dataclass(frozen=True)
class Overrides:
    """Command-line values that win over config.toml (and still do after a reload)."""

    mode: str | None = None
    threshold: float | None = None
    input_thru: bool | None = None
    sigmatemp: float | None = None
    pitemp: float | None = None
    timescale: float | None = None
    verbose: bool | None = None
    log_input: bool | None = None
    log_predictions: bool | None = None
    logdir: Path | None = None
    dimension: int | None = None
    seed: int | None = None

    def apply(self, config: Config) -> None:
        for key, section in (
            ("mode", config.interaction),
            ("threshold", config.interaction),
            ("input_thru", config.interaction),
            ("sigmatemp", config.model),
            ("pitemp", config.model),
            ("timescale", config.model),
            ("verbose", config),
            ("log_input", config),
            ("log_predictions", config),
        ):
            value = getattr(self, key)
            if value is not None:
                setattr(section, key, value)
        if config.interaction.mode not in MODES:
            raise ConfigError(f"--mode {config.interaction.mode!r}: use one of {', '.join(MODES)}")


@dataclass
class Setup:
    """A checked configuration with its model, ready to play."""

    config: Config
    config_path: Path | None
    overrides: Overrides
    explicit_model: Path | None  # MODEL_FILE from the command line
    predictor: Predictor | None
    model_name: str
    model_path: Path | None
    log_dir: Path
    root: Path = field(default_factory=Path.cwd)  # the workspace (``workspace.root_for``)
    warnings: list[str] = field(default_factory=list)
    problem: str | None = None  # why nothing plays (see ``not_playing``)
    substitutions: list[Substitution] = field(default_factory=list)  # played, not asked


def prepare(
    config_path: Path | None,
    overrides: Overrides = Overrides(),
    explicit_model: Path | None = None,
    *,
    strict: bool = False,
    text: str | None = None,
) -> Setup:
    """Read and check everything; raises AntiphonError with one clear message.

    ``text`` checks a config that is not saved yet as if it were at ``config_path``
    (relative paths resolve from its folder): what the web UI does before it saves.
    """
    if text is not None:
        config = config_module.parse(text, config_path, dimension=overrides.dimension)
    elif config_path is None:
        config = config_module.parse(config_template(), dimension=overrides.dimension)
        config.warnings.append(
            "no config.toml here: using the defaults of a new workspace (OSC in on port "
            "6000, out to 127.0.0.1:6001); `antiphon init` writes one you can edit"
        )
    else:
        config = config_module.load(config_path, dimension=overrides.dimension)
    overrides.apply(config)
    warnings = list(config.warnings)
    substitutions: list[Substitution] = []
    where = config_path or "config.toml"
    if config.serial and config.serialmidi and config.serial.port == config.serialmidi.port:
        substitutions.append(
            Substitution(
                f"[serialmidi] on {config.serialmidi.port}",
                "[serial] alone (serial MIDI is switched off)",
                f"[serial] and [serialmidi] both use {config.serial.port}, and one port "
                "cannot carry text and MIDI at once",
                f"give [serialmidi] its own port in {where}, or remove one of the sections",
            )
        )
        config.serialmidi = None
    predictor, path, name = _choose_model(config, explicit_model, overrides, strict, substitutions)
    if predictor is None:
        config.interaction.mode = "useronly"  # said in ``substitutions`` unless asked for
    root, note = root_for(config_path)
    warnings += [note] if note else []
    if path is not None and config.model.file and not Path(config.model.file).is_absolute():
        beside = config.directory / Path(config.model.file).expanduser()
        if path == config.model_path and not beside.exists():
            warnings.append(
                f"[model].file {config.model.file!r} is not beside {where} but is in the "
                f"working directory: playing {path.resolve()} (as IMPSY does)"
            )
    log_dir = overrides.logdir or root / "logs"
    return Setup(
        config=config,
        config_path=config_path,
        overrides=overrides,
        explicit_model=explicit_model,
        predictor=predictor,
        model_name=name,
        model_path=path,
        log_dir=log_dir,
        root=root,
        warnings=warnings,
        substitutions=substitutions,
    )


def not_playing(
    problem: str,
    config_path: Path | None,
    overrides: Overrides = Overrides(),
    explicit_model: Path | None = None,
) -> Setup:
    """A setup that plays nothing and says why: what ``antiphon run`` runs when its
    config or model cannot be played, so that the web UI stays up to fix them.

    No channel is opened (a broken config's ports mean nothing) and nothing is logged;
    a successful reload replaces it with the real thing. The web UI keeps the broken
    config's [webui] settings where they can be read (its password above all), else
    the defaults, which listen on this computer only.
    """
    config = config_module.Config(webui=config_module.salvage_webui(config_path))
    config.interaction.mode = "useronly"
    config.log_input = config.log_predictions = False

    config.path = config_path
    directory, _ = root_for(config_path)
    return Setup(
        config=config,
        config_path=config_path,
        overrides=overrides,
        explicit_model=explicit_model,
        predictor=None,
        model_name="none (not playing)",
        model_path=None,
        log_dir=overrides.logdir or directory / "logs",
        root=directory,
        problem=problem,
    )


def _choose_model(
    config: Config,
    explicit: Path | None,
    overrides: Overrides,
    strict: bool,
    substitutions: list[Substitution],
) -> tuple[Predictor | None, Path | None, str]:
    from antiphon.model import loader

    dimension = config.model.dimension
    if explicit is not None:
        return _open(explicit, config, overrides), explicit, explicit.name
    configured = config.model_path
    problem = None
    if configured is not None:
        try:
            return _open(configured, config, overrides), configured, configured.name
        except ConfigError:
            raise  # a dimension mismatch is a mistake to fix, not something to play around
        except AntiphonError as exc:
            if strict:
                raise
            problem = str(exc)
    bundled = loader.bundled_model(dimension)
    where = config.path or "config.toml"
    if bundled is None:
        mode = config.interaction.mode
        if mode != "useronly":
            reason = (
                f"antiphon has no bundled model for dimension {dimension} (it ships one for "
                f"{', '.join(map(str, loader.bundled_dimensions())) or 'no dimension yet'})"
            )
            substitutions.append(
                Substitution(
                    f"mode {mode}",
                    "useronly mode (your input is logged and passed through; nothing answers)",
                    f"the configured model cannot be played ({problem}) and {reason}"
                    if problem
                    else f"no model file is given and {reason}",
                    f"give a model file under [model] in {where} or on the command line, "
                    "or train one from your logs",
                )
            )
        return None, None, f"none (no bundled model for dimension {dimension})"
    if configured is not None:
        substitutions.append(
            Substitution(
                f"the configured model {config.model.file}",
                f"the bundled default model for dimension {dimension} ({bundled.name})",
                f"the configured model cannot be played: {problem}",
                f"put the model at {_shown_places(config.model.file, config.directory)}, "
                f"or correct [model].file in {where} (remove the line to play the bundled "
                "model on purpose)",
            )
        )
    return _open(bundled, config, overrides), bundled, f"{bundled.name} (bundled)"


def _shown_places(file: str, directory: Path) -> str:
    """Where a relative model file is looked for (``config.locate``), for a message."""
    path = Path(file).expanduser()
    if path.is_absolute():
        return str(path)
    beside, here = directory / path, Path.cwd() / path
    if beside.resolve() == here.resolve():
        return str(beside)
    return f"{beside} (beside the config) or {here} (the working directory)"


def _open(path: Path, config: Config, overrides: Overrides) -> Predictor:
    from antiphon.model import loader

    predictor = loader.open_model(
        path,
        sigmatemp=config.model.sigmatemp,
        pitemp=config.model.pitemp,
        seed=overrides.seed,
    )
    found = predictor.architecture.dimension
    if found != config.model.dimension:
        where = config.path or "the config"
        raise ConfigError(
            f"{path} is a dimension-{found} model but {where} sets model.dimension = "
            f"{config.model.dimension}; set model.dimension = {found} (and one mapping per "
            f"control) or use a dimension-{config.model.dimension} model"
        )
    return predictor


def channel_settings(name: str, config: Config) -> Any:
    """What the channel ``name`` is made from (None when it is not configured): when it
    changes, a reload reopens the channel."""
    table = getattr(config, registry.section(name), None)
    port = registry.LOCAL_PORTS.get(name)
    return table if port is None else getattr(table, port)


def build_channels(config: Config) -> dict[str, Channel]:
    """Every channel ``config`` switches on, by name."""
    built = {name: build_channel(name, config) for name in registry.NAMES}
    return {name: channel for name, channel in built.items() if channel is not None}


def build_channel(name: str, config: Config) -> Channel | None:
    """The channel called ``name``, or None if the config does not switch it on. Each
    channel's module is imported only when it is used."""
    table = getattr(config, registry.section(name), None)
    if table is None:
        return None
    return registry.build(name, dataclasses.replace(table))  # later edits stay unseen
