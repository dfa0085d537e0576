"""Train a model from the browser: in a separate, low-priority process (the engine keeps
playing), with progress and the loss curves live, and a stop that keeps the best so far."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from antiphon.model.presets import SIZES
from antiphon.web.pages.common import back, existing, in_thread
from antiphon.web.pages.datasets import dataset_infos
from antiphon.web.render import render
from antiphon.web.security import Refused
from antiphon.web.state import state


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


async def page(request: Request) -> Response:
    web = state(request)
    infos = [
        d for d in await in_thread(dataset_infos, web.workspace.datasets) if "problem" not in d
    ]
    return render(
        request,
        "train.html",
        datasets=infos,
        sizes=list(SIZES),
        chosen=request.query_params.get("dataset"),
        torch=torch_available(),
        cores=os.cpu_count() or 1,
        jobs=[j for j in web.jobs if j.kind == "train"][:5],
    )


async def start(request: Request) -> Response:
    web = state(request)
    if not torch_available():
        raise Refused(
            "training needs PyTorch, which this computer does not have: see the "
            "Train page for how to install it or train on a laptop",
            409,
        )
    form = await request.form()
    dataset = existing(web.workspace.datasets, str(form.get("dataset", "")), "dataset")
    size = str(form.get("size", "s"))
    if size not in SIZES:
        raise Refused(f"unknown size {size!r}; use one of {', '.join(SIZES)}")
    try:
        epochs = max(1, min(int(str(form.get("epochs", "100"))), 1000))
        minutes = float(str(form.get("minutes") or 0))
    except ValueError:
        raise Refused("epochs and minutes must be numbers") from None
    progress = Path(tempfile.mkdtemp(prefix="antiphon-train-")) / "progress.jsonl"
    argv = [
        sys.executable,
        "-m",
        "antiphon",
        "train",
        "--source",
        str(dataset.relative_to(web.workspace.root)),
        "--modelsize",
        size,
        "--numepochs",
        str(epochs),
        "--destination",
        "models",
        "--progress-file",
        str(progress),
        # leave a core for the music
        "--threads",
        str(max(1, (os.cpu_count() or 2) - 1)),
    ]
    if minutes > 0:
        argv += ["--max-minutes", str(minutes)]
    try:
        job = web.jobs.in_process(
            "train", f"Model size {size} on {dataset.name}", argv, web.workspace.root, progress
        )
    except Refused:  # another training run goes on
        progress.parent.rmdir()
        raise
    return back("/train", flash=f"Training started: {job.title}. It runs beside the music.")


async def stop(request: Request) -> Response:
    form = await request.form()
    try:
        job = state(request).jobs.stop(str(form.get("job", "")))
    except KeyError:
        raise Refused("no such training run", 404) from None
    return back("/train", flash=f"Stopping {job.title}; the best model so far is kept.")


routes = [
    Route("/train", page),
    Route("/train/start", start, methods=["POST"]),
    Route("/train/stop", stop, methods=["POST"]),
]
