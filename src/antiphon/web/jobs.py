"""Long work the web UI starts and watches: building a dataset, training a model.

Both run in separate processes at low priority: a dataset build in a worker process
started for it, training as an `antiphon train` command. Work in a thread of this
process would hold Python's interpreter lock for milliseconds at a time, and the engine
playing in this process would wait for it (measured: onsets 5 ms late at the median,
100 ms at the 99th percentile, during a build in a thread). The web pages read a job's
state; nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

from antiphon.errors import AntiphonError

State = Literal["running", "done", "failed", "stopped"]
Progress = Callable[[float, str], None]
"""How a job reports: (fraction done 0..1, what it is doing)."""
Work = Callable[..., tuple[str, str | None]]
"""Work for a worker process: ``work(progress, *args) -> (message, file made)``."""


@dataclass
class Job:
    kind: str  # "dataset" or "train"
    title: str
    id: str = field(default_factory=lambda: secrets.token_hex(4))
    state: State = "running"
    progress: float = 0.0
    message: str = "Starting"
    result: str | None = None  # the file it made
    output: deque[str] = field(default_factory=lambda: deque(maxlen=200))
    epochs: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    process: asyncio.subprocess.Process | None = field(default=None, repr=False)
    worker: multiprocessing.process.BaseProcess | None = field(default=None, repr=False)
    progress_file: Path | None = None
    stop_asked: bool = False
    _read_upto: int = 0

    def report(self, fraction: float, message: str) -> None:
        self.progress = max(0.0, min(1.0, fraction))
        self.message = message

    def finish(self, state: State, message: str, result: str | None = None) -> None:
        self.state, self.message, self.result = state, message, result
        self.finished = time.time()
        if state == "done":
            self.progress = 1.0

    def refresh(self) -> None:
        """Apply the JSON lines a training run has added to its progress file."""
        if self.progress_file is None:
            return
        try:
            with self.progress_file.open("rb") as f:
                f.seek(self._read_upto)
                data = f.read()
        except OSError:
            return
        complete = data[: data.rfind(b"\n") + 1]
        self._read_upto += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                self._apply(json.loads(line))

    def _apply(self, record: dict[str, Any]) -> None:
        kind = record.get("event")
        if kind == "start":
            self.message = f"Training {Path(record['model']).name}"
        elif kind == "batch":
            epochs = max(1, record["epochs"])
            done = (record["epoch"] - 1 + record["done"] / max(1, record["total"])) / epochs
            self.report(done, f"Epoch {record['epoch']} of {record['epochs']}")
        elif kind == "epoch":
            self.epochs.append(record)
        elif kind == "done":
            self.result = Path(record["model"]).name
            message = record.get("message") or "done"
            self.message = message[:1].upper() + message[1:]

    def to_dict(self) -> dict[str, Any]:
        self.refresh()
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "state": self.state,
            "progress": self.progress,
            "message": self.message,
            "result": self.result,
            "output": list(self.output)[-20:],
            "epochs": self.epochs,
            "started": self.started,
            "finished": self.finished,
        }


class Jobs:
    """Every job of this web UI, newest first; one training run at a time."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __iter__(self) -> Iterator[Job]:
        return iter(sorted(self._jobs.values(), key=lambda j: j.started, reverse=True))

    def get(self, job_id: str) -> Job:
        if job_id not in self._jobs:
            raise KeyError(job_id)
        return self._jobs[job_id]

    def running(self, kind: str) -> Job | None:
        return next((j for j in self if j.kind == kind and j.state == "running"), None)

    def in_worker(self, kind: str, title: str, work: Work, *args: Any) -> Job:
        """Run ``work(progress, *args)`` in a new low-priority process; it returns
        (a message for the user, the file it made). ``work`` and ``args`` must be
        picklable: a module-level function and plain values."""
        job = self._add(kind, title)
        context = multiprocessing.get_context("spawn")  # a fresh interpreter, no inherited locks
        receiver, sender = context.Pipe(duplex=False)
        worker = context.Process(target=_work_in_child, args=(sender, work, args), daemon=True)
        job.worker = worker

        async def run() -> None:
            worker.start()
            sender.close()
            loop = asyncio.get_running_loop()
            ended = asyncio.Event()

            def readable() -> None:
                try:
                    kind, *fields = receiver.recv()
                except (EOFError, OSError):
                    loop.remove_reader(receiver.fileno())
                    ended.set()
                    return
                if kind == "progress":
                    job.report(*fields)
                elif kind == "finish":
                    job.finish(*fields)

            loop.add_reader(receiver.fileno(), readable)
            try:
                await ended.wait()
                await asyncio.to_thread(worker.join)
            finally:
                receiver.close()
            if job.state == "running":
                job.finish("failed", f"the worker process ended unexpectedly ({worker.exitcode})")

        self._spawn(run())
        return job

    def in_process(
        self, kind: str, title: str, argv: list[str], cwd: Path, progress_file: Path
    ) -> Job:
        """Run ``argv`` as a low-priority process; ``progress_file``, in a temporary folder
        of its own, receives JSON lines, and goes with its folder when the process ends."""
        if self.running(kind):
            raise AntiphonError(f"a {kind} job is already running; stop it or wait for it")
        job = self._add(kind, title)
        job.progress_file = progress_file
        if shutil.which("nice"):
            argv = ["nice", "-n", "10", *argv]

        async def run() -> None:
            try:
                job.process = await asyncio.create_subprocess_exec(
                    *argv,
                    cwd=cwd,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                job.finish("failed", f"could not start: {exc}")
                return
            assert job.process.stdout is not None
            async for raw in job.process.stdout:
                line = raw.decode(errors="replace").rstrip()
                if line:
                    job.output.append(line)
            code = await job.process.wait()
            job.refresh()
            job.progress_file = None  # all it said is in the job now
            progress_file.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                progress_file.parent.rmdir()
            if job.result is not None and (code != 0 or job.stop_asked):
                job.finish("stopped", job.message, job.result)  # kept the best so far
            elif code == 0:
                job.finish("done", job.message, job.result)
            else:
                job.finish("failed", job.output[-1] if job.output else f"exit code {code}")

        self._spawn(run())
        return job

    def stop(self, job_id: str) -> Job:
        """Ask a process job to stop as Ctrl-C would: it keeps what it has so far."""
        job = self.get(job_id)
        if job.process is not None and job.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                job.process.send_signal(signal.SIGINT)
            job.stop_asked = True
            job.message = "Stopping (keeping the best so far)…"
        return job

    async def close(self) -> None:
        for job in self:
            if job.worker is not None and job.worker.is_alive():
                job.worker.terminate()  # a half-built dataset is never written: saves are atomic
            if job.process is not None and job.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    job.process.send_signal(signal.SIGINT)
        for task in list(self._tasks):
            task.cancel()

    def _add(self, kind: str, title: str) -> Job:
        job = Job(kind, title)
        self._jobs[job.id] = job
        for old in list(self)[20:]:  # keep the last twenty
            if old.state != "running":
                del self._jobs[old.id]
        return job

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _work_in_child(sender: Connection, work: Work, args: tuple[Any, ...]) -> None:
    """The worker process: runs ``work`` niced, sending progress and the outcome."""
    with contextlib.suppress(OSError):
        os.nice(10)

    def progress(fraction: float, message: str) -> None:
        sender.send(("progress", fraction, message))

    try:
        message, result = work(progress, *args)
    except AntiphonError as exc:
        sender.send(("finish", "failed", str(exc)))
    except Exception as exc:  # a bug must show on the page, not vanish
        sender.send(("finish", "failed", f"{type(exc).__name__}: {exc}"))
    else:
        sender.send(("finish", "done", message, result))
    finally:
        sender.close()
