"""Training speed by thread policy while other programs load the machine (bounded).

Each cell trains one size-s model (D=9, batch 16, antiphon's defaults) for a fixed
number of optimiser steps (``Trainer.step``, as training runs it) in a fresh process,
while 0, ½, 1 or 2 busy loops stand in for "another program". The policies:

- ``1``: one PyTorch thread (``--threads 1``);
- ``2 spinning``: a thread per core, waiting threads spin (OpenMP's default: what
  `antiphon train` did before);
- ``2 spin 10k``: the same, spinning 10,000 rounds before sleeping (``GOMP_SPINCOUNT``);
- ``2 passive``: a thread per core, waiting threads sleep (``OMP_WAIT_POLICY=passive``,
  the default now: ``antiphon/training/__init__.py``).

The machine may be shared: every cell also records how much CPU programs other than
the training run and the busy loops used while it ran ("uncontrolled load").

    python benchmarks/training_threads.py [--steps 150] [--rounds 3] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

STEPS_PER_EPOCH = 512  # the default epoch: 8192 windows in batches of 16
POLICIES: dict[str, tuple[list[str], dict[str, str]]] = {  # child arguments, environment
    "1": (["--threads", "1"], {}),
    "2 spinning": (["--threads", "2", "--spin"], {}),
    "2 spin 10k": (["--threads", "2", "--spin"], {"GOMP_SPINCOUNT": "10000"}),
    "2 passive": (["--threads", "2"], {}),
}
BUSY = "while True: pass"
HALF_BUSY = (  # busy 5 ms, asleep 5 ms
    "import time\nwhile True:\n    t = time.perf_counter()\n"
    "    while time.perf_counter() - t < 0.005: pass\n    time.sleep(0.005)"
)
LOADS = {"none": [], "½ core": [HALF_BUSY], "1 core": [BUSY], "2 cores": [BUSY, BUSY]}


def child(threads: int, steps: int, limit: float, spin: bool) -> None:
    """Train ``steps`` steps (or for ``limit`` seconds) and print what it took as JSON."""
    import antiphon.training

    if spin:  # OpenMP's own default, before torch loads
        os.environ.pop("OMP_WAIT_POLICY", None)
    import numpy as np

    from antiphon.data.dataset import Dataset
    from antiphon.data.performer import Performer
    from antiphon.training import windows
    from antiphon.training.train import Settings, Trainer

    assert antiphon.training  # imported first for its wait policy
    performer = Performer(9, seed=1)
    data = Dataset.from_performances([performer.performance(60) for _ in range(8)])
    trainer = Trainer(data, Settings(size="s", seed=1, threads=threads))
    plan = windows.plan_epoch(
        trainer.split.train, stride=50, batch_size=16, min_windows=16 * (steps + 5),
        rng=np.random.default_rng(0),
    )  # fmt: skip
    batches = list(plan)
    warm_up = time.perf_counter()
    for batch in batches[:5]:
        trainer.step(batch)
        if time.perf_counter() - warm_up > limit / 4:
            break
    started, cpu = time.perf_counter(), time.process_time()
    done = 0
    for batch in batches[5 : 5 + steps]:
        trainer.step(batch)
        done += 1
        if time.perf_counter() - started > limit:
            break
    wall = time.perf_counter() - started
    print(json.dumps({
        "seconds_per_step": wall / done, "steps": done, "cpu": time.process_time() - cpu,
        "wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    }))  # fmt: skip


def machine_busy() -> float:
    t = psutil.cpu_times()
    return sum(t) - t.idle - t.iowait - t.guest - t.guest_nice


def children_cpu() -> float:
    """CPU seconds of the child processes that have ended (the busy loops run on)."""
    t = os.times()
    return t.children_user + t.children_system


def cell(policy: str, steps: int, limit: float, load: list[psutil.Process]) -> dict:
    args, changes = POLICIES[policy]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env |= changes  # antiphon.training sets OMP_WAIT_POLICY in the child
    load_cpu = sum(sum(p.cpu_times()[:2]) for p in load)
    busy, wall, child_cpu = machine_busy(), time.monotonic(), children_cpu()
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", *args, "--steps", str(steps),
             "--limit", str(limit)],
            capture_output=True, text=True, env=env, timeout=limit + 120, check=True,
        )  # fmt: skip
        result = json.loads(out.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:  # slower than a step per two minutes: collapsed
        result = {"seconds_per_step": math.inf, "steps": 0}
    wall = time.monotonic() - wall
    load_cpu = sum(sum(p.cpu_times()[:2]) for p in load) - load_cpu
    child_cpu = children_cpu() - child_cpu  # its whole life, start-up included
    # everything else the machine did meanwhile, in cores
    result["uncontrolled"] = max(0.0, (machine_busy() - busy - load_cpu - child_cpu) / wall)
    return result


def run(
    steps: int,
    rounds: int,
    limit: float,
    loads: dict[str, list[str]],
    policies: list[str],
) -> dict:
    results: dict = {}
    for load_name, programs in loads.items():
        load = [psutil.Process(subprocess.Popen([sys.executable, "-c", c]).pid) for c in programs]
        try:
            time.sleep(1.0)
            for r in range(rounds):
                for policy in policies:
                    got = cell(policy, steps, limit, load)
                    results.setdefault(load_name, {}).setdefault(policy, []).append(got)
                    print(
                        f"load {load_name:>7}  {policy:>9}  round {r + 1}: "
                        f"{got['seconds_per_step'] * 1e3:7.1f} ms/step  "
                        f"uncontrolled {got['uncontrolled']:.2f} cores",
                        flush=True,
                    )
        finally:
            for process in load:
                process.kill()
                process.wait()
    return results


def markdown(results: dict, steps: int, started: str) -> str:
    policies = list(next(iter(results.values())))
    lines = [
        "| other programs | " + " | ".join(f"`{p}`" for p in policies) + " | uncontrolled load |",
        "|---|" + "---|" * (len(policies) + 1),
    ]
    for load_name, by_policy in results.items():
        cells = []
        for policy in policies:
            runs = by_policy[policy]
            epoch = statistics.median(r["seconds_per_step"] for r in runs) * STEPS_PER_EPOCH
            cells.append(f"{epoch:.1f} s" if math.isfinite(epoch) else "over 2 min per step")
        uncontrolled = [r["uncontrolled"] for runs in by_policy.values() for r in runs]
        lines.append(
            f"| {load_name} | " + " | ".join(cells)
            + f" | {min(uncontrolled):.2f}–{max(uncontrolled):.2f} cores |"
        )  # fmt: skip
    return (
        f"Measured by `benchmarks/training_threads.py` on {started}: {os.cpu_count()} cores, "
        + f"seconds per epoch ({STEPS_PER_EPOCH} steps, from the median step of {steps}).\n\n"
        + "\n".join(lines) + "\n"
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--spin", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--limit", type=float, default=60.0, help="seconds a cell may train")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loads", default=",".join(LOADS), help="of: " + ", ".join(LOADS))
    parser.add_argument("--policies", default=",".join(POLICIES), help="of: " + ", ".join(POLICIES))
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.threads, args.steps, args.limit, args.spin)
        return
    started = time.strftime("%Y-%m-%d %H:%M")
    loads = {name: LOADS[name] for name in args.loads.split(",")}
    policies = args.policies.split(",")
    results = run(args.steps, args.rounds, args.limit, loads, policies)
    text = markdown(results, args.steps, started)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
