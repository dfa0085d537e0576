"""`antiphon test-model`: load a model, predict, time it. A one-command install check."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from antiphon import config as config_module
from antiphon.model import loader
from antiphon.model.presets import Architecture


def run_test(
    file: Path | None,
    config_file: Path | None,
    predictions: int,
    seed: int | None,
    echo: Callable[[str], None] = print,
) -> None:
    config = None
    if config_file is not None or Path("config.toml").is_file():
        config = config_module.load(config_file or Path("config.toml"))
    path = loader.configured_model_file(config, file)
    temperatures = {}
    if config is not None:
        temperatures = {"sigmatemp": config.model.sigmatemp, "pitemp": config.model.pitemp}

    started = time.perf_counter()
    if path is None:
        dimension = config.model.dimension if config else 9
        size = config.model.size if config else "s"
        predictor = loader.fresh_model(
            Architecture.from_size(dimension, size), seed=seed, **temperatures
        )
        source = "a fresh untrained model (no model configured or bundled for this dimension)"
    else:
        predictor = loader.open_model(path, seed=seed, **temperatures)
        source = str(path)
    load_ms = (time.perf_counter() - started) * 1e3
    arch = predictor.architecture
    echo(f"model: {source}")
    echo(
        f"       {arch.describe()}, {arch.parameter_count:,} parameters, loaded in {load_ms:.1f} ms"
    )

    event = [0.1] + [0.5] * (arch.dimension - 1)
    times = np.empty(predictions)
    dts = np.empty(predictions)
    for i in range(predictions):
        t0 = time.perf_counter_ns()
        event = predictor.generate(event)
        times[i] = time.perf_counter_ns() - t0
        dts[i] = event[0]
    us = times / 1e3
    echo(
        f"{predictions} predictions: p50 {np.percentile(us, 50):.1f} µs, "
        f"p99 {np.percentile(us, 99):.1f} µs, max {us.max():.1f} µs "
        f"({predictions / (times.sum() / 1e9):,.0f} predictions/s)"
    )
    echo(
        f"predicted dt: median {np.median(dts) * 1e3:.1f} ms; last event: "
        + ", ".join(f"{v:.3f}" for v in event)
    )
    echo("OK: the model loads and predicts.")
