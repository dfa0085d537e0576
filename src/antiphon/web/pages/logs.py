"""Performance logs: list, preview as a plot, download (one, several, all), delete."""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from antiphon.web import listing
from antiphon.web.pages.common import back, chosen_files, confirmed_delete, existing, in_thread
from antiphon.web.render import render
from antiphon.web.security import Refused
from antiphon.web.state import WebState, state


def _log(request: Request) -> Path:
    return existing(state(request).workspace.logs, request.path_params["name"], "log")


async def index(request: Request) -> Response:
    web = state(request)
    infos = await in_thread(listing.log_infos, web.workspace.logs)
    live = recording(web)
    return render(request, "logs.html", logs=infos, recording=live.name if live else None)


async def preview(request: Request) -> Response:
    return render(request, "log.html", log=await in_thread(listing.log_info, _log(request)))


async def data(request: Request) -> Response:
    """Encoded in the worker thread too: a long log's plot data is ~150 KB of JSON."""
    path = _log(request)
    body = await in_thread(lambda: json.dumps(listing.log_series(path)).encode())
    return Response(body, media_type="application/json")


async def download(request: Request) -> Response:
    path = _log(request)
    return FileResponse(path, filename=path.name, media_type="text/plain")


def zip_files(paths: list[Path]) -> Path:
    """Compress to a temporary file (deleted after it is sent)."""
    with (
        tempfile.NamedTemporaryFile(prefix="antiphon-", suffix=".zip", delete=False) as handle,
        zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        for path in paths:
            archive.write(path, path.name)
    return Path(handle.name)


async def archive(request: Request) -> Response:
    folder = state(request).workspace.logs
    paths = await chosen_files(request, folder, listing.LOG_SUFFIXES)
    if not paths:
        return back("/logs", error="There are no logs to download yet.")
    zipped = await in_thread(zip_files, paths)
    name = paths[0].stem + ".zip" if len(paths) == 1 else f"antiphon-logs-{len(paths)}.zip"
    return FileResponse(
        zipped,
        filename=name,
        media_type="application/zip",
        background=BackgroundTask(zipped.unlink, missing_ok=True),
    )


def recording(web: WebState) -> Path | None:
    """The log the engine in this process is writing (or will create at the next event)."""
    if web.engine is None:
        return None
    live = web.engine.status().get("log")
    return Path(live).resolve() if live else None


async def delete(request: Request) -> Response:
    """Delete logs, except the one being recorded: refused rather than moving recording
    to a new file, because deleting it would also throw away the performance so far,
    which is rarely what someone tidying up meant (stop or restart antiphon first)."""
    web = state(request)

    def not_the_one_recording(paths: list[Path]) -> None:
        live = recording(web)
        if live is not None and live in {p.resolve() for p in paths}:
            raise Refused(
                f"{live.name} is being recorded now; it can be deleted once antiphon has "
                "stopped or restarted (each run records a new log)",
                409,
            )

    return await confirmed_delete(
        request, web.workspace.logs, "log", listing.LOG_SUFFIXES, not_the_one_recording
    )


routes = [
    Route("/logs", index),
    Route("/logs/archive", archive, methods=["POST"]),
    Route("/logs/delete", delete, methods=["POST"]),
    Route("/logs/{name}", preview),
    Route("/logs/{name}/data", data),
    Route("/logs/{name}/download", download),
]
