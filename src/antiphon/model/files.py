"""antiphon model files: safetensors weights plus string metadata, loaded with NumPy only.

The metadata header says what the weights are (format, version, architecture, scale)
and carries what a user wants to know about a model later (training data, validation
loss, who made it). Structured values are stored as JSON strings because safetensors
metadata is a flat str -> str mapping: every value is JSON-encoded, strings included.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from antiphon import __version__
from antiphon.errors import AntiphonError
from antiphon.model.mdrnn import Weights
from antiphon.model.presets import SCALE_FACTOR, SIGMA_EPSILON, Architecture
from antiphon.storage import write_atomically

FORMAT = "antiphon-mdrnn"
FORMAT_VERSION = 1
SUFFIX = ".safetensors"

_ARCHITECTURE_KEYS = ("dimension", "units", "layers", "mixtures")


class ModelFileError(AntiphonError):
    """A model file that cannot be used; the message names the file and the fix."""


@dataclass
class ModelFile:
    """Weights and what is known about them."""

    weights: Weights
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def architecture(self) -> Architecture:
        return self.weights.architecture


def metadata_header(arch: Architecture, extra: dict[str, Any] | None = None) -> dict[str, str]:
    """The string metadata written into every model file."""
    header: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **{key: getattr(arch, key) for key in _ARCHITECTURE_KEYS},
        "size": arch.size or "custom",
        "scale_factor": SCALE_FACTOR,
        "sigma_activation": f"elu+1+{SIGMA_EPSILON}",
        "gate_order": "i,f,g,o",
        "created_by": f"antiphon {__version__}",
        "created_at": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    header.update(extra or {})
    return {key: json.dumps(value) for key, value in header.items()}


def save(path: str | Path, model: ModelFile, *, overwrite: bool = False) -> Path:
    """Write a model atomically: a crash leaves the old file or the new one, never half."""
    from safetensors.numpy import save as to_bytes

    path = Path(path)
    if path.suffix != SUFFIX:
        raise ModelFileError(f"{path}: antiphon model files end in {SUFFIX}")
    if path.exists() and not overwrite:
        raise ModelFileError(
            f"{path} already exists; choose another name (models are never overwritten)"
        )
    data = to_bytes(model.weights.tensors(), metadata_header(model.architecture, model.metadata))
    write_atomically(path, data)
    return path


def load(path: str | Path) -> ModelFile:
    """Read an antiphon model file, or raise ModelFileError saying why it is unusable."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        with safe_open(str(path), framework="numpy") as f:
            raw = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(
            f"{path} is not a readable safetensors file ({_first_line(exc)}); it may be "
            "truncated or corrupt: copy it again or re-export it"
        ) from None
    metadata = {key: _decode(value) for key, value in raw.items()}
    if metadata.get("format") != FORMAT:
        raise ModelFileError(
            f"{path} is a safetensors file but not an antiphon model (no "
            f"format={FORMAT!r} in its metadata)"
        )
    version = metadata.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} uses model format {version}, newer than this antiphon understands "
            f"({FORMAT_VERSION}); upgrade antiphon"
        )
    try:
        weights = Weights.from_tensors(tensors)
    except (KeyError, ValueError) as exc:
        raise ModelFileError(f"{path} has inconsistent weights: {exc}") from None
    arch = weights.architecture
    for key in _ARCHITECTURE_KEYS:
        if key in metadata and metadata[key] != getattr(arch, key):
            raise ModelFileError(
                f"{path}: metadata says {key}={metadata[key]} but the weights have "
                f"{key}={getattr(arch, key)}"
            )
    return ModelFile(weights=weights, metadata=metadata)


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
