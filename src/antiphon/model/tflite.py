"""Read the weights out of an IMPSY ``.tflite`` file: no LiteRT, no TensorFlow.

A ``.tflite`` file is a FlatBuffer (read by ``flatbuffer.py``) holding subgraphs of
tensors and operators. IMPSY's converter keeps each Keras LSTM layer as a WHILE loop
whose body subgraph runs one LSTM cell per event; its Flex variant (select TF ops)
differs only in the TensorList operators around the loops, which plain LiteRT cannot
run but whose weights are stored like any other. Older files, and those IMPSY 1.2
converts with ``--optimise``, were quantised: the larger matrices are int8 with a
scale (and zero point), per tensor (older) or per row (newer). They are dequantised
here, so such a model plays its own weights to within half an int8 step (about 0.2 %
of each tensor's range).

Which tensor is which is read from the operators, not from tensor names (builtin
files name their weights ``arith.constant7`` and the like):

- **LSTM layers.** Walking the main graph in execution order, and every WHILE body
  where the loop runs, each ``SPLIT`` into 4 gate blocks whose input is a sum of two
  FULLY_CONNECTED products and a constant (4U,) bias is one LSTM cell; the order the
  cells run in is the layer order. Of the two products, the *recurrent* kernel
  multiplies a value carried in from outside the subgraph (the loop-carried h, or a
  ``state_h`` input), the input kernel multiplies the event read out of the sequence
  (a GATHER or TensorList read); when that does not decide it, the shapes do (the
  input kernel has D columns in layer 0). The gate blocks must be in Keras' order
  i, f, g, o: the third block goes through TANH.
- **MDN head.** The CONCATENATION in the main graph whose three inputs come from
  FULLY_CONNECTED layers (the middle one through ELU and ``+ 1``) is
  ``[mus | sigmas | pi logits]``, in that order.
- TFLite stores a FULLY_CONNECTED weight as (out, in), the transpose of Keras'
  kernel; it is transposed back and checked against the architecture the graph's
  inputs imply (``inputs`` (1, 1, D), one (1, U) h and c per layer).

The file is hostile input: it is size-limited, every count is bounded, and any
inconsistency raises ModelFileError naming the file and what to do instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from antiphon.model.files import ModelFile, ModelFileError
from antiphon.model.flatbuffer import FlatBufferError, Table
from antiphon.model.mdrnn import Dense, LSTMLayer, Weights

SUFFIX = ".tflite"
IDENTIFIER = b"TFL3"

MAX_FILE_BYTES = 64 * 2**20
"""IMPSY's largest preset (xl: 3 x 512 units) is about 21 MB in float32."""
MAX_SUBGRAPHS = 64
MAX_TENSORS = 20_000
"""Across all subgraphs; IMPSY's two-layer files hold about 150."""
MAX_OPERATORS = 20_000
MAX_BUFFERS = 100_000
MAX_RANK = 8
MAX_LAYERS = 8
"""IMPSY's deepest preset has 3 LSTM layers."""
MAX_WEIGHTS = 32 * 2**20
"""Numbers read as weights, counting each read: a graph cannot make the reader
dequantise one large tensor over and over."""
MAX_NAME = 65_536

ADVICE = (
    "Use the same model's .h5 or .keras file instead (IMPSY saves them beside the "
    ".tflite when it trains; `antiphon model import FILE.h5` converts one), or retrain "
    "it with `antiphon train`."
)

# BuiltinOperator codes (TensorFlow Lite schema) of the operators read here.
_BUILTIN = {
    0: "ADD",
    2: "CONCATENATION",
    6: "DEQUANTIZE",
    9: "FULLY_CONNECTED",
    14: "LOGISTIC",
    22: "RESHAPE",
    28: "TANH",
    32: "CUSTOM",
    43: "SQUEEZE",
    49: "SPLIT",
    70: "EXPAND_DIMS",
    111: "ELU",
    119: "WHILE",
}
_PASS_THROUGH = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS"}
"""Operators that change a tensor's shape, not its values."""

# TensorType -> NumPy dtype of the constant tensors read as weights.
_DTYPES = {0: "<f4", 1: "<f2", 3: "u1", 9: "i1"}
_QUANTISED = {3, 9}
_NUMBERS = {7: "int16", 10: "float64", 17: "int4", 18: "bfloat16"}
"""Types a weight could have that are not read (no IMPSY converter writes them)."""


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    type: int
    buffer: int
    quantisation: Table | None
    sparse: bool


@dataclass(frozen=True)
class Operator:
    code: str  # "FULLY_CONNECTED", "WHILE", "FlexTensorListReserve", "BUILTIN_45", ...
    inputs: tuple[int, ...]  # tensor indices; -1 marks an absent optional input
    outputs: tuple[int, ...]
    options: Table | None


@dataclass
class Subgraph:
    index: int
    tensors: list[Tensor]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    operators: list[Operator]
    producers: dict[int, Operator] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for op in self.operators:
            for t in op.outputs:
                self.producers[t] = op


class _Graph:
    """The parts of a TFLite model the weight reader needs, checked as they are read."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        model = Table.root(data, IDENTIFIER)
        self.buffers = model.tables(4, MAX_BUFFERS)
        codes = [_opcode_name(code) for code in model.tables(1, MAX_OPERATORS)]
        self.subgraphs: list[Subgraph] = []
        budget = {"tensors": MAX_TENSORS, "operators": MAX_OPERATORS}
        for index, table in enumerate(model.tables(2, MAX_SUBGRAPHS)):
            tensors = [_tensor(t) for t in table.tables(0, budget["tensors"])]
            operators = [_operator(op, codes) for op in table.tables(3, budget["operators"])]
            budget["tensors"] -= len(tensors)
            budget["operators"] -= len(operators)
            graph = Subgraph(
                index,
                tensors,
                _indices(table.array(1, "<i4", MAX_TENSORS), len(tensors)),
                _indices(table.array(2, "<i4", MAX_TENSORS), len(tensors)),
                operators,
            )
            for op in operators:
                _indices(op.inputs, len(tensors), optional=True)
                _indices(op.outputs, len(tensors))
            self.subgraphs.append(graph)
        if not self.subgraphs:
            raise FlatBufferError("the model has no subgraphs")
        self.quantised: set[tuple[int, int]] = set()  # weights stored as integers
        self.weights_left = MAX_WEIGHTS

    def constant(self, graph: Subgraph, index: int, depth: int = 0) -> np.ndarray | None:
        """The float32 values of a constant number tensor (dequantised), or None if it
        is computed at run time or holds integers that are not quantised numbers."""
        if index < 0:
            return None
        tensor = graph.tensors[index]
        raw = self._bytes(tensor.buffer)
        if raw is None:
            producer = graph.producers.get(index)
            if producer and producer.code == "DEQUANTIZE" and producer.inputs and depth < 2:
                return self.constant(graph, producer.inputs[0], depth + 1)  # float16 storage
            return None
        if tensor.type in _NUMBERS:
            raise _NotMDRNN(
                f"tensor {tensor.name!r} holds {_NUMBERS[tensor.type]} values, which antiphon "
                "does not read"
            )
        if tensor.type not in _DTYPES:
            return None
        if tensor.sparse:
            raise _NotMDRNN(
                f"tensor {tensor.name!r} is stored sparse, which antiphon does not read"
            )
        dtype = np.dtype(_DTYPES[tensor.type])
        count = math.prod(tensor.shape)
        if min(tensor.shape, default=0) < 0 or len(raw) != count * dtype.itemsize:
            raise FlatBufferError(
                f"tensor {tensor.name!r} of shape {tensor.shape} has {len(raw)} bytes of data"
            )
        self.weights_left -= count
        if self.weights_left < 0:
            raise _NotMDRNN(f"it reads more than {MAX_WEIGHTS:,} numbers as weights")
        values = np.frombuffer(raw, dtype, count).reshape(tensor.shape)
        if tensor.type in _QUANTISED:
            self.quantised.add((graph.index, index))
            return _dequantise(values, tensor)
        return values.astype(np.float32)

    def _bytes(self, buffer: int) -> bytes | None:
        if buffer == 0 or buffer >= len(self.buffers):
            return None
        table = self.buffers[buffer]
        data = table.array(0, "u1", len(self.data))
        if len(data):
            return data.tobytes()
        offset, size = int(table.scalar(1, "<Q")), int(table.scalar(2, "<Q"))
        if offset > 1 and size:  # stored after the FlatBuffer (models over 2 GB)
            if offset + size > len(self.data):
                raise FlatBufferError(f"buffer {buffer} lies outside the file")
            return self.data[offset : offset + size]
        return None


def read(path: str | Path) -> ModelFile:
    """The weights of an IMPSY ``.tflite`` file, or ModelFileError saying why not."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ModelFileError(
            f"{path} is larger than any IMPSY model ({MAX_FILE_BYTES // 2**20} MB at most); "
            f"it is not one. {ADVICE}"
        )
    data = path.read_bytes()
    try:
        graph = _Graph(data)
        weights, flex = _weights(graph)
    except _NotMDRNN as exc:
        raise ModelFileError(
            f"{path} is a TensorFlow Lite file but not an IMPSY MDRNN antiphon can read: "
            f"{exc}. {ADVICE}"
        ) from None
    except (ValueError, IndexError) as exc:  # FlatBufferError, or a graph wired wrongly
        raise ModelFileError(
            f"{path} is not a readable TensorFlow Lite file ({exc}); it may be truncated "
            f"or corrupt. {ADVICE}"
        ) from None
    try:
        weights.check()
    except ValueError as exc:
        raise ModelFileError(f"{path}: weights do not form an MDRNN: {exc}. {ADVICE}") from None
    quantised = len(graph.quantised)
    storage = f"int8 ({quantised} tensors, dequantised)" if quantised else "float32"
    metadata: dict[str, Any] = {
        "imported_from": path.name,
        "impsy_layout": "E (.tflite" + (", Flex ops)" if flex else ")"),
        "tflite_weights": storage,
    }
    return ModelFile(weights=weights, metadata=metadata)


class _NotMDRNN(Exception):
    """The graph is valid TFLite but does not have the shape of an IMPSY MDRNN."""


def _weights(graph: _Graph) -> tuple[Weights, bool]:
    main = graph.subgraphs[0]
    layers = []
    for cell in _lstm_cells(graph, main, depth=0, seen=set()):
        layers.append(cell)
        if len(layers) > MAX_LAYERS:
            raise _NotMDRNN(f"it has more than {MAX_LAYERS} LSTM layers")
    if not layers:
        raise _NotMDRNN("no LSTM cell found (a SPLIT into 4 gates of two matrix products)")
    mus, sigmas, pis = _mdn_head(graph, main)
    _check_inputs(main, layers)
    flex = any(op.code.startswith("Flex") for g in graph.subgraphs for op in g.operators)
    return Weights(lstm=layers, mus=mus, sigmas=sigmas, pis=pis), flex


def _lstm_cells(graph: _Graph, sub: Subgraph, depth: int, seen: set[int]) -> Iterator[LSTMLayer]:
    """LSTM cells in the order they run: this subgraph's, and its WHILE bodies'."""
    seen.add(sub.index)
    for op in sub.operators:
        if op.code == "WHILE" and op.options is not None:
            body = int(op.options.scalar(1, "<i", -1))
            if not 0 <= body < len(graph.subgraphs):
                raise FlatBufferError(f"a WHILE loop names subgraph {body}, which does not exist")
            if body not in seen and depth < 4:
                yield from _lstm_cells(graph, graph.subgraphs[body], depth + 1, seen)
        elif op.code == "SPLIT" and len(op.outputs) == 4 and len(op.inputs) == 2:
            cell = _lstm_cell(graph, sub, op)
            if cell is not None:
                yield cell


def _lstm_cell(graph: _Graph, sub: Subgraph, split: Operator) -> LSTMLayer | None:
    products: list[tuple[np.ndarray, int]] = []  # (weight (4U, in), input tensor)
    biases: list[np.ndarray] = []
    for term in _sum_terms(sub, split.inputs[1]):
        value = graph.constant(sub, term)
        op = sub.producers.get(term)
        if value is not None and value.ndim == 1:
            biases.append(value)
        elif op is not None and op.code == "FULLY_CONNECTED" and len(op.inputs) >= 2:
            weight = graph.constant(sub, op.inputs[1])
            if weight is None or weight.ndim != 2:
                return None
            products.append((weight, op.inputs[0]))
            if len(op.inputs) > 2 and (fc_bias := graph.constant(sub, op.inputs[2])) is not None:
                biases.append(fc_bias)
        else:
            return None
    if len(products) != 2:
        return None
    gates = [_consumers(sub, t) for t in split.outputs]
    if "TANH" not in gates[2] or any("TANH" in g for g in gates[:2] + gates[3:]):
        raise _NotMDRNN("an LSTM cell's gates are not in Keras' order i, f, g, o")
    four_units = products[0][0].shape[0]
    if any(b.shape != (four_units,) for b in biases) or products[1][0].shape[0] != four_units:
        raise _NotMDRNN("an LSTM cell's matrices and bias do not have 4 x units rows")
    bias = np.sum(biases, axis=0, dtype=np.float32) if biases else np.zeros(four_units)
    kernel, recurrent = _input_and_recurrent(sub, products)
    return LSTMLayer(kernel=kernel.T, recurrent_kernel=recurrent.T, bias=bias)


def _input_and_recurrent(
    sub: Subgraph, products: list[tuple[np.ndarray, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """(input weight, recurrent weight), both (4U, in) as stored."""
    carried = [_through(sub, source) in sub.inputs for _, source in products]
    if carried[0] != carried[1]:
        first_is_recurrent = carried[0]
    else:
        units = products[0][0].shape[0] // 4
        square = [w.shape[1] == units for w, _ in products]
        if square[0] == square[1]:
            raise _NotMDRNN("cannot tell an LSTM cell's recurrent kernel from its input kernel")
        first_is_recurrent = square[0]
    (a, _), (b, _) = products
    return (b, a) if first_is_recurrent else (a, b)


def _mdn_head(graph: _Graph, main: Subgraph) -> tuple[Dense, Dense, Dense]:
    for op in reversed(main.operators):
        if op.code != "CONCATENATION" or len(op.inputs) != 3:
            continue
        heads = [_dense_before(graph, main, t) for t in op.inputs]
        if all(h is not None for h in heads):
            (mus, _), (sigmas, elu), (pis, _) = heads  # type: ignore[misc]
            if not elu:
                raise _NotMDRNN("the MDN's sigmas do not go through ELU")
            return mus, sigmas, pis
    raise _NotMDRNN("no MDN head found (three dense layers concatenated as mus, sigmas, pi)")


def _dense_before(graph: _Graph, sub: Subgraph, tensor: int) -> tuple[Dense, bool] | None:
    """The dense layer that computes ``tensor``, through ELU and adding a scalar;
    with whether an ELU was passed."""
    elu = False
    for _ in range(8):
        op = sub.producers.get(tensor)
        if op is None:
            return None
        if op.code == "FULLY_CONNECTED" and len(op.inputs) >= 2:
            weight = graph.constant(sub, op.inputs[1])
            if weight is None or weight.ndim != 2:
                return None
            bias = graph.constant(sub, op.inputs[2]) if len(op.inputs) > 2 else None
            if bias is None:
                bias = np.zeros(weight.shape[0], np.float32)
            return Dense(kernel=weight.T, bias=bias), elu
        if op.code == "ELU":
            elu = True
        elif op.code == "ADD":
            scalars = [graph.constant(sub, t) for t in op.inputs]
            computed = [t for t, s in zip(op.inputs, scalars, strict=True) if s is None]
            if len(computed) != 1 or not any(s is not None and s.size == 1 for s in scalars):
                return None
            tensor = computed[0]
            continue
        elif op.code not in _PASS_THROUGH or not op.inputs:
            return None
        tensor = op.inputs[0]
    return None


def _check_inputs(main: Subgraph, layers: list[LSTMLayer]) -> None:
    """The graph's inputs must be the event and one h and c per layer found."""
    dimension, units = layers[0].kernel.shape[0], layers[0].recurrent_kernel.shape[0]
    shapes = [main.tensors[i].shape for i in main.inputs]
    events = [s for s in shapes if len(s) == 3]
    states = [s for s in shapes if len(s) == 2]
    if len(events) != 1 or events[0][-1] != dimension:
        raise _NotMDRNN(
            f"its first LSTM layer reads {dimension} values, but its inputs are {shapes}"
        )
    if len(states) != 2 * len(layers) or any(s[-1] != units for s in states):
        raise _NotMDRNN(
            f"it has {len(states)} state inputs, but {len(layers)} LSTM layers of {units} units "
            "were found"
        )


def _sum_terms(sub: Subgraph, tensor: int, depth: int = 0) -> list[int]:
    """The leaves of the ADD tree (through reshapes) that computes ``tensor``."""
    op = sub.producers.get(tensor)
    if op is None or depth > 6:
        return [tensor]
    if op.code == "ADD" and len(op.inputs) == 2:
        return [t for i in op.inputs for t in _sum_terms(sub, i, depth + 1)]
    if op.code in _PASS_THROUGH and op.inputs:
        return _sum_terms(sub, op.inputs[0], depth + 1)
    return [tensor]


def _through(sub: Subgraph, tensor: int) -> int:
    """The tensor before any reshapes."""
    for _ in range(8):
        op = sub.producers.get(tensor)
        if op is None or op.code not in _PASS_THROUGH or not op.inputs:
            break
        tensor = op.inputs[0]
    return tensor


def _consumers(sub: Subgraph, tensor: int) -> set[str]:
    return {op.code for op in sub.operators if tensor in op.inputs}


def _dequantise(values: np.ndarray, tensor: Tensor) -> np.ndarray:
    """float = scale * (q - zero_point), per tensor or along the quantised axis."""
    q = tensor.quantisation
    if q is None:
        raise FlatBufferError(f"quantised tensor {tensor.name!r} has no scale")
    limit = max(values.shape, default=1)
    scale = q.array(2, "<f4", limit).astype(np.float32)
    zero = q.array(3, "<i8", limit).astype(np.float32)
    axis = int(q.scalar(6, "<i"))
    if len(scale) == 0 or len(zero) not in (0, 1, len(scale)):
        raise FlatBufferError(f"quantised tensor {tensor.name!r} has inconsistent parameters")
    if len(zero) == 0:
        zero = np.zeros(1, np.float32)
    if len(scale) > 1:
        if not 0 <= axis < values.ndim or values.shape[axis] != len(scale):
            raise FlatBufferError(f"tensor {tensor.name!r} is quantised along a wrong axis")
        shape = [1] * values.ndim
        shape[axis] = len(scale)
        scale, zero = scale.reshape(shape), zero.reshape(shape if len(zero) > 1 else [1])
    return ((values.astype(np.float32) - zero) * scale).astype(np.float32)


def _opcode_name(code: Table) -> str:
    builtin = max(int(code.scalar(0, "<b")), int(code.scalar(3, "<i")))
    if builtin == 32:
        return code.string(1) or "CUSTOM"
    return _BUILTIN.get(builtin, f"BUILTIN_{builtin}")


def _tensor(table: Table) -> Tensor:
    return Tensor(
        name=table.string(3, limit=MAX_NAME),
        shape=tuple(int(d) for d in table.array(0, "<i4", MAX_RANK)),
        type=int(table.scalar(1, "<b")),
        buffer=int(table.scalar(2, "<I")),
        quantisation=table.table(4),
        sparse=table.table(6) is not None,
    )


def _operator(table: Table, codes: list[str]) -> Operator:
    opcode = int(table.scalar(0, "<I"))
    if opcode >= len(codes):
        raise FlatBufferError(f"an operator uses opcode {opcode} of {len(codes)}")
    return Operator(
        code=codes[opcode],
        inputs=tuple(int(i) for i in table.array(1, "<i4", MAX_TENSORS)),
        outputs=tuple(int(i) for i in table.array(2, "<i4", MAX_TENSORS)),
        options=table.table(4),
    )


def _indices(values: Any, count: int, *, optional: bool = False) -> tuple[int, ...]:
    out = tuple(int(i) for i in values)
    low = -1 if optional else 0
    if any(not low <= i < count for i in out):
        raise FlatBufferError(f"a tensor index is outside the subgraph's {count} tensors")
    return out
