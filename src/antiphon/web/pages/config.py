"""config.toml in the browser: an editor that validates before saving, a setup form,
and a picker for example configs."""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from antiphon import config as config_schema
from antiphon.config import ConfigError, WebUIConfig
from antiphon.web.app import render, state
from antiphon.web.config_file import save_text, saved_message
from antiphon.web.pages.common import back, client_host, in_thread
from antiphon.web.pages.models import apply
from antiphon.web.security import Refused
from antiphon.web.setup_form import KINDS, SetupForm
from antiphon.workspace import config_template


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
    name = state(request).workspace.config_path.name
    return render(
        request, "config.html", status, text=text, name=name, examples=list(examples()), **context
    )


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
    text = path.read_text(encoding="utf-8") if path.exists() else config_template()
    try:
        checked = config_schema.parse(text, path)
        return _editor(request, text, warnings=checked.warnings)
    except ConfigError as exc:
        return _editor(request, text, problem=str(exc))


async def save(request: Request) -> Response:
    web = state(request)
    form = await request.form()
    text = str(form.get("text", "")).replace("\r\n", "\n")
    action = str(form.get("action", "check"))
    path = web.workspace.config_path
    try:
        checked = (
            config_schema.parse(text, path)
            if action == "check"
            else await in_thread(save_text, path, text, client_host(request))
        )
    except ConfigError as exc:
        return _editor(request, text, 422, problem=str(exc))
    if action == "check":
        return _editor(
            request,
            text,
            warnings=checked.warnings,
            notice="This config is valid. It is not saved yet.",
        )
    web.refresh_password()
    if action == "apply":
        return back(
            "/config",
            **await apply(web, saved_message(web.workspace.config_path)),
        )
    return back("/config", flash=saved_message(web.workspace.config_path))


async def setup(request: Request) -> Response:
    web = state(request)
    if request.method == "GET":
        return render(
            request,
            "setup.html",
            setup=SetupForm.blank(),
            kinds=KINDS,
            modes=config_schema.MODES,
            midi_ports=await in_thread(midi_port_names),
        )
    form = await request.form()
    setup_form = SetupForm.from_form(form)
    if form.get("action") != "generate":
        return render(
            request,
            "setup.html",
            setup=setup_form,
            kinds=KINDS,
            modes=config_schema.MODES,
            midi_ports=await in_thread(midi_port_names),
        )
    current = web.read_config()
    text = setup_form.to_toml(current.webui if current else WebUIConfig())
    checked = config_schema.parse(text, web.workspace.config_path)
    return _editor(
        request,
        text,
        warnings=checked.warnings,
        notice="Here is the config the setup form made. Save it to use it.",
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
    Route("/config/setup", setup, methods=["GET", "POST"]),
]
