"""`antiphon bench`: the numbers behind antiphon's performance budgets.

Measures what a musician feels: how long a prediction takes for every model size, how
fast the command starts, how long a model takes to load and how much memory playing
needs. Timings are reported as medians over several rounds, because a shared machine
has slow phases that one round can land in.
"""

from __future__ import annotations

import gc
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from antiphon.bench.rows import Row, to_markdown
from antiphon.model import files, loader
from antiphon.model.mdrnn import MDRNN, Weights
from antiphon.model.presets import SIZES, Architecture


def prediction_latency(quick: bool) -> list[Row]:
    """Per-prediction time of ``generate`` (LSTM step + sampling) for every preset.

    A shared virtual machine runs fast or slow for minutes at a time, so the rounds
    take turns across all presets: a slow minute slows each of them, not one. A fixed
    piece of work without a model is timed with them as a yardstick, and the pauses the
    machine itself takes from a busy loop are counted: a step that a pause lands in
    takes that much longer, whatever the step computes.
    """
    rounds, steps = (2, 1000) if quick else (5, 5000)
    cases: dict[str, Callable[[], object]] = {"reference: fixed work, no model": _fixed_work}
    for dimension in (4, 9):
        for size in SIZES:
            model = MDRNN(Weights.random(Architecture.from_size(dimension, size), 0), seed=0)
            event = [0.1] + [0.5] * (dimension - 1)
            cases[f"{size:>3} D={dimension}"] = lambda m=model, e=event: m.generate(e)
    p50s: dict[str, list[float]] = {name: [] for name in cases}
    p99s: dict[str, list[float]] = {name: [] for name in cases}
    gc.collect()
    gc.freeze()  # as the engine does once it has started
    for _ in range(rounds):
        for name, step in cases.items():
            for _ in range(steps // 10):  # warm caches and clocks
                step()
            times = np.empty(steps)
            for i in range(steps):
                t0 = time.perf_counter_ns()
                step()
                times[i] = time.perf_counter_ns() - t0
            p50s[name].append(np.percentile(times, 50) / 1e3)
            p99s[name].append(np.percentile(times, 99) / 1e3)
    gc.unfreeze()
    return [_pauses(1.0 if quick else 5.0)] + [
        Row(
            "prediction (µs)",
            name,
            f"p50 {statistics.median(p50s[name]):7.1f}  p99 {statistics.median(p99s[name]):7.1f}",
            "p50 ≤ 25, p99 ≤ 60" if name == "  s D=9" else "",
        )
        for name in cases
    ]


def _fixed_work() -> int:
    return sum(range(600))


def _pauses(seconds: float) -> Row:
    """How often, and for how long, a busy loop stops making progress (> 5 µs)."""
    clock = time.perf_counter_ns
    pauses = []
    last = clock()
    end = last + int(seconds * 1e9)
    while last < end:
        now = clock()
        if now - last > 5000:
            pauses.append(now - last)
        last = now
    us = np.array(pauses or [0]) / 1e3
    return Row(
        "prediction (µs)",
        "machine: pauses of a busy loop",
        f"{len(pauses) / seconds:.0f} a second, p50 {np.percentile(us, 50):.1f}  "
        f"p90 {np.percentile(us, 90):.1f}  ({us.sum() / seconds / 1e4:.2f} % of the time)",
    )


def _python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def startup(quick: bool) -> list[Row]:
    """Import times measured inside fresh interpreters, and `antiphon --help` wall time."""
    repeats = 3 if quick else 7
    rows = []
    for module in ("antiphon", "antiphon.cli"):
        code = (
            "import time; t = time.perf_counter(); import "
            + module
            + "; print(time.perf_counter() - t)"
        )
        ms = statistics.median(float(_python(code)) * 1e3 for _ in range(repeats))
        rows.append(Row("start-up (ms)", f"import {module}", f"{ms:.1f}"))
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "antiphon", "--help"], capture_output=True, check=True
        )
        walls.append((time.perf_counter() - t0) * 1e3)
    rows.append(
        Row(
            "start-up (ms)",
            "antiphon --help (whole process)",
            f"{statistics.median(walls):.0f}",
            "≤ 300",
        )
    )
    heavy = _python(
        "import sys, antiphon.cli; print(' '.join(m for m in "
        "('torch', 'h5py', 'matplotlib', 'tensorflow') if m in sys.modules))"
    )
    rows.append(
        Row("start-up (ms)", "heavy modules imported by antiphon.cli", heavy or "none", "none")
    )
    return rows


def model_loading(quick: bool) -> list[Row]:
    """Time to open a size-s model file and have it ready to predict; and memory."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.safetensors"
        files.save(path, files.ModelFile(Weights.random(Architecture.from_size(9, "s"), 0)))
        times = []
        for _ in range(5 if quick else 20):
            t0 = time.perf_counter()
            loader.open_model(path)
            times.append((time.perf_counter() - t0) * 1e3)
        code = (
            "import psutil; from antiphon.model import loader\n"
            f"m = loader.open_model({str(path)!r}); e = [0.1] + [0.5] * 8\n"
            "for _ in range(1000): e = m.generate(e)\n"
            "print(psutil.Process().memory_info().rss / 2**20)"
        )
        rss = float(_python(code))
    return [
        Row("model", "load size s D=9 .safetensors (ms)", f"{statistics.median(times):.2f}"),
        Row("model", "resident memory after load + 1000 predictions (MB)", f"{rss:.1f}"),
    ]


def playing(quick: bool) -> list[Row]:
    """`antiphon run` itself: start-up, idle CPU, OSC latency, memory, onset timing."""
    from antiphon.bench import engine

    return engine.idle_and_latency(quick) + engine.onset_accuracy(quick)


SECTIONS: list[Callable[[bool], list[Row]]] = [prediction_latency, startup, model_loading, playing]


def run(
    *, markdown: Path | None = None, quick: bool = False, echo: Callable[[str], None] = print
) -> list[Row]:
    rows: list[Row] = []
    for section in SECTIONS:
        new = section(quick)
        for row in new:
            budget = f"   (budget {row.budget})" if row.budget else ""
            echo(f"{row.section:<16} {row.name:<44} {row.value}{budget}")
        rows += new
    if markdown:
        markdown.write_text(to_markdown(rows), encoding="utf-8")
        echo(f"wrote {markdown}")
    return rows
