"""Long work the web UI starts and watches: building a dataset, training a model.

Both run in separate processes at low priority: a dataset build in a worker process
started for it, training as an `antiphon train` command. Work in a thread of this
process would hold Python's interpreter lock for milliseconds at a time, and the engine
playing in this process would wait for it (measured: onsets 5 ms late at the median,
100 ms at the 99th percentile, during a build in a thread). The web pages read a job's
state; nothing here blocks the event loop.

One job of each kind runs at a time, and a second request is refused with a message
naming the job it waits for, rather than queued. A job is a whole process (a build's
worker is 47 MB before it has read a log; 12 builds at once started 13 processes and
774 MB), so running them side by side only splits the same cores between them; a queue
would start work later that the person may no longer want and that no page shows, while
a refusal says at once what to wait for. Training already worked this way.

Jobs end with the web UI (``Jobs.close``): a dataset build is terminated (its file is
written atomically, so a half-built one never appears), a training run is asked to stop
as Ctrl-C would and keeps its best model if it can save it within ``STOP_GRACE``; after
that every job process left is killed, so stopping antiphon never waits on a job and
never leaves one behind. A worker ignores the terminal's Ctrl-C, which reaches its whole
process group: its parent decides when it stops.

A pipe or process watched with ``loop.add_reader`` is removed from the loop before its
file descriptor is closed: ``antiphon run``'s loop waits in ``select()``, which fails
for the whole loop (EBADF) on one closed descriptor, and that once ended ``antiphon
run`` with a traceback, no note-offs and an unclosed log when it was stopped during a
dataset build.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import secrets
import shutil
import signal
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Literal

from antiphon.errors import AntiphonError
from antiphon.training import progress_format
from antiphon.web.security import Refused

Kind = Literal["dataset", "train"]
State = Literal["running", "done", "failed", "stopped"]
Progress = Callable[[float, str], None]
"""How a job reports: (fraction done 0..1, what it is doing)."""
Work = Callable[..., tuple[str, str | None]]
"""Work for a worker process: ``work(progress, *args) -> (message, file made)``."""

NAMES: dict[Kind, str] = {"dataset": "dataset build", "train": "training run"}

STOP_GRACE = 2.0
"""Seconds a training run has, when antiphon stops, to save its best model before it is
killed (its checkpoint of the last epoch stays either way)."""

KILL_WAIT = 1.0
"""Seconds to wait for a killed job process to be reaped."""

CLOSE_POLL = 0.05
"""Seconds between looks at a stopping training run's progress file."""

KEPT = 20
"""Finished jobs remembered for the pages."""


@dataclass
class Job:
    kind: Kind
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
    worker: BaseProcess | None = field(default=None, repr=False)
    progress_file: Path | None = None
    stop_asked: bool = False
    unreadable: int = 0  # progress lines that did not parse: shown, never silently dropped
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
            try:
                self._apply(progress_format.decode(line))
            except ValueError:
                self.unreadable += 1

    def _apply(self, event: progress_format.Event) -> None:
        if isinstance(event, progress_format.Start):
            self.message = f"Training {Path(event.model).name}"
        elif isinstance(event, progress_format.Batch):
            self.report(event.fraction, f"Epoch {event.epoch} of {event.epochs}")
        elif isinstance(event, progress_format.Epoch):
            self.epochs.append(event.to_dict())
        elif isinstance(event, progress_format.Done):
            self.result = Path(event.model).name
            message = event.message or "done"
            self.message = message[:1].upper() + message[1:]

    def to_dict(self) -> dict[str, Any]:
        self.refresh()
        message = self.message
        if self.unreadable:
            message += f" ({self.unreadable} progress lines could not be read)"
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "state": self.state,
            "progress": self.progress,
            "message": message,
            "result": self.result,
            "output": list(self.output)[-20:],
            "epochs": self.epochs,
            "started": self.started,
            "finished": self.finished,
        }


class Jobs:
    """Every job of this web UI, newest first; one running job of each kind."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __iter__(self) -> Iterator[Job]:
        return iter(sorted(self._jobs.values(), key=lambda j: j.started, reverse=True))

    def get(self, job_id: str) -> Job:
        if job_id not in self._jobs:
            raise KeyError(job_id)
        return self._jobs[job_id]

    def running(self, kind: Kind) -> Job | None:
        return next((j for j in self if j.kind == kind and j.state == "running"), None)

    def in_worker(self, kind: Kind, title: str, work: Work, *args: Any) -> Job:
        """Run ``work(progress, *args)`` in a new low-priority process; it returns
        (a message for the user, the file it made). ``work`` and ``args`` must be
        picklable: a module-level function and plain values."""
        job = self._add(kind, title)
        context = multiprocessing.get_context("spawn")  # a fresh interpreter, no inherited locks
        receiver, sender = context.Pipe(duplex=False)
        worker = context.Process(target=_work_in_child, args=(sender, work, args), daemon=True)
        job.worker = worker

        def received(message: tuple[Any, ...]) -> None:
            kind, *fields = message
            if kind == "progress":
                job.report(*fields)
            elif kind == "finish":
                job.finish(*fields)

        async def run() -> None:
            try:
                worker.start()
            except Exception as exc:  # no process, or arguments that do not pickle
                job.finish("failed", f"could not start a worker process: {exc}")
                receiver.close()
                return
            finally:
                sender.close()  # the child has its copy: the pipe ends when the child does
            try:
                await _read_messages(receiver, received)
            finally:
                receiver.close()
                await _reaped(worker)
            if job.state == "running":
                if job.stop_asked:
                    job.finish("stopped", "Stopped before it ended: antiphon was stopping")
                else:
                    job.finish(
                        "failed", f"the worker process ended unexpectedly ({worker.exitcode})"
                    )

        self._spawn(run())
        return job

    def in_process(
        self, kind: Kind, title: str, argv: list[str], cwd: Path, progress_file: Path
    ) -> Job:
        """Run ``argv`` as a low-priority process; ``progress_file``, in a temporary folder
        of its own, receives JSON lines, and goes with its folder when the process ends."""
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
                    start_new_session=True,  # the terminal's Ctrl-C is antiphon's to pass on
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
            elif job.stop_asked:
                job.finish("stopped", "Stopped before it saved a model: antiphon was stopping")
            else:
                job.finish("failed", job.output[-1] if job.output else f"exit code {code}")

        self._spawn(run())
        return job

    def stop(self, job_id: str) -> Job:
        """Ask a job to stop: a training run stops as Ctrl-C would and keeps what it has
        so far; a dataset build ends without writing its file."""
        job = self.get(job_id)
        if job.state != "running":
            return job
        job.stop_asked = True
        if job.process is not None and job.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                job.process.send_signal(signal.SIGINT)
            job.message = "Stopping (keeping the best so far)…"
        if job.worker is not None and job.worker.is_alive():
            job.worker.terminate()
            job.message = "Stopping…"
        return job

    async def close(self, grace: float = STOP_GRACE) -> None:
        """Stop every job as the web UI stops; returns once no job process is left.

        A job has ``grace`` seconds to end, or for a training run to save its model
        (it may still be drawing the loss plot), before it is killed."""
        stopping = [job for job in self if job.state == "running"]
        for job in stopping:
            self.stop(job.id)

        def unsaved(job: Job) -> bool:
            job.refresh()
            return job.state == "running" and job.result is None

        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._tasks and any(map(unsaved, stopping)) and loop.time() < deadline:
            await asyncio.wait(self._tasks, timeout=CLOSE_POLL)
        for job in stopping:  # still saving, or not listening: its checkpoint stays
            if job.process is not None and job.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    job.process.kill()
            if job.worker is not None and job.worker.is_alive():
                job.worker.kill()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=KILL_WAIT)
        for task in list(self._tasks):  # a bug, not a process, keeps it: do not wait on it
            task.cancel()

    def _add(self, kind: Kind, title: str) -> Job:
        busy = self.running(kind)
        if busy is not None:
            raise Refused(
                f"a {NAMES[kind]} is already running ({busy.title}); one runs at a time: "
                "wait for it to end" + (" or stop it" if kind == "train" else ""),
                409,
            )
        job = Job(kind, title)
        self._jobs[job.id] = job
        for old in list(self)[KEPT:]:
            if old.state != "running":
                del self._jobs[old.id]
        return job

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _read_messages(receiver: Connection, received: Callable[[tuple[Any, ...]], None]) -> None:
    """Hand each message from a worker's pipe to ``received`` until the pipe ends."""
    loop = asyncio.get_running_loop()
    fd = receiver.fileno()
    ended = loop.create_future()

    def readable() -> None:
        try:
            message = receiver.recv()
        except (EOFError, OSError):
            if not ended.done():
                ended.set_result(None)
            return
        with contextlib.suppress(TypeError, ValueError):  # a malformed message is skipped
            received(message)

    loop.add_reader(fd, readable)
    try:
        await ended
    finally:
        loop.remove_reader(fd)  # before the caller closes the pipe


async def _reaped(worker: BaseProcess) -> None:
    """Wait, on the loop and without a thread, for a worker process to end: its
    sentinel descriptor becomes readable when it does."""
    if worker.pid is None:  # never started
        return
    loop = asyncio.get_running_loop()
    ended = loop.create_future()
    sentinel = worker.sentinel

    def readable() -> None:
        if not ended.done():
            ended.set_result(None)

    loop.add_reader(sentinel, readable)
    try:
        await ended
    finally:
        loop.remove_reader(sentinel)
    worker.join()  # it has ended: this reaps it at once


def _work_in_child(sender: Connection, work: Work, args: tuple[Any, ...]) -> None:
    """The worker process: runs ``work`` niced, sending progress and the outcome."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C is for the parent
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
