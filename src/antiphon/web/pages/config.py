"""config.toml in the browser: an editor that checks everything before saving, the
configs it replaced (restorable), a setup form, and a picker for example configs."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from antiphon import config as config_schema
from antiphon.errors import AntiphonError
from antiphon.limits import MODES
from antiphon.web.config_file import HISTORY, check_text, history, save_text, saved_message
from antiphon.web.pages.common import back, client_host, existing, in_thread
from antiphon.web.pages.models import apply
from antiphon.web.render import render
from antiphon.web.security import Refused
from antiphon.web.setup_form import KINDS, SetupForm
from antiphon.web.state import WebState, state
from antiphon.workspace import config_template


def _current_text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else config_template()


def examples() -> dict[str, str]:
    """Example configs shipped with antiphon: name -> TOML text."""
    found = {"antiphon default (OSC)": config_template()}
    folder = resources.files("antiphon").joinpath("templates", "configs")
    if folder.is_dir():
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".toml"):
                found[entry.name.removesuffix(".toml")] = entry.read_text("utf-8")
    return found


def _editor(request: Request, text: str, status: int = 200, **context: object) -> Response:
    path = state(request).workspace.config_path
    return render(
        request,
        "config.html",
        status,
        text=text,
        name=path.name,
        examples=list(examples()),
        history=[p.name for p in history(path)],
        **context,
    )


def _as_run_checks(web: WebState) -> tuple[object, ...]:
    """The command-line overrides and model the engine plays with, so a config is
    checked as the next reload will read it."""
    setup = web.engine.setup if web.engine is not None else None
    return (setup.overrides, setup.explicit_model) if setup else ()


async def check_config(web: WebState, text: str) -> config_schema.Config:
    """Everything a start or reload checks (the model too); raises AntiphonError."""
    return await in_thread(check_text, web.workspace.config_path, text, *_as_run_checks(web))


async def save_config(web: WebState, text: str, client: str | None) -> config_schema.Config:
    """Check ``text`` completely, then make it the config (the old one into history)."""
    path = web.workspace.config_path
    checked = await in_thread(save_text, path, text, client, *_as_run_checks(web))
    web.take_webui(checked.webui)  # a new password or allowed host applies at once
    return checked


async def editor(request: Request) -> Response:
    web = state(request)
    path = web.workspace.config_path
    example = request.query_params.get("example")
    if example is not None:
        text = examples().get(example)
        if text is None:
            raise Refused(f"no example config called {example!r}", 404)
        return _editor(
            request,
            text,
            notice=f"Loaded the example “{example}”: review it, "
            "then save. config.toml is unchanged until you do.",
        )
    text = await in_thread(_current_text, path)
    try:  # the file's own checks: loading its model waits for "Check" (it costs the engine)
        parsed = await in_thread(config_schema.parse, text, path)
        return _editor(request, text, warnings=parsed.warnings)
    except AntiphonError as exc:
        return _editor(request, text, problem=str(exc))


async def save(request: Request) -> Response:
    web = state(request)
    form = await request.form()
    text = str(form.get("text", "")).replace("\r\n", "\n")
    action = str(form.get("action", "check"))
    try:
        checked = (
            await check_config(web, text)
            if action == "check"
            else await save_config(web, text, client_host(request))
        )
    except AntiphonError as exc:
        return _editor(request, text, 422, problem=str(exc))
    if action == "check":
        return _editor(
            request,
            text,
            warnings=checked.warnings,
            notice="This config can be played. It is not saved yet.",
        )
    return await _saved(web, action == "apply")


async def restore(request: Request) -> Response:
    """Make one of the configs in the history the config again (checked as any save)."""
    web = state(request)
    form = await request.form()
    path = web.workspace.config_path
    kept = existing(path.parent / HISTORY, str(form.get("name", "")), "kept config")
    text = await in_thread(kept.read_text, "utf-8")
    try:
        await save_config(web, text, client_host(request))
    except AntiphonError as exc:
        return _editor(request, text, 422, problem=f"{kept.name} cannot be played: {exc}")
    return await _saved(web, True, f"Restored {kept.name}.")


async def _saved(web: WebState, reload: bool, done: str = "") -> Response:
    message = " ".join(filter(None, (done, saved_message(web.workspace.config_path))))
    if reload:
        return back("/config", **await apply(web, message))
    return back("/config", flash=message)


async def setup(request: Request) -> Response:
    web = state(request)
    path = web.workspace.config_path
    current = await in_thread(_current_text, path)
    if request.method == "GET":
        return await _setup_page(request, await in_thread(_form_for, current, path))
    setup_form = SetupForm.from_form(await request.form())
    if (await request.form()).get("action") != "generate":
        return await _setup_page(request, setup_form)
    try:
        text = setup_form.to_toml(current)
    except ValueError:  # the current text is not TOML at all: answer from the template
        text = setup_form.to_toml(config_template())
    return _editor(
        request,
        text,
        notice="Here is your config with the setup form's answers. Save it to use it.",
    )


def _form_for(text: str, path: Path) -> SetupForm:
    """The form as the config has it (parsing may probe addresses: call it in a thread)."""
    try:
        return SetupForm.from_config(config_schema.parse(text, path))
    except config_schema.ConfigError:  # a config the form cannot read: the template's
        return SetupForm.from_config(config_schema.parse(config_template()))


async def _setup_page(request: Request, form: SetupForm) -> Response:
    return render(
        request,
        "setup.html",
        setup=form,
        kinds=KINDS,
        modes=MODES,
        midi_ports=await in_thread(midi_port_names),
    )


def midi_port_names() -> dict[str, list[str]]:
    """MIDI ports this computer can see now, offered as suggestions in the form."""
    try:
        import mido

        return {"in": mido.get_input_names(), "out": mido.get_output_names()}
    except Exception:  # no MIDI system (no ALSA sequencer): nothing to suggest
        return {"in": [], "out": []}


routes = [
    Route("/config", editor),
    Route("/config", save, methods=["POST"]),
    Route("/config/restore", restore, methods=["POST"]),
    Route("/config/setup", setup, methods=["GET", "POST"]),
]
