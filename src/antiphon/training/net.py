"""The MDRNN in PyTorch, for training only: the maths of ``model/reference.py``, batched.

An instrument never imports this file. Weights convert both ways with
``from_weights`` / ``to_weights``; PyTorch's LSTM uses the same gate order as Keras
(i, f, g, o) and has two biases whose sum is Keras' one.

Shapes: B batch, T time steps, D dimension, U units, M mixtures.
Inputs and targets are x10-scaled events (the training data is scaled once, up front).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from antiphon.model.mdn import sigma_activation, split
from antiphon.model.mdrnn import Dense, LSTMLayer, Weights
from antiphon.model.presets import HEADS, Architecture

State = tuple[torch.Tensor, torch.Tensor]  # h, c: (L, B, U) each


class MDRNNNet(nn.Module):
    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.architecture = arch
        u, widths = arch.units, arch.mdn.widths
        self.lstm = nn.LSTM(arch.dimension, u, num_layers=arch.layers, batch_first=True)
        self.mus = nn.Linear(u, widths["mus"])
        self.sigmas = nn.Linear(u, widths["sigmas"])
        self.pis = nn.Linear(u, widths["pis"])

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """x (B, T, D) -> MDN vectors (B, T, M*(2D+1)) and the final state."""
        h, state = self.lstm(x, state)  # (B, T, U)
        sigmas = sigma_activation(self.sigmas(h))  # (B, T, M*D)
        return torch.cat([self.mus(h), sigmas, self.pis(h)], dim=-1), state


def mdn_nll(mdn: torch.Tensor, target: torch.Tensor, arch: Architecture) -> torch.Tensor:
    """Negative log-likelihood per event: mdn (..., M*(2D+1)), target (..., D) -> (...)."""
    d = arch.dimension
    mus, sigmas, logits = split(mdn, d, arch.mixtures)  # (..., M, D), (..., M, D), (..., M)
    z = (target.unsqueeze(-2) - mus) / sigmas  # (..., M, D)
    log_normal = -0.5 * z.square().sum(-1) - sigmas.log().sum(-1) - 0.5 * d * math.log(2 * math.pi)
    return -torch.logsumexp(F.log_softmax(logits, dim=-1) + log_normal, dim=-1)


def from_weights(weights: Weights) -> MDRNNNet:
    """A network holding exactly these weights."""
    net = MDRNNNet(weights.architecture)
    with torch.no_grad():
        for i, layer in enumerate(weights.lstm):
            getattr(net.lstm, f"weight_ih_l{i}").copy_(torch.from_numpy(layer.kernel.T))
            getattr(net.lstm, f"weight_hh_l{i}").copy_(torch.from_numpy(layer.recurrent_kernel.T))
            getattr(net.lstm, f"bias_ih_l{i}").copy_(torch.from_numpy(layer.bias))
            getattr(net.lstm, f"bias_hh_l{i}").zero_()
        for name in HEADS:
            dense: Dense = getattr(weights, name)
            linear: nn.Linear = getattr(net, name)
            linear.weight.copy_(torch.from_numpy(dense.kernel.T))
            linear.bias.copy_(torch.from_numpy(dense.bias))
    return net


def to_weights(net: MDRNNNet) -> Weights:
    """The network's weights in antiphon's (Keras) layout, float32."""

    def numpy(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().to(torch.float32).numpy().copy()

    layers = []
    for i in range(net.architecture.layers):
        bias = getattr(net.lstm, f"bias_ih_l{i}") + getattr(net.lstm, f"bias_hh_l{i}")
        layers.append(
            LSTMLayer(
                kernel=numpy(getattr(net.lstm, f"weight_ih_l{i}").T),
                recurrent_kernel=numpy(getattr(net.lstm, f"weight_hh_l{i}").T),
                bias=numpy(bias),
            )
        )
    heads = {
        name: Dense(numpy(getattr(net, name).weight.T), numpy(getattr(net, name).bias))
        for name in HEADS
    }
    return Weights(lstm=layers, **heads)
