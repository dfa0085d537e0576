"""Read IMPSY's Keras model files with h5py and zipfile alone, no TensorFlow.

Four layouts exist in the wild:

A. Keras 2 weights-only ``.h5``: root attribute ``layer_names``, one group per layer
   whose ``weight_names`` attribute orders its arrays;
B. Keras 2 full-model ``.h5``: the same under ``model_weights/``, MDN arrays unnamed
   (mus, sigmas, pi in ``weight_names`` order);
C. Keras 3 ``.keras``: a zip holding ``model.weights.h5`` with ``layers/lstm*/cell/vars``
   and ``layers/mdn/mdn_{mus,sigmas,pi}/vars``;
D. Keras 3 ``.weights.h5`` and training checkpoints: like C, the MDN under
   ``layers/time_distributed/layer/``, and an ``optimizer/`` group that is ignored.

The architecture is inferred from the array shapes.

A ``.keras`` file is a zip and HDF5 compresses arrays, so both can unpack a
thousandfold (a 1 MB ``.keras`` bomb took the engine process to 2.1 GB before these
checks): the zip's sizes are checked before anything is unpacked (``archives``), and
each array's size before it is read, against ``MAX_WEIGHTS_BYTES``.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np

from antiphon.archives import Archive, ArchiveError, human
from antiphon.errors import AntiphonError, needs_extra
from antiphon.model.files import ModelFile, ModelFileError
from antiphon.model.mdrnn import Dense, LSTMLayer, Weights
from antiphon.model.presets import HEADS

SUFFIXES = (".h5", ".hdf5", ".keras")
KERAS_WEIGHTS = "model.weights.h5"
MAX_WEIGHTS_BYTES = 128 << 20
"""Unpacked weights (and, in checkpoints, optimizer state) at most: IMPSY's largest
preset, xl, has 21 MB of weights; the web UI takes 64 MB model uploads."""

_KERAS3_LSTM = re.compile(r"(?:^|/)layers/lstm(?:_(\d+))?/cell/vars/(\d+)$")
_KERAS3_MDN = re.compile(r"(?:^|/)mdn_(mus|sigmas|pi)/vars/(\d+)$")


def read(path: str | Path) -> ModelFile:
    """Weights of an IMPSY ``.h5`` or ``.keras`` file, or ModelFileError saying why not."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    h5py = _h5py()
    try:
        if path.suffix == ".keras":
            with Archive(path, MAX_WEIGHTS_BYTES, MAX_WEIGHTS_BYTES, ".keras model") as archive:
                if KERAS_WEIGHTS not in archive.members:
                    raise ModelFileError(f"{path} has no {KERAS_WEIGHTS}: not a Keras 3 model")
                data = archive.read(KERAS_WEIGHTS)
            with h5py.File(io.BytesIO(data), "r") as f:
                weights, layout = _read_keras3(f), "C (.keras)"
        else:
            with h5py.File(path, "r") as f:
                weights, layout = _read_h5(f)
    except ArchiveError as exc:
        raise ModelFileError(str(exc)) from None
    except ModelFileError:
        raise
    # h5py reports a damaged file as whatever HDF5 tripped over (RuntimeError included)
    except (OSError, KeyError, ValueError, TypeError, AttributeError, RuntimeError) as exc:
        raise ModelFileError(
            f"{path} could not be read as an IMPSY model ({type(exc).__name__}: {exc}); "
            "it may be truncated or not a Keras file"
        ) from None
    try:
        weights.check()
    except ValueError as exc:
        raise ModelFileError(f"{path}: weights do not form an MDRNN: {exc}") from None
    metadata: dict[str, Any] = {"imported_from": path.name, "impsy_layout": layout}
    return ModelFile(weights=weights, metadata=metadata)


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise AntiphonError(
            needs_extra("reading IMPSY .h5/.keras models needs h5py", "impsy")
            + " (or import the model on a laptop with `antiphon model import` and copy the "
            ".safetensors file)"
        ) from None
    return h5py


def _read_h5(f: Any) -> tuple[Weights, str]:
    if "model_weights" in f:
        return _read_keras2(f["model_weights"]), "B (full-model .h5)"
    if "layer_names" in f.attrs:
        return _read_keras2(f), "A (weights-only .h5)"
    if "layers" in f:
        return _read_keras3(f), "D (.weights.h5 / checkpoint)"
    raise ModelFileError(
        f"{f.filename} is an HDF5 file but not a Keras model (no layer_names, "
        "model_weights or layers group)"
    )


class _Budget:
    """Bytes of arrays read so far from one file, refused past ``MAX_WEIGHTS_BYTES``
    before the array that would pass it is read."""

    def __init__(self) -> None:
        self.used = 0

    def read(self, dataset: Any) -> np.ndarray:
        size = int(np.prod(dataset.shape, dtype=object)) * dataset.dtype.itemsize
        self.used += size
        if self.used > MAX_WEIGHTS_BYTES:
            raise ModelFileError(
                f"{dataset.file.filename}: its arrays unpack to more than "
                f"{human(MAX_WEIGHTS_BYTES)}; no IMPSY model is that large"
            )
        if dataset.dtype.kind != "f":
            raise ModelFileError(f"{dataset.name} holds {dataset.dtype}, not weights")
        return np.asarray(dataset)


def _names(attr: Any) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in attr]


def _read_keras2(root: Any) -> Weights:
    lstm: list[LSTMLayer] = []
    heads: dict[str, Dense] = {}
    budget = _Budget()
    for layer_name in _names(root.attrs["layer_names"]):
        group = root[layer_name]
        names = _names(group.attrs.get("weight_names", []))
        arrays = [budget.read(group[name]) for name in names]
        if len(arrays) == 3 and "recurrent_kernel" in names[1]:
            lstm.append(LSTMLayer(*arrays))
        elif len(arrays) == 6:
            heads = _mdn_heads(names, arrays)
    if not lstm or not heads:
        raise ModelFileError("no LSTM layers and MDN head found in the Keras 2 file")
    return Weights(lstm=lstm, **heads)


def _mdn_heads(names: list[str], arrays: list[np.ndarray]) -> dict[str, Dense]:
    """Layout A names its heads; layout B leaves them in mus, sigmas, pi order."""
    tagged = {}
    for head in HEADS:
        found = [i for i, n in enumerate(names) if f"/{head}/" in n]
        if len(found) == 2:
            tagged[head] = Dense(arrays[found[0]], arrays[found[1]])
    if len(tagged) == 3:
        return tagged
    return {head: Dense(arrays[2 * i], arrays[2 * i + 1]) for i, head in enumerate(HEADS)}


def _read_keras3(f: Any) -> Weights:
    lstm: dict[int, dict[int, np.ndarray]] = {}
    mdn: dict[str, dict[int, np.ndarray]] = {}
    budget = _Budget()

    def visit(name: str, obj: Any) -> None:
        if name.startswith("optimizer") or not hasattr(obj, "shape"):
            return
        if match := _KERAS3_LSTM.search(name):
            lstm.setdefault(int(match[1] or 0), {})[int(match[2])] = budget.read(obj)
        elif match := _KERAS3_MDN.search(name):
            head = "pis" if match[1] == "pi" else match[1]
            mdn.setdefault(head, {})[int(match[2])] = budget.read(obj)

    f.visititems(visit)
    if not lstm or set(mdn) != set(HEADS):
        raise ModelFileError("no LSTM layers and MDN head found in the Keras 3 weights")
    layers = [LSTMLayer(v[0], v[1], v[2]) for _, v in sorted(lstm.items())]
    return Weights(lstm=layers, **{head: Dense(v[0], v[1]) for head, v in mdn.items()})
