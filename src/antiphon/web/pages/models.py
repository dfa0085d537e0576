"""Models: list, upload (validated before it is kept), download, delete, use."""

from __future__ import annotations

import filecmp
from pathlib import Path
from typing import Any

import tomlkit
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from antiphon.errors import AntiphonError
from antiphon.model.loader import SUFFIXES
from antiphon.model.presets import Architecture
from antiphon.web import listing, uploads
from antiphon.web.config_file import edit_config
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


async def index(request: Request) -> Response:
    web = state(request)
    config = await web.config_now()
    playing = web.playing_model()
    if web.engine is None:  # `antiphon web`: what config.toml will play
        playing = config.model_path if config else None
    return render(
        request,
        "models.html",
        models=await in_thread(listing.model_infos, web.workspace.models),
        config=config,
        current=playing.name if playing else None,
        suffixes=", ".join(SUFFIXES),
    )


async def upload(request: Request) -> Response:
    name, arch, new = await receive(state(request), request)
    if not new:
        return back("/models", flash=f"{name} is already here, exactly the same.")
    return back("/models", flash=f"Uploaded {name}: {arch.describe()}.")


async def receive(
    web: WebState, request: Request, dimension: int | None = None
) -> tuple[str, Any, bool]:
    """Keep the model uploaded in ``request`` if it is valid; (name, architecture, new).

    Sending the same file again is not an error (a workshop re-runs its push to every
    instrument); a different file under an existing name is refused. ``dimension``
    refuses a model of another dimension before it is kept (it is to be played at
    once: a model that cannot be must not stay behind)."""
    name, target, staging = await staged_upload(
        request,
        web.workspace.models,
        SUFFIXES,
        "model",
        f"antiphon reads {', '.join(SUFFIXES)} model files",
    )
    if target.exists():
        same = await in_thread(filecmp.cmp, staging, target, False)
        staging.unlink()
        if not same:
            raise Refused(
                f"a different model called {name} already exists; rename the file (models "
                "are never overwritten) or delete the old one first",
                409,
            )
        _, arch, _ = await in_thread(listing.describe_model, target)
        return name, arch, False
    try:
        checked = await uploads.check("model", staging, name)
        found = checked["architecture"]["dimension"]
        if dimension is not None and found != dimension:
            raise Refused(_other_dimension(name, found, dimension), 409)
        await in_thread(uploads.keep, staging, target)
    except AntiphonError as exc:
        raise Refused(str(exc)) from None
    finally:
        staging.unlink(missing_ok=True)
    return name, Architecture(**checked["architecture"]), True


def _other_dimension(name: str, found: int, configured: int) -> str:
    return (
        f"{name} has dimension {found} but config.toml has dimension {configured}; change "
        "[model].dimension (and any mappings) on the Config page first"
    )


async def download(request: Request) -> Response:
    path = existing(state(request).workspace.models, request.path_params["name"], "model")
    return FileResponse(path, filename=path.name, media_type="application/octet-stream")


async def delete(request: Request) -> Response:
    web = state(request)

    config = await web.config_now()
    in_use = {
        path.resolve(): why
        for path, why in (
            (web.playing_model(), "is playing now"),
            (config.model_path if config else None, "is the model config.toml plays"),
        )
        if path is not None
    }

    def not_the_one_playing(paths: list[Path]) -> None:
        for path in paths:
            if path.resolve() in in_use:
                raise Refused(f"{path.name} {in_use[path.resolve()]}; choose another first", 409)

    return await confirmed_delete(
        request, web.workspace.models, "model", SUFFIXES, not_the_one_playing
    )


async def use(request: Request) -> Response:
    """Make config.toml play this model and reload the engine without restarting."""
    form = await request.form()
    outcome = await use_model(state(request), str(form.get("name", "")))
    return back("/models", **outcome)


async def use_model(web: WebState, name: str) -> dict[str, str]:
    """Point config.toml at ``name`` (checked first) and reload; the outcome message."""
    path = existing(web.workspace.models, name, "model")
    info = await in_thread(listing.model_info, path)
    if info.problem:
        raise Refused(f"{path.name} cannot be played: {info.problem}")
    config = await web.config_now()
    if config is None:
        raise Refused("config.toml is missing or invalid: fix it on the Config page first")
    if info.dimension != config.model.dimension:
        raise Refused(_other_dimension(path.name, info.dimension, config.model.dimension), 409)
    relative = path.relative_to(web.workspace.root).as_posix()
    await in_thread(
        edit_config, web.workspace.config_path, lambda doc: _set_model_file(doc, relative)
    )
    return await apply(web, f"config.toml now plays {path.name}.")


def _set_model_file(doc: tomlkit.TOMLDocument, relative: str) -> None:
    model = doc.get("model")
    if model is None:
        model = tomlkit.table()
        doc["model"] = model
    model["file"] = relative


async def apply(web: WebState, message: str) -> dict[str, str]:
    """Reload the running engine after a config change; the message for the next page."""
    if web.engine is None:
        return {"flash": f"{message} It plays the next time antiphon runs."}
    try:
        await web.engine.reload()
    except AntiphonError as exc:
        return {"error": f"{message} But the engine kept its old setup: {exc}"}
    return {"flash": f"{message} The engine reloaded it."}


routes = [
    Route("/models", index),
    Route("/models/upload", upload, methods=["POST"]),
    Route("/models/delete", delete, methods=["POST"]),
    Route("/models/use", use, methods=["POST"]),
    Route("/models/{name}/download", download),
]
