"""Pictures of performances and training runs (PNG files, matplotlib's Agg backend).

Plotting is optional (the ``plot`` extra): without matplotlib these functions raise
PlotUnavailable, whose message says how to install it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from antiphon.errors import AntiphonError, needs_extra
from antiphon.model.files import write_atomically

MAX_GAP = 10.0
"""Pauses longer than this (seconds) are drawn this long, so long silences leave room."""


class PlotUnavailable(AntiphonError):
    def __init__(self) -> None:
        super().__init__(needs_extra("plotting needs matplotlib", "plot"))


def _save(plt: Any, fig: Any, path: Path) -> Path:
    """Write a figure as a PNG atomically: a process stopped while drawing leaves the
    old file or none, never half of one."""
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    write_atomically(path, png.getvalue())
    return path


def require() -> None:
    """Raise PlotUnavailable now rather than after a long computation."""
    _pyplot()


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable() from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def performance(
    events: np.ndarray,
    path: str | Path,
    *,
    title: str = "",
    boundaries: np.ndarray | None = None,
) -> Path:
    """Every control over time, and each event's dt, as a PNG.

    ``events`` are (N, D) rows ``[dt, v1, ...]``; ``boundaries`` are row indices where
    new performances start (drawn as vertical lines).
    """
    plt = _pyplot()
    path = Path(path)
    dt = events[:, 0].astype(np.float64)
    t = np.cumsum(np.minimum(dt, MAX_GAP))
    controls = events.shape[1] - 1
    fig, axes = plt.subplots(
        controls + 1, 1, sharex=True, figsize=(11, 1.0 + 0.9 * (controls + 1)), squeeze=False
    )
    axes = axes[:, 0]
    axes[0].scatter(t, np.maximum(dt, 1e-4) * 1e3, s=1, color="0.3", linewidths=0)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("dt (ms)")
    for i in range(controls):
        ax = axes[i + 1]
        ax.plot(t, events[:, i + 1], drawstyle="steps-post", linewidth=0.7, color=f"C{i % 10}")
        ax.set_ylim(-0.05, 1.05)
        ax.set_ylabel(f"x{i + 1}", rotation=0, labelpad=12)
        ax.set_yticks([0, 1])
    for start in boundaries if boundaries is not None else []:
        for ax in axes:
            ax.axvline(t[start] if start < len(t) else t[-1], color="0.6", linewidth=0.6)
    axes[-1].set_xlabel(f"time (s; pauses over {MAX_GAP:g} s drawn as {MAX_GAP:g} s)")
    fig.suptitle(title or path.stem, fontsize=10)
    fig.tight_layout()
    return _save(plt, fig, path)


def loss_curves(
    path: str | Path,
    history: Sequence[tuple[int, float, float]],
    best_epoch: int,
    title: str,
) -> Path:
    """Training and validation NLL per epoch (``history``: epoch, training NLL,
    validation NLL), with the best epoch marked."""
    plt = _pyplot()
    path = Path(path)
    epochs, train_nll, val_nll = zip(*history, strict=True) if history else ((), (), ())
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(epochs, train_nll, label="training")
    ax.plot(epochs, val_nll, label="validation")
    ax.axvline(best_epoch, color="0.5", linestyle=":", label=f"best (epoch {best_epoch})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("NLL per event (x10-scaled)")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    return _save(plt, fig, path)
