"""Pages from templates/, with what every page needs (navigation, CSRF token, status)."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from antiphon import __version__
from antiphon.web import security
from antiphon.web.state import state

_templates = Environment(
    loader=PackageLoader("antiphon.web", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def duration(seconds: float) -> str:
    """How long, as a person reads it (antiphon.js's formatDuration says the same)."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, whole = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {whole:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def vector(values: list[float]) -> str:
    """Control values as the live pages show them."""
    return ", ".join(f"{v:.3f}" for v in values)


_templates.filters["duration"] = duration
_templates.filters["vector"] = vector

NAV = [
    ("/", "Dashboard"),
    ("/live", "Live"),
    ("/control", "Control"),
    ("/logs", "Logs"),
    ("/datasets", "Datasets"),
    ("/models", "Models"),
    ("/train", "Train"),
    ("/config", "Config"),
]


def render(request: Request, template: str, code: int = 200, /, **context: Any) -> HTMLResponse:
    """A page from templates/ (HTTP status ``code``), with what every page needs."""
    web = state(request)
    page = _templates.get_template(template).render(
        request=request,
        nav=NAV,
        path=request.url.path,
        version=__version__,
        csrf_token=security.csrf_token(request),
        playing=web.engine is not None and web.engine.problem is None,
        not_playing=web.engine.problem if web.engine is not None else None,
        has_password=bool(web.password),
        flash=request.query_params.get("flash"),
        error=request.query_params.get("error"),
        **context,
    )
    return HTMLResponse(page, code)
