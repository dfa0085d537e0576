"""Datasets: build from logs (off the event loop, with progress), summary and plot,
download, upload (IMPSY's .npz too, loaded without running its pickled code), delete."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from antiphon.data import dataset as datasets
from antiphon.errors import AntiphonError
from antiphon.web import listing, uploads
from antiphon.web.jobs import Progress
from antiphon.web.pages.common import (
    back,
    confirmed_delete,
    existing,
    in_thread,
    staged_upload,
)
from antiphon.web.render import render
from antiphon.web.security import Refused
from antiphon.web.state import WebState, state

PLOT_POINTS = 3000
MAX_GAP = 10.0  # seconds: longer pauses are drawn this long


def dataset_infos(folder: Path) -> list[dict[str, Any]]:
    return [_info(p, *listing.stat(p)) for p in listing.files_in(folder, listing.DATASET_SUFFIXES)]


@functools.lru_cache(maxsize=256)
def _info(path: Path, size: int, mtime_ns: int) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": path.name,
        "size_text": listing.human_size(size),
        "modified": listing.modified(mtime_ns),
    }
    try:
        summary = datasets.load(path).summary()
    except AntiphonError as exc:
        return info | {"problem": str(exc).replace(str(path), path.name)}
    minutes, seconds = divmod(round(summary.seconds), 60)
    return info | {
        "dimension": summary.dimension,
        "performances": summary.performances,
        "events": summary.events,
        "duration": f"{minutes}:{seconds:02d}",
        "lines": summary.lines(),
    }


def series(path: Path) -> dict[str, Any]:
    """A dataset as plot data: controls over (pause-shortened) time, thinned evenly."""
    data = datasets.load(path)
    events = data.events
    t = np.cumsum(np.minimum(events[:, 0], MAX_GAP), dtype=np.float64)  # only dt widened
    kept = np.linspace(0, len(t) - 1, min(len(t), PLOT_POINTS)).astype(int)
    return {
        "name": path.name,
        "dimension": data.dimension,
        "events": len(events),
        "t": np.round(t[kept], 3).tolist(),
        "values": np.round(events[kept, 1:].T.astype(np.float64), 4).tolist(),
        "boundaries": np.round(t[data.offsets[1:-1]], 3).tolist(),
    }


async def index(request: Request) -> Response:
    web = state(request)
    infos = await in_thread(dataset_infos, web.workspace.datasets)
    found = await in_thread(datasets.log_dimensions, web.workspace.logs)
    config = await web.config_now()
    return render(
        request,
        "datasets.html",
        datasets=infos,
        log_dimensions=sorted(found.items()),
        default_dimension=config.model.dimension if config else None,
        jobs=[j for j in web.jobs if j.kind == "dataset"][:5],
    )


async def preview(request: Request) -> Response:
    path = existing(state(request).workspace.datasets, request.path_params["name"], "dataset")
    info = await in_thread(_info, path, *listing.stat(path))
    return render(request, "dataset.html", dataset=info)


async def data(request: Request) -> Response:
    path = existing(state(request).workspace.datasets, request.path_params["name"], "dataset")
    try:
        return JSONResponse(await in_thread(series, path))
    except AntiphonError as exc:
        raise Refused(str(exc).replace(str(path), path.name)) from None


def build(web: WebState, dimension: int, impsy_format: bool) -> Any:
    """Start building a dataset from every log of this dimension; returns the job."""
    name = datasets.default_name(dimension)
    workspace = web.workspace
    return web.jobs.in_worker(
        "dataset",
        f"{name} from logs/",
        build_dataset,
        workspace.logs,
        workspace.datasets / name,
        dimension,
        impsy_format,
    )


def build_dataset(
    progress: Progress, logs: Path, destination: Path, dimension: int, impsy_format: bool
) -> tuple[str, str]:
    """A dataset job's work, in its own process: (message, the file made)."""

    def reading(done: int, total: int) -> None:
        progress(0.05 + 0.8 * done / total, f"Reading the {dimension}d logs ({done} of {total})")

    progress(0.05, f"Reading the {dimension}d logs")
    try:
        collected = datasets.from_logs(logs, dimension, on_log=reading)
    except AntiphonError as exc:  # name the folder as the page does
        raise AntiphonError(str(exc).replace(str(logs), "logs/")) from None
    progress(0.9, "Writing the dataset")
    path = datasets.save(destination, collected.dataset, "impsy" if impsy_format else "antiphon")
    summary = collected.dataset.summary()
    message = (
        f"Built {path.name}: {summary.performances} performances, {summary.events:,} events "
        f"from {collected.logs} logs"
    )
    notes = collected.notes(most=3)
    return message + (f" ({'; '.join(notes)})" if notes else ""), path.name


async def start_build(request: Request) -> Response:
    form = await request.form()
    try:
        dimension = int(str(form.get("dimension", "")))
    except ValueError:
        raise Refused("choose the dimension of the logs to collect") from None
    if dimension < 2:
        raise Refused("the dimension is at least 2")
    web = state(request)
    found = await in_thread(datasets.log_dimensions, web.workspace.logs)
    if dimension not in found:
        there = ", ".join(f"{d}d" for d in sorted(found)) or "none yet"
        raise Refused(f"there are no {dimension}d logs in logs/ (logs there: {there})")
    job = build(web, dimension, form.get("format") == "impsy")
    return back("/datasets", flash=f"Building {job.title}…")


async def upload(request: Request) -> Response:
    web = state(request)
    name, target, staging = await staged_upload(
        request,
        web.workspace.datasets,
        listing.DATASET_SUFFIXES,
        "dataset",
        "datasets are .npz files (antiphon's or IMPSY's)",
    )
    if target.exists():
        staging.unlink()
        raise Refused(
            f"a dataset called {name} already exists; rename the file or delete the old one first",
            409,
        )
    try:
        summary = (await uploads.check("dataset", staging, name))["summary"]
        await in_thread(uploads.keep, staging, target)
    except AntiphonError as exc:
        raise Refused(str(exc)) from None
    finally:
        staging.unlink(missing_ok=True)
    return back(
        "/datasets",
        flash=f"Uploaded {name}: {summary['performances']} performances, "
        f"{summary['events']:,} events, dimension {summary['dimension']}.",
    )


async def download(request: Request) -> Response:
    path = existing(state(request).workspace.datasets, request.path_params["name"], "dataset")
    return FileResponse(path, filename=path.name, media_type="application/octet-stream")


async def delete(request: Request) -> Response:
    return await confirmed_delete(
        request, state(request).workspace.datasets, "dataset", listing.DATASET_SUFFIXES
    )


async def job_status(request: Request) -> Response:
    try:
        job = state(request).jobs.get(request.path_params["id"])
    except KeyError:
        raise Refused("no such job (jobs are forgotten when antiphon restarts)", 404) from None
    return JSONResponse(job.to_dict())


routes = [
    Route("/datasets", index),
    Route("/datasets/build", start_build, methods=["POST"]),
    Route("/datasets/upload", upload, methods=["POST"]),
    Route("/datasets/delete", delete, methods=["POST"]),
    Route("/datasets/{name}", preview),
    Route("/datasets/{name}/data", data),
    Route("/datasets/{name}/download", download),
    Route("/api/jobs/{id}", job_status),
]
