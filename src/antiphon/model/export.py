"""Write a model as the files IMPSY 1.2 loads, so IMPSY can play it (and make its own
``.tflite`` from it). h5py only (the ``impsy`` extra); no TensorFlow.

IMPSY's KerasMDRNN picks its reader by the file name, and so does Keras under it:

- ``.keras``: ``load_model`` with IMPSY's MDN layer registered. The zip holds
  ``config.json``, the *inference* network (inputs ``inputs`` (1, D) and ``state_h_i``,
  ``state_c_i`` per layer; outputs the MDN vector, then h and c of each layer),
  ``metadata.json`` and ``model.weights.h5`` in Keras 3's layout (layout C in
  model/impsy.py's terms).
- ``.h5``: IMPSY builds its *training* network (the MDN inside TimeDistributed) and
  calls ``load_weights``. Keras reads a name ending in ``.weights.h5`` as Keras 3
  weights (layout D) and any other ``.h5`` with its Keras 2 reader, which matches
  layers by their order in ``layer_names`` (layout A, what IMPSY's older models are).

IMPSY builds the network from its config's ``[model] dimension`` and ``size``, so only
models of a preset size (5 mixtures) can be exported. Checked by loading every kind
with IMPSY 1.2.1 and TensorFlow 2.21 (see docs/coming-from-impsy.md and
tests/compat/test_impsy_export.py).
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from antiphon.model import impsy
from antiphon.model.files import ModelFileError
from antiphon.model.mdrnn import Weights
from antiphon.model.presets import Architecture
from antiphon.storage import write_atomically

FORMATS = {"h5": ".h5", "keras": ".keras"}
"""Export format -> the suffix IMPSY's loader needs."""

KERAS2_LAYOUT = "2.15.0"
"""The Keras 2 release whose weights-only ``.h5`` layout the ``.h5`` export follows."""
KERAS3_LAYOUT = "3.0.0"
"""The Keras 3 release whose ``.keras`` layout the ``.keras`` export follows."""

_MDN_HEADS = (("mus", "mdn_mus"), ("sigmas", "mdn_sigmas"), ("pis", "mdn_pi"))
"""antiphon's head name -> the Dense layer's name inside IMPSY's MDN layer."""


def format_for(path: Path) -> str:
    """The export format a file name asks for."""
    for fmt, suffix in FORMATS.items():
        if path.suffix == suffix:
            return fmt
    raise ModelFileError(
        f"{path}: IMPSY reads .h5 and .keras model files; name the file with one of "
        "those suffixes (or give --format)"
    )


def export(weights: Weights, path: str | Path, fmt: str | None = None) -> Path:
    """Write ``weights`` to ``path`` in ``fmt`` ('h5' or 'keras'); never overwrites."""
    path = Path(path)
    fmt = fmt or format_for(path)
    if fmt not in FORMATS:
        raise ModelFileError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if path.suffix != FORMATS[fmt]:
        raise ModelFileError(
            f"{path}: an IMPSY {fmt} file must end in {FORMATS[fmt]}, because IMPSY and "
            "Keras choose how to read a model by its name"
        )
    if path.exists():
        raise ModelFileError(
            f"{path} already exists; choose another name (models are never overwritten)"
        )
    weights.check()
    arch = weights.architecture
    if arch.size is None:
        raise ModelFileError(
            f"IMPSY builds only its preset sizes (xxs to xl, 5 mixtures), and this model "
            f"is {arch.describe()}; IMPSY cannot load it"
        )
    h5py = impsy._h5py()
    store = io.BytesIO()
    with h5py.File(store, "w") as f:
        if fmt == "keras":
            _write_keras3(f, weights, training=False)
        elif path.name.endswith(".weights.h5"):
            _write_keras3(f, weights, training=True)
        else:
            _write_keras2(f, weights)
    data = store.getvalue()
    if fmt == "keras":
        data = _keras_zip(arch, data)
    write_atomically(path, data)
    return path


def impsy_config_lines(arch: Architecture, path: Path) -> list[str]:
    """The ``[model]`` settings IMPSY needs to load an exported file."""
    return [
        "[model]",
        f"dimension = {arch.dimension}",
        f'size = "{arch.size}"',
        f'file = "{path.as_posix()}"',
    ]


# -- Keras 2 weights-only .h5 (layout A) ---------------------------------------------


def _write_keras2(f: Any, weights: Weights) -> None:
    """One group per layer with weights, in network order; each group's
    ``weight_names`` attribute lists its datasets in the order the layer holds them."""
    layers: list[tuple[str, list[tuple[str, np.ndarray]]]] = [
        (
            f"lstm_{i}",
            [
                ("kernel:0", layer.kernel),
                ("recurrent_kernel:0", layer.recurrent_kernel),
                ("bias:0", layer.bias),
            ],
        )
        for i, layer in enumerate(weights.lstm)
    ]
    mdn = []
    for head, _ in _MDN_HEADS:
        dense = getattr(weights, head)
        mdn += [(f"{head}/kernel:0", dense.kernel), (f"{head}/bias:0", dense.bias)]
    layers.append(("td_mdn", mdn))
    f.attrs["layer_names"] = [name.encode() for name, _ in layers]
    f.attrs["backend"] = b"tensorflow"
    f.attrs["keras_version"] = KERAS2_LAYOUT.encode()
    for name, arrays in layers:
        group = f.create_group(name)
        for key, array in arrays:
            group.create_dataset(f"{name}/{key}", data=array)
        group.attrs["weight_names"] = [f"{name}/{key}".encode() for key, _ in arrays]


# -- Keras 3 weights (layouts C and D) -----------------------------------------------


def _write_keras3(f: Any, weights: Weights, *, training: bool) -> None:
    """Keras 3 stores each layer's variables under ``layers/<class-based name>/vars``,
    named by class and creation order (``input_layer_1``, ``lstm_1``), not by the
    layer's own name, which is kept in the ``name`` attribute of ``vars``."""
    arch = weights.architecture
    layers = f.create_group("layers")
    _vars(layers.create_group("input_layer"), "inputs")
    for i, layer in enumerate(weights.lstm):
        if not training:
            _vars(layers.create_group(f"input_layer_{2 * i + 1}"), f"state_h_{i}")
            _vars(layers.create_group(f"input_layer_{2 * i + 2}"), f"state_c_{i}")
        group = layers.create_group("lstm" if i == 0 else f"lstm_{i}")
        _vars(group, f"lstm_{i}")
        _vars(
            group.create_group("cell"),
            "lstm_cell",
            [layer.kernel, layer.recurrent_kernel, layer.bias],
        )
    if training:
        wrapper = layers.create_group("time_distributed")
        _vars(wrapper, "td_mdn")
        mdn = wrapper.create_group("layer")
    else:
        mdn = layers.create_group("mdn")
    _vars(mdn, "mdn_outputs")
    for head, name in _MDN_HEADS:
        dense = getattr(weights, head)
        _vars(mdn.create_group(name), name, [dense.kernel, dense.bias])
    _vars(f, arch.impsy_stem)


def _vars(group: Any, name: str, arrays: list[np.ndarray] | None = None) -> None:
    store = group.create_group("vars")
    store.attrs["name"] = name
    for i, array in enumerate(arrays or []):
        store.create_dataset(str(i), data=array)


def _keras_zip(arch: Architecture, weights_h5: bytes) -> bytes:
    metadata = {
        "keras_version": KERAS3_LAYOUT,
        "date_saved": datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("metadata.json", json.dumps(metadata))
        archive.writestr("config.json", json.dumps(_inference_config(arch)))
        archive.writestr("model.weights.h5", weights_h5)
    return out.getvalue()


def _inference_config(arch: Architecture) -> dict[str, Any]:
    """The Functional config of IMPSY's inference network (what ``build_mdrnn_model``
    makes with ``inference=True``): one event in, the MDN and every state out."""
    d, u = arch.dimension, arch.units

    def tensor(shape: list[int | None], layer: str, index: int = 0) -> dict[str, Any]:
        return {
            "class_name": "__keras_tensor__",
            "config": {"shape": shape, "dtype": "float32", "keras_history": [layer, 0, index]},
        }

    def input_layer(name: str, shape: list[int]) -> dict[str, Any]:
        return {
            "module": "keras.layers",
            "class_name": "InputLayer",
            "config": {"batch_shape": [None, *shape], "dtype": "float32", "name": name},
            "registered_name": None,
            "name": name,
            "inbound_nodes": [],
        }

    layers = [input_layer("inputs", [1, d])]
    inputs = [["inputs", 0, 0]]
    outputs: list[list[Any]] = [["mdn_outputs", 0, 0]]
    sequence = tensor([None, 1, d], "inputs")
    for i in range(arch.layers):
        last = i == arch.layers - 1
        name = f"lstm_{i}"
        states = [f"state_h_{i}", f"state_c_{i}"]
        layers += [input_layer(state, [u]) for state in states]
        inputs += [[state, 0, 0] for state in states]
        layers.append(
            {
                "module": "keras.layers",
                "class_name": "LSTM",
                "config": {
                    "name": name,
                    "units": u,
                    "activation": "tanh",
                    "recurrent_activation": "sigmoid",
                    "use_bias": True,
                    "unit_forget_bias": True,
                    "return_sequences": not last,
                    "return_state": True,
                },
                "registered_name": None,
                "name": name,
                "inbound_nodes": [
                    {
                        "args": [sequence],
                        "kwargs": {"initial_state": [tensor([None, u], s) for s in states]},
                    }
                ],
            }
        )
        outputs += [[name, 0, 1], [name, 0, 2]]
        sequence = tensor([None, u] if last else [None, 1, u], name)
    layers.append(
        {
            "module": "keras_mdn_layer",
            "class_name": "MDN",
            "config": {
                "name": "mdn_outputs",
                "output_dimension": d,
                "num_mixtures": arch.mixtures,
            },
            "registered_name": "MDN",
            "name": "mdn_outputs",
            "inbound_nodes": [{"args": [sequence], "kwargs": {}}],
        }
    )
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": arch.impsy_stem,
            "trainable": True,
            "layers": layers,
            "input_layers": inputs,
            "output_layers": outputs,
        },
        "registered_name": "Functional",
    }
