"""The MDRNN's maths on one page, in plain NumPy and float64: the specification.

An event (dt and the controls, D numbers) goes in; a mixture of M Gaussians over the
next event comes out. ``model/mdrnn.py`` (the instrument's step, rearranged for speed)
and ``training/net.py`` (PyTorch, for training) compute the same; the tests check both
against this file, which nothing else runs.

    event (D,) -> x10 -> LSTM layer 1 -> ... -> LSTM layer L -> h (U,) -> head -> MDN vector

The MDN vector is ``[mus | sigmas | logits]`` (``presets.MDNLayout``, read by
``mdn.split``); sigmas come out of ``mdn.sigma_activation``. Weights are in Keras'
layout (``mdrnn.Weights``). Shapes: D dimension, U units, M mixtures.
"""

from __future__ import annotations

import math

import numpy as np

from antiphon.model.mdn import sigma_activation, split
from antiphon.model.mdrnn import Dense, LSTMLayer, Weights
from antiphon.model.presets import SCALE_FACTOR

State = list[tuple[np.ndarray, np.ndarray]]
"""(h, c) of every layer, (U,) each."""


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def lstm_step(
    layer: LSTMLayer, x: np.ndarray, h: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM layer, one time step: Keras' equations and gate order (i, f, g, o)."""
    z = x @ layer.kernel + h @ layer.recurrent_kernel + layer.bias  # (4U,)
    i, f, g, o = np.split(z, 4)  # (U,) each: input, forget, candidate, output
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)  # (U,) keep some memory, write some
    h = sigmoid(o) * np.tanh(c)  # (U,) show some of it
    return h, c


def dense(layer: Dense, h: np.ndarray) -> np.ndarray:
    return h @ layer.kernel + layer.bias


def head(weights: Weights, h: np.ndarray) -> np.ndarray:
    """The mixture density head: the top layer's h (U,) -> an MDN vector (M*(2D+1),)."""
    mus = dense(weights.mus, h)  # (M*D,) the components' means
    sigmas = sigma_activation(dense(weights.sigmas, h))  # (M*D,) their standard deviations
    logits = dense(weights.pis, h)  # (M,) their weights, before a softmax
    return np.concatenate([mus, sigmas, logits])


def zero_state(weights: Weights) -> State:
    units = weights.architecture.units
    return [(np.zeros(units), np.zeros(units)) for _ in weights.lstm]


def step(weights: Weights, state: State, event: np.ndarray) -> tuple[np.ndarray, State]:
    """Feed one unscaled event (D,): the MDN vector for the next event, and the new state."""
    x = np.asarray(event, np.float64) * SCALE_FACTOR  # (D,) the network's scale
    after = []
    for layer, (h, c) in zip(weights.lstm, state, strict=True):
        h, c = lstm_step(layer, x, h, c)  # (U,), (U,)
        after.append((h, c))
        x = h  # the next layer's input
    return head(weights, x), after


def nll(mdn: np.ndarray, target: np.ndarray, dimension: int, mixtures: int) -> np.ndarray:
    """The loss: negative log-likelihood of each target under its mixture.

    mdn (..., M*(2D+1)), target (..., D), both x10-scaled -> (...). This is the per-event
    loss IMPSY reports; training minimises its mean.
    """
    mus, sigmas, logits = split(np.asarray(mdn, np.float64), dimension, mixtures)  # (..., M, D)
    y = np.asarray(target, np.float64)[..., None, :]  # (..., 1, D)
    z = (y - mus) / sigmas  # (..., M, D)
    log_normal = (  # (..., M) each component's log density: independent dimensions
        -0.5 * (z * z).sum(-1) - np.log(sigmas).sum(-1) - 0.5 * dimension * math.log(2 * math.pi)
    )
    log_weights = logits - logsumexp(logits)[..., None]  # (..., M) log softmax
    return -logsumexp(log_weights + log_normal)  # (...)


def logsumexp(x: np.ndarray) -> np.ndarray:
    """log(sum(exp(x))) over the last axis, without overflow."""
    top = x.max(axis=-1)
    top = np.where(np.isfinite(top), top, 0.0)
    return top + np.log(np.exp(x - top[..., None]).sum(-1))
