"""Instructions per prediction and per OSC event, counted with valgrind's callgrind.

Times under emulation say nothing about a Raspberry Pi, and no Pi is at hand. The work
a program does, counted in instructions, carries over: the same Python, NumPy and
OpenBLAS code paths run on a Pi's Cortex-A53 (a different instruction set, so the count
is an estimate within tens of percent, not a prediction of time). Dividing by what a
core retires per second gives a budget on paper (docs/benchmarks.md, Raspberry Pi).

Each number is a difference between two runs of the public commands that differ only
in the work counted, so start-up, imports and model loading cancel out:

- per prediction: ``antiphon test-model -n N`` against ``-n 1`` (one LSTM step and
  one sample from the mixture, as ``antiphon run`` makes for every event it plays);
- per OSC event in -> out: ``antiphon run`` receiving N ``/interface`` messages against
  receiving none over the same time, in ``polyphony`` mode (each event is checked,
  logged, fed to the model and its prediction sent as ``/impsy``) and in ``useronly``
  mode with input_thru (the same without the model: parse, log, send).

    python benchmarks/instructions.py [--size s] [--events 400]

Needs valgrind (Debian: apt-get install valgrind). Takes about 10 minutes.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

ANTIPHON = str(Path(sys.executable).with_name("antiphon"))
DIMENSION = 9
RATE = 20.0
"""OSC events per second: slow enough that valgrind's tenfold slowdown keeps up."""
SETTLE = 5.0
"""Seconds the engine idles before and after the events (the same in the baseline)."""


def callgrind(command: list[str], out: Path, *, during=None, cwd: Path | None = None) -> int:
    """Run ``command`` under callgrind and return every instruction it executed (all
    threads); ``during(process)`` runs while it does and must stop it."""
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
        cwd=cwd,
    )
    if during is not None:
        during(process)
    _, stderr = process.communicate(timeout=3600)
    if process.returncode not in (0, -15):
        raise RuntimeError(f"{command}: exit {process.returncode}\n{stderr[-2000:]}")
    summary = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M)
    assert summary, f"no totals in {out}"
    return int(summary.group(1))


def per_prediction(size: str, predictions: int, work: Path) -> float:
    """The bundled default model for size s; for other sizes a model trained for one
    short epoch here (the arithmetic per step is the same trained or not)."""
    workspace = work / f"ws-{size}"
    subprocess.run([ANTIPHON, "init", str(workspace)], check=True, capture_output=True)
    model: list[str] = []
    if size != "s":
        for step in (
            ["data", "synth", "-D", str(DIMENSION), "-n", "2", "-m", "0.5", "--seed", "1"],
            ["dataset", "-D", str(DIMENSION)],
            ["train", "-D", str(DIMENSION), "-M", size, "-N", "1", "--epoch-windows", "64",
             "--no-plot", "--seed", "1"],
        ):  # fmt: skip
            subprocess.run([ANTIPHON, *step], cwd=workspace, check=True, capture_output=True)
        model = [str(next((workspace / "models").glob("*.safetensors")))]
    command = [ANTIPHON, "test-model", *model, "--seed", "1", "-n"]
    base = callgrind([*command, "1"], work / "one.out", cwd=workspace)
    many = callgrind([*command, str(predictions + 1)], work / "many.out", cwd=workspace)
    return (many - base) / predictions


def _port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    hex_port = f":{port:04X} "
    return any(hex_port in line for line in Path("/proc/net/udp").read_text().splitlines())


def per_event(mode: str, events: int, work: Path) -> tuple[float, int]:
    """Instructions per OSC event in -> out, and how many answers came back."""
    workspace = work / f"run-{mode}"
    subprocess.run([ANTIPHON, "init", str(workspace)], check=True, capture_output=True)
    inbox = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    inbox.bind(("127.0.0.1", 0))
    inbox.setblocking(False)
    osc_in = _port(socket.SOCK_DGRAM)
    text = (workspace / "config.toml").read_text()
    text = re.sub(r"^server_port = \d+", f"server_port = {osc_in}", text, flags=re.M)
    text = re.sub(r"^server_ip = .*", 'server_ip = "127.0.0.1"', text, flags=re.M)
    text = re.sub(
        r"^client_port = \d+", f"client_port = {inbox.getsockname()[1]}", text, flags=re.M
    )
    for key in ("monitor_port", "command_port"):
        text = re.sub(rf"^{key} = \d+", f"{key} = {_port(socket.SOCK_DGRAM)}", text, flags=re.M)
    (workspace / "config.toml").write_text(text)
    command = [
        ANTIPHON, "run", "-c", str(workspace / "config.toml"), "--no-web", "--quiet",
        "--mode", mode, "--seed", "1",
    ]  # fmt: skip
    if mode == "useronly":
        command.append("--input-thru")
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    answers: list[int] = []

    def play(count: int):
        """Wait for the engine, idle, send ``count`` of ``events`` slots, idle, stop."""

        def during(process: subprocess.Popen) -> None:
            deadline = time.monotonic() + 600
            while not _listening(osc_in):
                assert process.poll() is None and time.monotonic() < deadline, "did not start"
                time.sleep(0.5)
            time.sleep(SETTLE)
            for i in range(events):
                if i < count:
                    message = OscMessageBuilder("/interface")
                    for k in range(DIMENSION - 1):
                        message.add_arg(((i * 7 + k) % 100) / 100)
                    out.sendto(message.build().dgram, ("127.0.0.1", osc_in))
                time.sleep(1 / RATE)
                answers.append(_drain(inbox))  # before the socket's buffer fills
            time.sleep(SETTLE)
            process.terminate()
            answers.append(_drain(inbox))

        return during

    idle = callgrind(command, work / f"{mode}-idle.out", during=play(0))
    answers.clear()
    busy = callgrind(command, work / f"{mode}-busy.out", during=play(events))
    return (busy - idle) / events, sum(answers)


def _drain(inbox: socket.socket) -> int:
    """How many /impsy messages are waiting (and read them)."""
    received = 0
    while True:
        try:
            received += OscMessage(inbox.recv(65536)).address == "/impsy"
        except BlockingIOError:
            return received


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="s")
    parser.add_argument("--predictions", type=int, default=2000)
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--predictions-only", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prediction = per_prediction(args.size, args.predictions, work)
        print(f"instructions per prediction (size {args.size}, D={DIMENSION}): {prediction:,.0f}")
        if args.predictions_only:
            return
        for mode in ("polyphony", "useronly"):
            cost, answered = per_event(mode, args.events, work)
            print(
                f"instructions per OSC event in -> out ({mode}): {cost:,.0f}"
                f" ({answered}/{args.events} answered)"
            )


if __name__ == "__main__":
    main()
