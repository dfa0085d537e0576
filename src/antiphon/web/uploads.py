"""Checking an uploaded dataset or model in a short-lived child process before it is kept.

An upload is a file from someone else, and reading one means running NumPy's,
zipfile's and HDF5's parsers on it: a 1 MB deflate bomb took the engine process to
1.55 GB before sizes were checked, NumPy crashes the interpreter on some crafted
pickled arrays, and HDF5 is a large C library. Whatever the limits in the readers
(``antiphon.archives``, ``data.npz``), a file that gets past them should cost a child
process, never the one that plays the music and serves this page. So the child
(``python -m antiphon.web.uploads KIND FILE NAME``):

- limits its own address space to ``CHILD_MEMORY`` (a bomb gets a MemoryError);
- volunteers to be the first process the kernel kills if memory still runs out
  (``oom_score_adj`` 1000: on a Raspberry Pi the limit can exceed the RAM);
- runs at low priority, so that the engine keeps time on a small board;
- prints one JSON line: what the file holds, or why it cannot be used.

The parent waits at most ``CHECK_TIMEOUT`` and reads at most ``MAX_REPORT`` bytes, and
names a child that died ("the check crashed") rather than trusting the file. Starting
the child costs about 0.3 s on the development machine, once per upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import sys
from pathlib import Path
from typing import Any, Literal

from antiphon.errors import AntiphonError
from antiphon.storage import FILE_MODE
from antiphon.web.security import Refused

Kind = Literal["dataset", "model"]

CHILD_MEMORY = 1536 << 20
"""Address space of the checking child: a dataset at its largest (256 MB unpacked)
with its summary, and HDF5 with a model, fit; a bomb does not."""
CHECK_TIMEOUT = 120.0
"""Seconds a check may take (a large dataset on a Raspberry Pi Zero takes about 20)."""
MAX_REPORT = 1 << 20
"""Bytes of the child's report read at most."""
NICENESS = 10


class UploadRefused(AntiphonError):
    """The upload cannot be used; the message names it by the name it was sent under."""


async def check(kind: Kind, path: Path, name: str) -> dict[str, Any]:
    """What the file at ``path`` holds (see ``_summary``), checked in a child process;
    UploadRefused saying why not, with ``name`` for the file."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        kind,
        str(path),
        name,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        limit=MAX_REPORT,
    )
    assert child.stdout is not None
    try:
        report = await asyncio.wait_for(child.stdout.readline(), CHECK_TIMEOUT)
        await asyncio.wait_for(child.wait(), CHECK_TIMEOUT)
    except ValueError:  # a line longer than MAX_REPORT
        raise UploadRefused(f"{name} was not kept: its check gave no answer") from None
    except TimeoutError:
        raise UploadRefused(
            f"{name} was not kept: checking it took longer than {CHECK_TIMEOUT:g} s"
        ) from None
    finally:
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
    if child.returncode != 0:
        raise UploadRefused(f"{name} was not kept: {_death(child.returncode)}")
    try:
        answer = json.loads(report)
    except ValueError:
        raise UploadRefused(f"{name} was not kept: its check gave no answer") from None
    if not answer.get("ok"):
        raise UploadRefused(f"{name} was not kept: {answer.get('error')}")
    return answer


def keep(staging: Path, target: Path) -> None:
    """Give a checked upload its name, readable by everyone like every file antiphon
    writes (the upload was saved with the process's umask). A hard link never replaces
    a file: one of that name kept while this one was checked stays, and this one is
    refused (a rename would silently replace it)."""
    staging.chmod(FILE_MODE)
    try:
        os.link(staging, target)
    except FileExistsError:
        raise Refused(
            f"{target.name} was not kept: another file of that name arrived while it was checked",
            409,
        ) from None
    staging.unlink()


def _death(code: int) -> str:
    if code == -signal.SIGKILL:
        return "checking it ran out of memory (a compressed bomb?)"
    if code < 0:
        return (
            f"checking it crashed the reader ({signal.Signals(-code).name}); it is not a "
            "file antiphon can read"
        )
    return f"checking it failed (exit code {code})"


# -- the child -------------------------------------------------------------------------------


def _confine() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))
    with contextlib.suppress(OSError):
        Path("/proc/self/oom_score_adj").write_text("1000")
    with contextlib.suppress(OSError):
        os.nice(NICENESS)


def _summary(kind: Kind, path: Path) -> dict[str, Any]:
    if kind == "dataset":
        from antiphon.data import dataset

        summary = dataset.load(path).summary()
        return {"summary": summary.to_dict(), "lines": summary.lines()}
    from antiphon.web import listing

    model_kind, arch, _ = listing.describe_model(path)
    return {
        "kind": model_kind,
        "architecture": {
            "dimension": arch.dimension,
            "units": arch.units,
            "layers": arch.layers,
            "mixtures": arch.mixtures,
        },
    }


def main(argv: list[str]) -> int:
    kind, file, name = argv
    _confine()
    try:
        answer = {"ok": True, **_summary(kind, Path(file))}  # type: ignore[arg-type]
    except AntiphonError as exc:
        answer = {"ok": False, "error": str(exc).replace(file, name)}
    except MemoryError:
        answer = {
            "ok": False,
            "error": f"reading it needs more than {CHILD_MEMORY >> 20} MB of memory",
        }
    print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
