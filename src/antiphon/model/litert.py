"""IMPSY ``.tflite`` models run as compiled, by LiteRT (the optional ``litert`` extra).

antiphon reads the weights of IMPSY's ``.tflite`` files itself (model/tflite.py) and
plays them with its NumPy network; LiteRT is the second way, for a graph that reader
does not recognise, and the reference the reader is tested against. The graph is run
as it is: inputs ``inputs`` (1, 1, D) and ``state_{h,c}_{i}`` (1, U); outputs the MDN
vector and the new states. Files converted with TensorFlow's "select ops" (Flex)
need a delegate that LiteRT does not ship; those LiteRT refuses.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from antiphon.errors import AntiphonError, needs_extra
from antiphon.limits import DEFAULT_SIGMATEMP
from antiphon.model.files import ModelFileError
from antiphon.model.mdrnn import Predictor
from antiphon.model.presets import SCALE_FACTOR, Architecture, MDNLayout
from antiphon.model.tflite import ADVICE


def needs_flex(path: Path) -> bool:
    """Whether the graph uses TensorFlow ops that plain LiteRT cannot run."""
    return b"Flex" in path.read_bytes()


def can_run(path: Path) -> bool:
    """Whether LiteRT is installed and the file needs nothing LiteRT lacks."""
    return importlib.util.find_spec("ai_edge_litert") is not None and not needs_flex(path)


class LiteRTMDRNN(Predictor):
    """An IMPSY ``.tflite`` model behind the same interface as ``MDRNN``."""

    def __init__(
        self,
        path: str | Path,
        *,
        sigmatemp: float = DEFAULT_SIGMATEMP,
        pitemp: float = 1.0,
        seed: int | None = None,
    ) -> None:
        path = Path(path)
        if needs_flex(path):
            raise ModelFileError(
                f"{path} needs TensorFlow's Flex delegate (it was converted with select "
                f"TF ops), so it cannot run without TensorFlow. {ADVICE}"
            )
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise AntiphonError(
                f"{path}: {needs_extra('running .tflite models needs LiteRT', 'litert')}. {ADVICE}"
            ) from None
        try:
            interpreter = Interpreter(model_path=str(path), num_threads=1)
            interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            raise ModelFileError(f"{path}: LiteRT cannot run this file ({exc}). {ADVICE}") from None
        self._interpreter = interpreter
        self._inputs: dict[str, dict[str, Any]] = {}
        for detail in interpreter.get_input_details():
            key = _port_name(detail["name"])
            self._inputs[key] = detail
        if "inputs" not in self._inputs:
            raise ModelFileError(f"{path} has no 'inputs' tensor: not an IMPSY model")
        dimension = int(self._inputs["inputs"]["shape"][-1])
        layers = sum(1 for key in self._inputs if key.startswith("state_h_"))
        units = int(self._inputs["state_h_0"]["shape"][-1]) if layers else 0
        outputs = interpreter.get_output_details()
        mdn = [
            o
            for o in outputs
            if MDNLayout.mixtures_in(int(o["shape"][-1]), dimension)
            and int(o["shape"][-1]) != units
        ]
        if not layers or len(mdn) != 1:
            raise ModelFileError(f"{path}: unexpected inputs/outputs for an IMPSY model")
        self._mdn_index = mdn[0]["index"]
        self._state_outputs = self._match_states(outputs, layers)
        self.architecture = Architecture(
            dimension=dimension,
            units=units,
            layers=layers,
            mixtures=MDNLayout.mixtures_in(int(mdn[0]["shape"][-1]), dimension) or 0,
        )
        self._state = [np.zeros((1, units), np.float32) for _ in range(2 * layers)]
        super().__init__(sigmatemp=sigmatemp, pitemp=pitemp, seed=seed)

    def _match_states(self, outputs: list[dict[str, Any]], layers: int) -> list[int]:
        """Output indices of h0, c0, h1, c1, ... matched by name, else in file order."""
        named = {_port_name(o["name"]): o["index"] for o in outputs}
        wanted = [f"state_{kind}_{i}" for i in range(layers) for kind in ("h", "c")]
        if all(name in named for name in wanted):
            return [named[name] for name in wanted]
        states = [o["index"] for o in outputs if o["index"] != self._mdn_index]
        return states[: 2 * layers]

    def _advance(self, event: Sequence[float]) -> list[float]:
        it = self._interpreter
        x = np.asarray(event, np.float32).reshape(1, 1, -1) * np.float32(SCALE_FACTOR)
        it.set_tensor(self._inputs["inputs"]["index"], x)
        for i in range(self.architecture.layers):
            it.set_tensor(self._inputs[f"state_h_{i}"]["index"], self._state[2 * i])
            it.set_tensor(self._inputs[f"state_c_{i}"]["index"], self._state[2 * i + 1])
        it.invoke()
        self._state = [it.get_tensor(index).copy() for index in self._state_outputs]
        return it.get_tensor(self._mdn_index).reshape(-1).tolist()

    def step(self, event: Sequence[float]) -> np.ndarray:
        return np.asarray(self._advance(event), np.float32)

    def reset(self) -> None:
        for s in self._state:
            s.fill(0.0)


def _port_name(tensor_name: str) -> str:
    """'serving_default_state_h_0:0' -> 'state_h_0'."""
    name = tensor_name.split(":")[0]
    match = re.search(r"(inputs|state_[hc]_\d+)$", name)
    return match[1] if match else name
