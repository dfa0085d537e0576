"""The login page, shown only when ``[webui].password`` is set."""

from __future__ import annotations

import asyncio
import hmac

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from antiphon.web.app import render, state
from antiphon.web.security import password_digest


def _next_url(value: object) -> str:
    url = str(value or "/")
    return url if url.startswith("/") and not url.startswith("//") else "/"


async def login(request: Request) -> Response:
    web = state(request)
    if request.method == "GET":
        return render(request, "login.html", next=_next_url(request.query_params.get("next")))
    form = await request.form()
    supplied = str(form.get("password", ""))
    if web.password and hmac.compare_digest(supplied.encode(), web.password.encode()):
        request.session["password"] = password_digest(web.password)
        return RedirectResponse(_next_url(form.get("next")), 303)
    await asyncio.sleep(0.5)  # slows guessing without blocking anyone else
    return render(
        request,
        "login.html",
        401,
        next=_next_url(form.get("next")),
        login_error="That password is not right.",
    )


async def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/login", 303)


routes = [
    Route("/login", login, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["POST"]),
]
