"""Open any model file antiphon understands, chosen by its suffix.

- ``.safetensors``: antiphon's own format (NumPy only);
- ``.h5``, ``.hdf5``, ``.keras``: IMPSY/Keras weights (needs h5py, the ``impsy`` extra);
- ``.tflite``: IMPSY's TensorFlow Lite export, its weights read from the file (NumPy
  only); a graph that reader does not understand is run by LiteRT instead when the
  ``litert`` extra is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from antiphon.errors import AntiphonError
from antiphon.limits import DEFAULT_SIGMATEMP
from antiphon.model import files, impsy, tflite
from antiphon.model.files import ModelFile, ModelFileError
from antiphon.model.mdrnn import MDRNN, Predictor, Weights
from antiphon.model.presets import Architecture

if TYPE_CHECKING:
    from antiphon.config import Config

SUFFIXES = (files.SUFFIX, *impsy.SUFFIXES, tflite.SUFFIX)


def read_model(path: str | Path) -> ModelFile:
    """Weights and metadata of an antiphon or IMPSY model file."""
    path = Path(path)
    if path.suffix == files.SUFFIX:
        return files.load(path)
    if path.suffix in impsy.SUFFIXES:
        return impsy.read(path)
    if path.suffix == tflite.SUFFIX:
        return tflite.read(path)
    raise ModelFileError(
        f"{path}: unknown model file type {path.suffix or '(no suffix)'}; antiphon reads "
        f"{', '.join(SUFFIXES)}"
    )


def open_model(
    path: str | Path,
    *,
    sigmatemp: float = DEFAULT_SIGMATEMP,
    pitemp: float = 1.0,
    seed: int | None = None,
) -> Predictor:
    """A ready-to-play predictor for any supported model file."""
    try:
        weights = read_model(path).weights
    except ModelFileError as unreadable:
        path = Path(path)
        from antiphon.model import litert

        if path.suffix != tflite.SUFFIX or not path.is_file() or not litert.can_run(path):
            raise
        # The same file, run as compiled: LiteRT knows graphs the reader does not.
        try:
            return litert.LiteRTMDRNN(path, sigmatemp=sigmatemp, pitemp=pitemp, seed=seed)
        except AntiphonError:
            raise unreadable from None
    return MDRNN(weights, sigmatemp=sigmatemp, pitemp=pitemp, seed=seed)


BUNDLED = Path(__file__).with_name("bundled")


_BUNDLED_STEM = "default-dim"


def bundled_name(dimension: int) -> str:
    """The file name of the default model for this dimension."""
    return f"{_BUNDLED_STEM}{dimension}{files.SUFFIX}"


def bundled_model(dimension: int) -> Path | None:
    """The default model shipped with antiphon for this dimension, if there is one."""
    path = BUNDLED / bundled_name(dimension)
    return path if path.is_file() else None


def bundled_dimensions() -> list[int]:
    """The dimensions antiphon ships a default model for."""
    stems = (p.stem for p in BUNDLED.glob(f"{_BUNDLED_STEM}*{files.SUFFIX}"))
    return sorted(int(s) for s in (s.removeprefix(_BUNDLED_STEM) for s in stems) if s.isdigit())


def fresh_model(arch: Architecture, *, seed: int | None = None, **temperatures: float) -> MDRNN:
    """An untrained network: it plays noise shaped by its random weights."""
    return MDRNN(Weights.random(arch, seed), seed=seed, **temperatures)


def configured_model_file(config: Config | None, explicit: Path | None = None) -> Path | None:
    """Which file to play: the one given, else the configured one, else the bundled
    default for the configured dimension; None when there is none of these."""
    if explicit is not None:
        return explicit
    if config is None:
        return bundled_model(9)
    return config.model_path or bundled_model(config.model.dimension)
