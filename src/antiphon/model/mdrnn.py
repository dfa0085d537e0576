"""The MDRNN without an ML framework: stacked LSTM + mixture density head in NumPy.

The plain equations are ``model/reference.py``; ``MDRNN`` computes the same (tested),
rearranged for speed as described below.

Weights are kept in Keras' layout because IMPSY files use it and PyTorch converts to
it in one transpose: per layer a kernel (in, 4U), a recurrent kernel (U, 4U) and one
bias (4U,), gate blocks in column order i, f, g, o.

A step on an instrument has a budget of tens of microseconds, and there each NumPy
call costs most of a microsecond whatever its size, so ``MDRNN`` rearranges the
weights once to make a step take few calls, all on contiguous float32 buffers:

- the input and every layer's h live in one vector ``[x | 1 | h0 | 1 | h1 | ... | 1]``,
  so layer l reads its input, a constant 1 and its own previous h as one slice and
  one matmul with ``[kernel; bias; recurrent kernel]`` gives all its gates;
- the x10 input scaling is folded into the first kernel;
- gate columns are reordered to o, i, f, g and the three sigmoid blocks prescaled by
  1/2, so one ``tanh`` gives every activation (sigmoid(z) = (1 + tanh(z/2)) / 2);
- each layer's gates sit in one buffer ``[o | i | f | g | c]``, so the cell update
  ``c = i*g + f*c`` is one product of two adjacent slices and one sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from antiphon.limits import DEFAULT_SIGMATEMP
from antiphon.model.mdn import MixtureSampler, sigma_activation
from antiphon.model.presets import HEADS, MIN_DT, SCALE_FACTOR, Architecture


@dataclass
class LSTMLayer:
    kernel: np.ndarray  # (in, 4U)
    recurrent_kernel: np.ndarray  # (U, 4U)
    bias: np.ndarray  # (4U,)

    def __post_init__(self) -> None:
        self.kernel, self.recurrent_kernel, self.bias = map(
            _f32, (self.kernel, self.recurrent_kernel, self.bias)
        )


@dataclass
class Dense:
    kernel: np.ndarray  # (U, out)
    bias: np.ndarray  # (out,)

    def __post_init__(self) -> None:
        self.kernel, self.bias = _f32(self.kernel), _f32(self.bias)


@dataclass
class Weights:
    """Every trained number of an MDRNN, in Keras layout, float32."""

    lstm: list[LSTMLayer]
    mus: Dense  # out = M*D
    sigmas: Dense  # out = M*D, before the sigma activation
    pis: Dense  # out = M (logits)

    @property
    def architecture(self) -> Architecture:
        dimension, four_units = self.lstm[0].kernel.shape
        return Architecture(
            dimension=dimension,
            units=four_units // 4,
            layers=len(self.lstm),
            mixtures=self.pis.bias.shape[0],
        )

    def tensors(self) -> dict[str, np.ndarray]:
        """Flat name -> array mapping, as stored in model files."""
        out: dict[str, np.ndarray] = {}
        for i, layer in enumerate(self.lstm):
            out[f"lstm.{i}.kernel"] = layer.kernel
            out[f"lstm.{i}.recurrent_kernel"] = layer.recurrent_kernel
            out[f"lstm.{i}.bias"] = layer.bias
        for name in HEADS:
            dense: Dense = getattr(self, name)
            out[f"mdn.{name}.kernel"] = dense.kernel
            out[f"mdn.{name}.bias"] = dense.bias
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray]) -> Weights:
        """Inverse of ``tensors()``; raises KeyError or ValueError on a malformed mapping."""
        layers = []
        while f"lstm.{len(layers)}.kernel" in tensors:
            i = len(layers)
            layers.append(
                LSTMLayer(
                    kernel=tensors[f"lstm.{i}.kernel"],
                    recurrent_kernel=tensors[f"lstm.{i}.recurrent_kernel"],
                    bias=tensors[f"lstm.{i}.bias"],
                )
            )
        heads = {
            name: Dense(tensors[f"mdn.{name}.kernel"], tensors[f"mdn.{name}.bias"])
            for name in HEADS
        }
        weights = cls(lstm=layers, **heads)
        weights.check()
        return weights

    def check(self) -> None:
        """Raise ValueError unless every shape agrees with one architecture."""
        if not self.lstm:
            raise ValueError("no LSTM layers")
        arch = self.architecture
        d, u = arch.dimension, arch.units
        expected: dict[str, tuple[int, ...]] = {}
        for i in range(arch.layers):
            expected[f"lstm.{i}.kernel"] = (d if i == 0 else u, 4 * u)
            expected[f"lstm.{i}.recurrent_kernel"] = (u, 4 * u)
            expected[f"lstm.{i}.bias"] = (4 * u,)
        for name, width in arch.mdn.widths.items():
            expected[f"mdn.{name}.kernel"] = (u, width)
            expected[f"mdn.{name}.bias"] = (width,)
        for name, array in self.tensors().items():
            if array.shape != expected[name]:
                raise ValueError(f"{name} has shape {array.shape}, expected {expected[name]}")
            if not np.all(np.isfinite(array)):
                raise ValueError(f"{name} contains NaN or infinite values")

    @classmethod
    def random(cls, arch: Architecture, seed: int | None = None) -> Weights:
        """An untrained network, initialised as Keras does (Glorot kernels,
        orthogonal recurrent kernels, forget-gate bias 1)."""
        rng = np.random.default_rng(seed)
        d, u = arch.dimension, arch.units
        layers = []
        for i in range(arch.layers):
            fan_in = d if i == 0 else u
            bias = np.zeros(4 * u, np.float32)
            bias[u : 2 * u] = 1.0
            recurrent = np.concatenate([_orthogonal(rng, u) for _ in range(4)], axis=1)
            layers.append(LSTMLayer(_glorot(rng, fan_in, 4 * u), recurrent, bias))
        heads = {
            name: Dense(_glorot(rng, u, width), np.zeros(width, np.float32))
            for name, width in arch.mdn.widths.items()
        }
        return cls(lstm=layers, **heads)


class Predictor:
    """What the engine plays: a network with state, temperatures and a sampler.

    Subclasses provide ``_advance`` (feed one event, return the MDN vector as floats),
    ``step``, ``reset`` and ``state``; sampling and the event conventions live here so
    every backend generates events the same way.
    """

    architecture: Architecture
    _raw_sigmas = False  # does _advance return pre-activation sigmas?

    def __init__(self, *, sigmatemp: float, pitemp: float, seed: int | None) -> None:
        arch = self.architecture
        self.sampler = MixtureSampler(
            arch.dimension,
            arch.mixtures,
            pitemp=pitemp,
            sigmatemp=sigmatemp,
            rng=np.random.default_rng(seed),
        )

    @property
    def sigmatemp(self) -> float:
        return self.sampler.sigmatemp

    @sigmatemp.setter
    def sigmatemp(self, value: float) -> None:
        self.sampler.sigmatemp = value

    @property
    def pitemp(self) -> float:
        return self.sampler.pitemp

    @pitemp.setter
    def pitemp(self, value: float) -> None:
        self.sampler.pitemp = value

    def seed(self, seed: int | None) -> None:
        """Restart the random stream, so a run can be repeated exactly."""
        self.sampler.rng = np.random.default_rng(seed)

    def _advance(self, event: Sequence[float]) -> list[float]:
        raise NotImplementedError

    def step(self, event: Sequence[float]) -> np.ndarray:
        """Feed one unscaled event (D,) and return the MDN vector."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the performance so far."""
        raise NotImplementedError

    def generate(self, event: Sequence[float]) -> list[float]:
        """Continue the performance after ``event``: the next event, unscaled.

        Controls are clipped to [0, 1] and dt floored at MIN_DT. Events go in and come
        out as plain floats because that is what channels send and logs write.
        """
        mdn = self._advance(event)
        x = self.sampler.sample(mdn, activated=not self._raw_sigmas)  # x10-scaled
        dt = x[0] / SCALE_FACTOR
        top = SCALE_FACTOR
        return [dt if dt > MIN_DT else MIN_DT] + [
            0.0 if v < 0.0 else 1.0 if v > top else v / top for v in x[1:]
        ]


class MDRNN(Predictor):
    """The LSTM + MDN in NumPy (see the module docstring for the buffer layout)."""

    _raw_sigmas = True

    def __init__(
        self,
        weights: Weights,
        *,
        sigmatemp: float = DEFAULT_SIGMATEMP,
        pitemp: float = 1.0,
        seed: int | None = None,
    ) -> None:
        weights.check()
        self.weights = weights
        self.architecture = arch = weights.architecture
        super().__init__(sigmatemp=sigmatemp, pitemp=pitemp, seed=seed)
        d, u = arch.dimension, arch.units
        self._v = np.zeros(d + arch.layers * (u + 1) + 1, np.float32)
        self._v[d :: u + 1] = 1.0  # the constant after x and after every h
        self._x = self._v[:d]
        self._tmp = np.empty(u, np.float32)
        gate_order = np.r_[3 * u : 4 * u, 0 : 2 * u, 2 * u : 3 * u]  # i f g o -> o i f g
        prescale = np.ones(4 * u, np.float32)
        prescale[: 3 * u] = 0.5
        self._layers: list[_LayerBuffers] = []
        for i, layer in enumerate(weights.lstm):
            start = 0 if i == 0 else d + 1 + (i - 1) * (u + 1)
            kernel = layer.kernel * (SCALE_FACTOR if i == 0 else 1.0)
            fused = np.concatenate([kernel, layer.bias[None, :], layer.recurrent_kernel])
            w = np.ascontiguousarray(fused[:, gate_order] * prescale, np.float32)  # (in+1+U, 4U)
            gates = np.zeros(5 * u, np.float32)  # o | i | f | g | c
            products = np.empty(2 * u, np.float32)
            self._layers.append(
                _LayerBuffers(
                    xh=self._v[start : start + w.shape[0]],
                    w=w,
                    z=gates[: 4 * u],
                    sigmoid_gates=gates[: 3 * u],
                    i_f=gates[u : 3 * u],
                    g_c=gates[3 * u :],
                    products=products,
                    ig=products[:u],
                    fc=products[u:],
                    c=gates[4 * u :],
                    o=gates[:u],
                    h=self._v[start + w.shape[0] - u : start + w.shape[0]],
                )
            )
        head = np.concatenate(
            [
                np.concatenate([dense.kernel, dense.bias[None, :]])
                for dense in (getattr(weights, name) for name in HEADS)
            ],
            axis=1,
        )
        self._head_in = self._v[-(u + 1) :]  # [h_last | 1]
        self._head = np.ascontiguousarray(head, np.float32)  # (U+1, M*(2D+1))
        self._mdn = np.empty(arch.mdn_width, np.float32)
        self._sigmas = self._mdn[arch.mdn.sigmas]

    # -- state ----------------------------------------------------------------
    def reset(self) -> None:
        """Forget the performance so far: zero every h and c."""
        for layer in self._layers:
            layer.h.fill(0.0)
            layer.c.fill(0.0)

    @property
    def state(self) -> list[np.ndarray]:
        """Copies of h0, c0, h1, c1, ... (the order IMPSY files and references use)."""
        return [array.copy() for layer in self._layers for array in (layer.h, layer.c)]

    @state.setter
    def state(self, values: list[np.ndarray]) -> None:
        if len(values) != 2 * len(self._layers):
            raise ValueError(f"expected {2 * len(self._layers)} state arrays, got {len(values)}")
        for layer, h, c in zip(self._layers, values[::2], values[1::2], strict=True):
            layer.h[:] = h
            layer.c[:] = c

    # -- the maths ------------------------------------------------------------
    def _advance(self, event: Sequence[float]) -> list[float]:
        self._x[:] = event
        tanh, dot, multiply, add = np.tanh, np.dot, np.multiply, np.add
        tmp, half = self._tmp, _HALF
        for xh, w, z, sig, i_f, g_c, p, ig, fc, c, o, h in self._layers:  # _LayerBuffers
            dot(xh, w, z)  # (in+1+U,) @ (in+1+U, 4U) -> (4U,)
            tanh(z, z)
            multiply(sig, half, sig)
            add(sig, half, sig)
            multiply(i_f, g_c, p)  # [i, f] * [g, c] -> [i*g, f*c]
            add(ig, fc, c)
            tanh(c, tmp)
            multiply(o, tmp, h)
        dot(self._head_in, self._head, self._mdn)  # (U+1,) @ (U+1, M*(2D+1))
        return self._mdn.tolist()

    def step(self, event: Sequence[float]) -> np.ndarray:
        """Feed one unscaled event (D,) and return the MDN vector (a reused buffer)."""
        self._advance(event)
        self._sigmas[:] = sigma_activation(self._sigmas)
        return self._mdn


_HALF = np.float32(0.5)


class _LayerBuffers(NamedTuple):
    """Views into one layer's preallocated buffers (unpacked once per step)."""

    xh: np.ndarray  # [input | 1 | previous h], a slice of the shared state vector
    w: np.ndarray  # (in+1+U, 4U) fused kernel, bias and recurrent kernel
    z: np.ndarray  # (4U,) gate pre-activations, then activations: o | i | f | g
    sigmoid_gates: np.ndarray  # o | i | f
    i_f: np.ndarray
    g_c: np.ndarray  # g followed by the cell state c
    products: np.ndarray  # i*g | f*c
    ig: np.ndarray
    fc: np.ndarray
    c: np.ndarray
    o: np.ndarray
    h: np.ndarray  # written in place inside the shared state vector


def _f32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


def _glorot(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)


def _orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * np.sign(np.diag(r))).astype(np.float32)
