"""The login page, shown only when ``[webui].password`` is set (web/sessions.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from antiphon.web import security, sessions
from antiphon.web.pages.common import client_host
from antiphon.web.render import render
from antiphon.web.state import state


def _next_url(value: object) -> str:
    url = str(value or "/")
    return url if url.startswith("/") and not url.startswith("//") else "/"


async def login(request: Request) -> Response:
    web = state(request)
    if request.method == "GET":
        return render(request, "login.html", next=_next_url(request.query_params.get("next")))
    form = await request.form()
    after = _next_url(form.get("next"))
    if web.password is None:  # nothing to log in to
        return RedirectResponse(after, 303)
    address = client_host(request) or "unknown"
    wait = web.attempts.wait(address)
    if wait:
        return _again(request, after, 429, wait, "Too many wrong passwords from this computer.")
    if not web.attempts.begin(address):
        return _again(request, after, 429, 1, "A password from this computer is being checked.")
    try:
        right = await web.password.check(str(form.get("password", "")))
    except sessions.Busy:
        return _again(request, after, 503, 5, "Too many people are logging in at once.")
    finally:
        web.attempts.end(address)
    if not right:
        web.attempts.wrong(address)
        wrong = "That password is not right."
        return render(request, "login.html", 401, next=after, login_error=wrong)
    web.attempts.right(address)
    token, session = web.sessions.start()
    response = RedirectResponse(after, 303)
    sessions.set_session_cookie(response, token)
    response.headers.append("set-cookie", security.csrf_cookie(session.csrf))
    return response


def _again(request: Request, after: str, status: int, wait: float, why: str) -> Response:
    seconds = sessions.seconds(wait)
    response = render(
        request, "login.html", status, next=after, login_error=f"{why} Try again in {seconds} s."
    )
    response.headers["retry-after"] = str(seconds)
    return response


async def logout(request: Request) -> Response:
    web = state(request)
    web.sessions.end(request.cookies.get(sessions.SESSION_COOKIE))
    response = RedirectResponse("/login", 303)
    sessions.clear_session_cookie(response)
    response.headers.append("set-cookie", security.csrf_cookie(security.new_token()))
    return response


routes = [
    Route("/login", login, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["POST"]),
]
