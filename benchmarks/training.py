"""Training quality and time to quality, antiphon against IMPSY's recipe (`make bench-train`).

For each IMPSY dataset (../shared/impsy/datasets), size s, IMPSY's validation split:

1. IMPSY's recipe, reproduced in PyTorch (the same maths: windows at every event,
   batch 64, constant Adam 1e-3, early stopping with patience 10): its best validation
   NLL is "IMPSY's best", and the epoch it came in tells how long IMPSY's own Keras
   training takes to get there (about 50 s per epoch on the 9-D set on the 2-core
   machine, in proportion to the number of windows for the others).
2. antiphon's recipe (the `antiphon train` defaults, with `--split impsy` so both are
   scored on the same windows), timed until its validation NLL first reaches IMPSY's
   best, and then to its own best.

Every epoch is logged with wall-clock and CPU time, the events computed and the
machine's load, because the machine may be shared: the events computed to reach a
loss do not depend on the load, and throughput is also measured in short bursts and
the fastest burst kept.

    python benchmarks/training.py [--datasets 4d,9d] [--markdown out.md] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np

from antiphon.data import dataset as datasets
from antiphon.training import windows
from antiphon.training.train import (
    IMPSY_SETTINGS,
    EpochRecord,
    Reporter,
    Settings,
    Trainer,
    fit,
)

IMPSY_DIR = Path(__file__).resolve().parents[2] / "shared" / "impsy" / "datasets"
FILES = {
    "4d": "training-dataset-4d-12ksmall.npz",
    "9d": "training-dataset-9d.npz",
}
IMPSY_KERAS_EPOCH_SECONDS_9D = 50.0  # IMPSY's Keras, 9-D set, this machine (issue 3)
THREADS = 2
SEED = 1


class Log(Reporter):
    """Keeps every epoch with its CPU time and the machine's load, and prints it."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.rows: list[dict] = []
        self.cpu0 = time.process_time()
        self.events = 0

    def end_epoch(self, record: EpochRecord, best: bool) -> None:
        self.events += record.windows * windows.WINDOW
        row = {
            **dataclasses.asdict(record),
            "cpu": time.process_time() - self.cpu0,
            "events": self.events,
            "load": os.getloadavg()[0],
        }
        self.rows.append(row)
        print(
            f"{self.label} epoch {record.epoch:>3}  val {record.val_nll:8.3f}"
            f"{' *' if best else '  '}  wall {record.seconds:7.1f}s  cpu {row['cpu']:7.1f}s  "
            f"events {self.events / 1e6:7.2f}M  load {row['load']:.2f}",
            flush=True,
        )


def throughput(
    data: datasets.Dataset, settings: Settings, batches: int = 12, rounds: int = 7
) -> float:
    """Training events per second of one recipe, fastest of several short bursts of
    the optimiser step training runs (``Trainer.step``: clipping and weight averaging
    included)."""
    trainer = Trainer(data, dataclasses.replace(settings, epochs=1))
    best = math.inf
    epoch = windows.plan_epoch(
        trainer.split.train,
        stride=settings.stride,
        batch_size=settings.batch_size,
        min_windows=batches * settings.batch_size,
        rng=np.random.default_rng(0),
    )
    batch_list = list(epoch)[:batches]
    for _ in range(rounds):
        started = time.perf_counter()
        for batch in batch_list:
            trainer.step(batch)
        best = min(best, time.perf_counter() - started)
    return batches * settings.batch_size * windows.WINDOW / best


def first_reaching(rows: list[dict], target: float) -> dict | None:
    return next((r for r in rows if r["val_nll"] <= target), None)


def bench_dataset(key: str, impsy_max_epochs: int, antiphon_max_minutes: float) -> dict:
    data = datasets.load(IMPSY_DIR / FILES[key])
    base = {"size": "s", "seed": SEED, "threads": THREADS, "patience": 10, "epochs": 100}
    impsy = Settings(**{**base, **IMPSY_SETTINGS, "epochs": impsy_max_epochs})
    ours = Settings(**{**base, "split": "impsy"})

    rates = {"impsy": throughput(data, impsy), "antiphon": throughput(data, ours)}
    print(f"{key}: training throughput (best burst) {rates}", flush=True)

    impsy_log = Log(f"{key} IMPSY  ")
    impsy_run = fit(Trainer(data, impsy), reporter=impsy_log)
    ours_log = Log(f"{key} antiphon")
    ours_run = fit(Trainer(data, ours), reporter=ours_log, max_minutes=antiphon_max_minutes)

    target = impsy_run.best_val_nll
    impsy_windows = impsy_log.rows[0]["windows"]  # one IMPSY epoch: every stride-1 window
    keras_epoch = IMPSY_KERAS_EPOCH_SECONDS_9D * impsy_windows / 83_585  # 9-D: 83,585 windows
    reached = first_reaching(ours_log.rows, target)
    impsy_best_row = impsy_log.rows[impsy_run.best_epoch - 1]
    return {
        "dataset": FILES[key],
        "dimension": data.dimension,
        "events": len(data.events),
        "throughput_events_per_s": rates,
        "impsy": {
            "best_val_nll": target,
            "best_epoch": impsy_run.best_epoch,
            "epochs": len(impsy_run.history),
            "stopped": impsy_run.stopped,
            "keras_seconds_per_epoch": keras_epoch,
            "keras_seconds_to_best": keras_epoch * impsy_run.best_epoch,
            "torch_seconds_to_best": impsy_best_row["seconds"],
            "torch_seconds_per_epoch": impsy_log.rows[-1]["seconds"] / len(impsy_log.rows),
            "events_to_best": impsy_best_row["events"],
            "rows": impsy_log.rows,
        },
        "antiphon": {
            "best_val_nll": ours_run.best_val_nll,
            "best_epoch": ours_run.best_epoch,
            "epochs": len(ours_run.history),
            "stopped": ours_run.stopped,
            "seconds_per_epoch": ours_log.rows[-1]["seconds"] / len(ours_log.rows),
            "reached_impsy_best": reached,
            "seconds_to_best": ours_log.rows[ours_run.best_epoch - 1]["seconds"],
            "rows": ours_log.rows,
        },
    }


def markdown(results: list[dict], started: str) -> str:
    import torch  # loaded by antiphon.training, after it chose how torch's threads wait

    d_ln10 = {r["dataset"]: r["dimension"] * math.log(10) for r in results}
    lines = [
        "## Training",
        "",
        f"Measured by `make bench-train` (`benchmarks/training.py`) on {started}: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, PyTorch "
        f"{torch.__version__}, {THREADS} threads, size s, seed {SEED}, IMPSY's validation split "
        "(last 10 % of the stride-1 windows) for both recipes. NLL is per event, x10-scaled "
        "as IMPSY reports it (unscaled = scaled − D·ln 10).",
        "",
        "| dataset | recipe | best val NLL (x10) | unscaled | best epoch / epochs "
        "| s per epoch | to best |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        i, a = r["impsy"], r["antiphon"]
        off = d_ln10[r["dataset"]]
        lines.append(
            f"| {r['dataset']} | IMPSY recipe in PyTorch | {i['best_val_nll']:.3f} | "
            f"{i['best_val_nll'] - off:.3f} | {i['best_epoch']} / {i['epochs']} | "
            f"{i['torch_seconds_per_epoch']:.1f} (Keras ≈ {i['keras_seconds_per_epoch']:.1f}) | "
            f"{i['torch_seconds_to_best']:.0f} s (Keras ≈ {i['keras_seconds_to_best']:.0f} s) |"
        )
        lines.append(
            f"| {r['dataset']} | antiphon defaults | {a['best_val_nll']:.3f} | "
            f"{a['best_val_nll'] - off:.3f} | {a['best_epoch']} / {a['epochs']} | "
            f"{a['seconds_per_epoch']:.1f} | {a['seconds_to_best']:.0f} s |"
        )
    lines += [
        "",
        "Time to quality: wall-clock until antiphon's validation NLL first reaches IMPSY's best.",
        "",
        "| dataset | IMPSY's best | IMPSY (Keras) to it | antiphon to it | ratio "
        "| events computed, IMPSY → antiphon |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        i, a = r["impsy"], r["antiphon"]
        hit = a["reached_impsy_best"]
        if hit is None:
            lines.append(
                f"| {r['dataset']} | {i['best_val_nll']:.3f} | "
                f"{i['keras_seconds_to_best']:.0f} s | not reached | – | – |"
            )
            continue
        lines.append(
            f"| {r['dataset']} | {i['best_val_nll']:.3f} | {i['keras_seconds_to_best']:.0f} s | "
            f"{hit['seconds']:.0f} s (epoch {hit['epoch']}) | "
            f"{hit['seconds'] / i['keras_seconds_to_best']:.2f} | "
            f"{i['events_to_best'] / 1e6:.1f} M → {hit['events'] / 1e6:.1f} M |"
        )
    lines += [
        "",
        "Throughput, fastest of 7 bursts of 12 batches (events per second, training only): "
        + "; ".join(
            f"{r['dataset']}: IMPSY recipe {r['throughput_events_per_s']['impsy']:,.0f}, "
            f"antiphon {r['throughput_events_per_s']['antiphon']:,.0f}"
            for r in results
        ),
        "",
        "Load average during the runs: "
        + "; ".join(f"{r['dataset']} {min(_loads(r)):.1f}–{max(_loads(r)):.1f}" for r in results)
        + " (the machine is shared; wall-clock times grow with the load, events computed do not).",
    ]
    return "\n".join(lines) + "\n"


def _loads(result: dict) -> list[float]:
    return [row["load"] for row in result["impsy"]["rows"] + result["antiphon"]["rows"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="4d,9d")
    parser.add_argument("--impsy-max-epochs", type=int, default=100)
    parser.add_argument("--antiphon-max-minutes", type=float, default=15)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not IMPSY_DIR.is_dir():
        raise SystemExit(f"the IMPSY datasets are not at {IMPSY_DIR}")
    started = time.strftime("%Y-%m-%d %H:%M")
    results = [
        bench_dataset(key, args.impsy_max_epochs, args.antiphon_max_minutes)
        for key in args.datasets.split(",")
    ]
    text = markdown(results, started)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
