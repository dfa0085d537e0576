"""The mixture density head's activation and layout, and sampling from its mixture.

An MDN vector is laid out ``[mus | sigmas | logits]`` (``presets.MDNLayout``). The
plain equations of the whole network, and the loss, are in ``model/reference.py``.
Everything here works in the network's x10-scaled space; callers scale events in and
samples out.
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np

from antiphon.limits import DEFAULT_SIGMATEMP
from antiphon.model.presets import SIGMA_EPSILON, MDNLayout

A = TypeVar("A")  # a NumPy array or a PyTorch tensor


def split(mdn: A, dimension: int, mixtures: int) -> tuple[A, A, A]:
    """View an MDN vector (..., M*(2D+1)) as mus, sigmas (..., M, D) and logits (..., M).

    Works on NumPy arrays and PyTorch tensors alike: training reads the vectors its
    network outputs through this same function."""
    layout = MDNLayout(dimension, mixtures)
    lead = mdn.shape[:-1]  # type: ignore[attr-defined]
    mus = mdn[..., layout.mus].reshape(*lead, mixtures, dimension)  # type: ignore[index]
    sigmas = mdn[..., layout.sigmas].reshape(*lead, mixtures, dimension)  # type: ignore[index]
    return mus, sigmas, mdn[..., layout.logits]  # type: ignore[index]


def sigma_activation(x: A) -> A:
    """elu(x) + 1 + SIGMA_EPSILON: a standard deviation from a head output, > 0.

    Written as max(x, 0) + e^(x - max(x, 0)), which never overflows and has elu's
    gradient (1 at zero too), with operations NumPy arrays and PyTorch tensors share:
    the instrument and the training network use this one definition. (The sampler
    applies it to single floats, inline.)"""
    positive = x.clip(min=0)  # type: ignore[attr-defined]
    return positive + math.e ** (x - positive) + SIGMA_EPSILON  # type: ignore[operator]


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Mixture weights from logits; temperature < 1 sharpens, > 1 flattens."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class MixtureSampler:
    """Draws events from the MDN head, one call per event, for the real-time path.

    It reads the head's *pre-activation* output ``[mus | raw sigmas | logits]`` and
    applies the sigma activation only to the chosen component: D values instead of
    M*D. The arithmetic is done on Python floats because, for a handful of numbers,
    that is several times cheaper than NumPy calls. Random numbers are drawn from a
    seedable NumPy generator in blocks, so a step costs no generator calls.

    Temperatures mean what they mean in IMPSY configs: ``pitemp`` divides the logits
    before the softmax; ``sigmatemp`` scales each component's *variance*, so the noise
    is multiplied by sqrt(sigmatemp). The component is chosen with the Gumbel-max
    trick (argmax of logits/pitemp + Gumbel noise), which draws from exactly
    softmax(logits/pitemp).
    """

    BLOCK = 512

    def __init__(
        self,
        dimension: int,
        mixtures: int,
        *,
        pitemp: float = 1.0,
        sigmatemp: float = DEFAULT_SIGMATEMP,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.dimension = dimension
        self.mixtures = mixtures
        layout = MDNLayout(dimension, mixtures)
        self._sigmas_start, self._logits_start = layout.sigmas.start, layout.logits.start
        self.pitemp = pitemp
        self.sigmatemp = sigmatemp
        self.rng = rng if rng is not None else np.random.default_rng()

    @property
    def rng(self) -> np.random.Generator:
        return self._rng

    @rng.setter
    def rng(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._next = self.BLOCK  # draw a fresh block on the next call

    @property
    def pitemp(self) -> float:
        return self._pitemp

    @pitemp.setter
    def pitemp(self, value: float) -> None:
        self._pitemp = _positive("pitemp", value)
        self._inverse_pitemp = 1.0 / max(self._pitemp, 1e-6)

    @property
    def sigmatemp(self) -> float:
        return self._sigmatemp

    @sigmatemp.setter
    def sigmatemp(self, value: float) -> None:
        self._sigmatemp = _positive("sigmatemp", value, allow_zero=True)
        self._noise_scale = math.sqrt(self._sigmatemp)

    def _refill(self) -> None:
        self._gumbel = self._rng.gumbel(size=(self.BLOCK, self.mixtures)).tolist()
        self._normal = self._rng.standard_normal((self.BLOCK, self.dimension)).tolist()
        self._next = 0

    def sample(self, mdn: list[float], *, activated: bool = False) -> list[float]:
        """One draw (D floats, x10-scaled space) from an MDN vector given as floats.

        ``activated`` says whether its sigmas already went through the activation (a
        full MDN vector) or are the head's raw output (the real-time path).
        """
        if self._next == self.BLOCK:
            self._refill()
        n = self._next
        self._next = n + 1
        d = self.dimension
        inverse_pitemp = self._inverse_pitemp
        logits = mdn[self._logits_start :]
        gumbel = self._gumbel[n]
        best, k = -math.inf, 0
        for j in range(self.mixtures):
            score = logits[j] * inverse_pitemp + gumbel[j]
            if score > best:
                best, k = score, j
        mus = mdn[k * d : (k + 1) * d]  # component k's, as MDNLayout lays them out
        first_sigma = self._sigmas_start + k * d
        sigmas = mdn[first_sigma : first_sigma + d]
        scale = self._noise_scale
        if activated:
            return [
                mu + s * scale * z for mu, s, z in zip(mus, sigmas, self._normal[n], strict=False)
            ]
        exp = math.exp  # sigma_activation, inline on floats: a call per value costs more
        return [
            mu + (s + 1.0 + SIGMA_EPSILON if s > 0.0 else exp(s) + SIGMA_EPSILON) * scale * z
            for mu, s, z in zip(mus, sigmas, self._normal[n], strict=False)
        ]


def _positive(name: str, value: float, allow_zero: bool = False) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value}")
    return value
