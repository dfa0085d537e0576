"""Everything decided before the music starts: config, overrides, model, channels.

``prepare`` does all the file work (config, model) and every check, and can run in a
thread, so a reload never blocks the playing loop. Starting is forgiving where IMPSY
crashes (a configured model that is missing falls back to the bundled one, with a
warning); a reload is strict (a bad new setup is refused and the old one plays on).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from antiphon import config as config_module
from antiphon.config import MODES, Config, ConfigError
from antiphon.errors import AntiphonError
from antiphon.io import registry

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
    warnings: list[str] = field(default_factory=list)


def prepare(
    config_path: Path | None,
    overrides: Overrides = Overrides(),
    explicit_model: Path | None = None,
    *,
    strict: bool = False,
) -> Setup:
    """Read and check everything; raises AntiphonError with one clear message."""
    from antiphon.workspace import config_template

    if config_path is None:
        config = config_module.parse(config_template(), dimension=overrides.dimension)
        config.warnings.append(
            "no config.toml here: using the defaults of a new workspace (OSC in on port "
            "6000, out to 127.0.0.1:6001); `antiphon init` writes one you can edit"
        )
    else:
        config = config_module.load(config_path, dimension=overrides.dimension)
    overrides.apply(config)
    warnings = list(config.warnings)
    if config.serial and config.serialmidi and config.serial.port == config.serialmidi.port:
        warnings.append(
            f"[serial] and [serialmidi] both use {config.serial.port}, which cannot carry "
            "text and MIDI at once; [serialmidi] is switched off (give it its own port)"
        )
        config.serialmidi = None
    predictor, path, name = _choose_model(config, explicit_model, overrides, strict, warnings)
    if predictor is None and config.interaction.mode != "useronly":
        warnings.append(
            f"mode {config.interaction.mode} needs a model: playing in useronly mode "
            "(your input is logged and passed through)"
        )
        config.interaction.mode = "useronly"
    log_dir = overrides.logdir or config.directory / "logs"
    return Setup(
        config=config,
        config_path=config_path,
        overrides=overrides,
        explicit_model=explicit_model,
        predictor=predictor,
        model_name=name,
        model_path=path,
        log_dir=log_dir,
        warnings=warnings,
    )


def _choose_model(
    config: Config,
    explicit: Path | None,
    overrides: Overrides,
    strict: bool,
    warnings: list[str],
) -> tuple[Predictor | None, Path | None, str]:
    from antiphon.model import loader

    dimension = config.model.dimension
    if explicit is not None:
        return _open(explicit, config, overrides), explicit, explicit.name
    configured = config.model_path
    if configured is not None:
        try:
            return _open(configured, config, overrides), configured, configured.name
        except ConfigError:
            raise  # a dimension mismatch is a mistake to fix, not something to play around
        except AntiphonError as exc:
            if strict:
                raise
            warnings.append(f"the configured model cannot be played: {exc}")
    bundled = loader.bundled_model(dimension)
    if bundled is None:
        warnings.append(
            f"antiphon has no bundled model for dimension {dimension} (it ships one for "
            f"{_bundled_dimensions() or 'no dimension yet'}); give a model file, or train one "
            "from your logs"
        )
        return None, None, f"none (no bundled model for dimension {dimension})"
    if configured is not None:
        warnings.append(f"playing the bundled default model for dimension {dimension} instead")
    return _open(bundled, config, overrides), bundled, f"{bundled.name} (bundled)"


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


def _bundled_dimensions() -> str:
    from antiphon.model import loader

    found = sorted(
        int(p.stem.removeprefix("default-dim"))
        for p in loader.BUNDLED.glob("default-dim*.safetensors")
        if p.stem.removeprefix("default-dim").isdigit()
    )
    return ", ".join(map(str, found))


def build_channel(section: str, config: Config) -> Channel:
    """The channel for one config section (its module is imported only when used)."""
    table: Any = getattr(config, section, None)
    if table is None:
        raise ValueError(f"[{section}] is not configured")
    return registry.build(section, dataclasses.replace(table))  # later edits stay unseen
