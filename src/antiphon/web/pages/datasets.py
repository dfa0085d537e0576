"""Datasets: list, download, delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from antiphon.web import listing
from antiphon.web.app import render, state
from antiphon.web.pages.common import back, chosen_files, existing, in_thread

SUFFIXES = (".npz",)


def _dataset_files(folder):
    return [
        listing.FileInfo(
            p.name, p.stat().st_size, listing.datetime.fromtimestamp(p.stat().st_mtime)
        )
        for p in listing.files_in(folder, SUFFIXES)
    ]


async def index(request: Request) -> Response:
    infos = await in_thread(_dataset_files, state(request).workspace.datasets)
    return render(request, "datasets.html", datasets=infos)


async def download(request: Request) -> Response:
    path = existing(state(request).workspace.datasets, request.path_params["name"], "dataset")
    return FileResponse(path, filename=path.name, media_type="application/octet-stream")


async def delete(request: Request) -> Response:
    paths = await chosen_files(request, state(request).workspace.datasets)
    form = await request.form()
    if form.get("confirmed") != "1":
        return render(
            request,
            "confirm_delete.html",
            kind="dataset",
            action="/datasets/delete",
            names=[p.name for p in paths],
            cancel="/datasets",
        )
    for path in paths:
        path.unlink(missing_ok=True)
    return back("/datasets", flash=f"Deleted {len(paths)} dataset{'s' * (len(paths) != 1)}.")


routes = [
    Route("/datasets", index),
    Route("/datasets/delete", delete, methods=["POST"]),
    Route("/datasets/{name}/download", download),
]
