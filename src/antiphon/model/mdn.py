"""Mixture density maths in NumPy: the head's activation, sampling and the NLL.

An MDN vector is laid out ``[mus | sigmas | logits]``, component-major: component m
owns ``mus[m*D:(m+1)*D]`` and ``sigmas[m*D:(m+1)*D]``. Everything here works in the
network's x10-scaled space; callers scale events in and samples out.
"""

from __future__ import annotations

import math

import numpy as np

from antiphon.model.presets import SIGMA_EPSILON

LOG_2PI = math.log(2.0 * math.pi)


def split(mdn: np.ndarray, dimension: int, mixtures: int) -> tuple[np.ndarray, ...]:
    """View an MDN vector (..., M*(2D+1)) as mus, sigmas (..., M, D) and logits (..., M)."""
    md = mixtures * dimension
    lead = mdn.shape[:-1]
    mus = mdn[..., :md].reshape(*lead, mixtures, dimension)
    sigmas = mdn[..., md : 2 * md].reshape(*lead, mixtures, dimension)
    logits = mdn[..., 2 * md :]
    return mus, sigmas, logits


def sigma_activation(x: np.ndarray) -> np.ndarray:
    """elu(x) + 1 + 1e-7, written as max(x, 0) + exp(min(x, 0)) so nothing overflows."""
    return np.maximum(x, 0) + np.exp(np.minimum(x, 0)) + np.asarray(SIGMA_EPSILON, x.dtype)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Mixture weights from logits; temperature < 1 sharpens, > 1 flattens."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def nll(mdn: np.ndarray, target: np.ndarray, dimension: int, mixtures: int) -> np.ndarray:
    """Negative log-likelihood of each target under its mixture, in float64.

    mdn (..., M*(2D+1)), target (..., D) -> (...). Summed over dimensions, this is the
    per-event loss IMPSY reports when given x10-scaled targets.
    """
    mus, sigmas, logits = split(np.asarray(mdn, np.float64), dimension, mixtures)
    y = np.asarray(target, np.float64)[..., None, :]  # (..., 1, D)
    z = (y - mus) / sigmas  # (..., M, D)
    log_normal = -0.5 * (z * z).sum(-1) - np.log(sigmas).sum(-1) - 0.5 * dimension * LOG_2PI
    log_weights = logits - _logsumexp(logits)[..., None]  # (..., M)
    return -_logsumexp(log_weights + log_normal)


def _logsumexp(x: np.ndarray) -> np.ndarray:
    top = x.max(axis=-1)
    top = np.where(np.isfinite(top), top, 0.0)
    return top + np.log(np.exp(x - top[..., None]).sum(-1))


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
        sigmatemp: float = 0.01,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.dimension = dimension
        self.mixtures = mixtures
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
        d, m = self.dimension, self.mixtures
        inverse_pitemp = self._inverse_pitemp
        logits = mdn[2 * m * d :]
        gumbel = self._gumbel[n]
        best, k = -math.inf, 0
        for j in range(m):
            score = logits[j] * inverse_pitemp + gumbel[j]
            if score > best:
                best, k = score, j
        mus = mdn[k * d : (k + 1) * d]
        sigmas = mdn[(m + k) * d : (m + k + 1) * d]
        scale = self._noise_scale
        if activated:
            return [
                mu + s * scale * z for mu, s, z in zip(mus, sigmas, self._normal[n], strict=False)
            ]
        exp = math.exp
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
