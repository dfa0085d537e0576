"""Small helpers the page modules share."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from antiphon.web import listing
from antiphon.web.render import render
from antiphon.web.security import Refused, confine

T = TypeVar("T")


def back(url: str, *, flash: str | None = None, error: str | None = None) -> RedirectResponse:
    """Post/redirect/get: a message travels in the query string of the next page."""
    query = {k: v for k, v in (("flash", flash), ("error", error)) if v}
    return RedirectResponse(f"{url}?{urlencode(query)}" if query else url, 303)


async def in_thread(func: Callable[..., T], *args: object) -> T:
    """File and CPU work runs off the event loop, so the music keeps time."""
    return await run_in_threadpool(func, *args)


def existing(folder: Path, name: str, kind: str) -> Path:
    """A file that must already exist in ``folder``; 404 with its name if not."""
    path = confine(folder, name)
    if not path.is_file():
        raise Refused(f"no {kind} called {name}", 404)
    return path


async def chosen_files(request: Request, folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The files a form selected: its ``name`` fields, each confined to ``folder``, or
    with ``all=1`` every file in ``folder`` ending in one of ``suffixes``."""
    form = await request.form()
    if form.get("all") == "1":
        return listing.files_in(folder, suffixes)
    names = [str(n) for n in form.getlist("name")]
    if not names:
        raise Refused("no files selected")
    paths = [confine(folder, name) for name in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise Refused(f"no such file: {', '.join(missing)}", 404)
    return paths


async def confirmed_delete(
    request: Request,
    folder: Path,
    kind: str,
    suffixes: tuple[str, ...],
    check: Callable[[list[Path]], None] | None = None,
) -> Response:
    """Delete the files a form chose, once the user has confirmed them on a page listing
    them; ``check`` may refuse first. ``kind`` names the files and their page."""
    paths = await chosen_files(request, folder, suffixes)
    page = f"/{kind}s"
    if not paths:
        return back(page, error=f"There are no {kind}s to delete.")
    form = await request.form()
    if form.get("confirmed") != "1":
        return render(
            request,
            "confirm_delete.html",
            kind=kind,
            action=f"{page}/delete",
            names=[p.name for p in paths],
            cancel=page,
        )
    if check is not None:
        check(paths)
    for path in paths:
        path.unlink(missing_ok=True)
    return back(page, flash=f"Deleted {len(paths)} {kind}{'s' * (len(paths) != 1)}.")


async def staged_upload(
    request: Request, folder: Path, suffixes: tuple[str, ...], kind: str, accepted: str
) -> tuple[str, Path, Path]:
    """The file uploaded in ``request``'s form, saved under a hidden temporary name in
    ``folder``; (its name, where it is to be kept, where it is now)."""
    form = await request.form()
    file = form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        raise Refused(f"choose a {kind} file ({', '.join(suffixes)}) to upload")
    name = Path(file.filename).name
    target = confine(folder, name)
    if target.suffix not in suffixes:
        raise Refused(f"{name}: {accepted}")
    folder.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".upload-{secrets.token_hex(4)}{target.suffix}")
    await save_upload(file, staging)
    return name, target, staging


async def save_upload(upload: UploadFile, target: Path) -> None:
    """Stream an uploaded file to ``target`` (a hidden temporary name)."""

    def copy() -> None:
        with target.open("xb") as out:
            upload.file.seek(0)
            while chunk := upload.file.read(1 << 20):
                out.write(chunk)

    await in_thread(copy)


def client_host(request: Request) -> str | None:
    """The address a request came from, when the server knows it."""
    return request.client.host if request.client else None
