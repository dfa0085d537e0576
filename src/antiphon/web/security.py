"""What keeps a browser-reachable instrument safe: file confinement, CSRF, login, limits.

- Every file route names a file by its bare name inside one workspace folder;
  ``confine`` refuses anything else, including symlinks that point outside.
- Every request that changes something must carry the CSRF token from the
  ``antiphon_csrf`` cookie: as an ``X-CSRF-Token`` header, a ``csrf_token`` field of a
  small url-encoded form, or (for file uploads, whose bodies are never buffered) a
  ``csrf_token`` query parameter. A page on another site cannot read that cookie, so
  it cannot forge the token; this holds even when no password is set.
- With ``[webui].password`` set, every page but the login page needs a signed session
  cookie; the session remembers a digest of the password, so changing the password
  logs everyone out.
- Request bodies are capped per route, counted as they stream in.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from pathlib import Path

from starlette.datastructures import URL
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_COOKIE = "antiphon_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\- ]{0,200}$")

MB = 1024 * 1024


class Refused(Exception):
    """A request antiphon will not serve; becomes a 4xx with this message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def confine(folder: Path, name: str) -> Path:
    """The file ``name`` inside ``folder``, or Refused if the name could leave it."""
    if not _SAFE_NAME.match(name) or ".." in name:
        raise Refused(f"{name!r} is not a plain file name", 400)
    path = folder / name
    base = folder.resolve()
    if not path.resolve().is_relative_to(base) or path.resolve().parent != base:
        raise Refused(f"{name!r} is outside the workspace", 403)
    return path


def new_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_token(request: HTTPConnection) -> str:
    """The token pages embed in their forms (set as a cookie by CSRFMiddleware)."""
    return request.scope.get("antiphon.csrf", "")


def password_digest(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def load_secret(path: Path) -> str:
    """The key that signs session cookies, kept so logins survive a restart."""
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    path.write_text(secret)
    path.chmod(0o600)
    return secret


class CSRFMiddleware:
    """Double-submit-cookie CSRF protection plus a same-origin check."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = HTTPConnection(scope)
        token = request.cookies.get(CSRF_COOKIE)
        fresh = not token or len(token) < 32
        if fresh:
            token = new_token()
        scope["antiphon.csrf"] = token
        if scope["method"] in UNSAFE_METHODS:
            problem = _cross_origin(request)
            if problem is None:
                supplied = request.headers.get(CSRF_HEADER) or await _form_token(scope, receive)
                if "antiphon.body" in scope:
                    receive = _replay(scope, receive)
                if fresh or not supplied or not hmac.compare_digest(supplied, token):
                    problem = (
                        "missing or wrong CSRF token: reload the page and try again "
                        "(requests from other sites are refused)"
                    )
            if problem:
                await PlainTextResponse(problem, 403)(scope, receive, send)
                return

        async def send_with_cookie(message: Message) -> None:
            if fresh and message["type"] == "http.response.start":
                cookie = f"{CSRF_COOKIE}={token}; Path=/; SameSite=Strict"
                message.setdefault("headers", []).append((b"set-cookie", cookie.encode()))
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _cross_origin(request: HTTPConnection) -> str | None:
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if URL(origin).netloc != host:
            return f"cross-site request from {origin} refused"
    return None


async def _form_token(scope: Scope, receive: Receive) -> str | None:
    """Find the token in the query string, or in a url-encoded body (read once and
    replayed to the app). Multipart bodies are uploads: they are not read here."""
    from urllib.parse import parse_qs

    query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(CSRF_FIELD)
    if query:
        return query[0]
    content_type = dict(scope["headers"]).get(b"content-type", b"").decode()
    if not content_type.startswith("application/x-www-form-urlencoded"):
        return None
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    scope["antiphon.body"] = body
    values = parse_qs(body.decode("latin-1")).get(CSRF_FIELD)
    return values[0] if values else None


def _replay(scope: Scope, receive: Receive) -> Receive:
    """Give the app the body already read, then the real stream (which reports the
    client's disconnect; reporting one early would cancel streamed responses)."""
    body = scope.pop("antiphon.body")
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class BodyLimitMiddleware:
    """Refuses request bodies larger than the route's limit, counting as they stream."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        too_big = PlainTextResponse(f"upload too large: the limit here is {limit // MB} MB", 413)
        if declared and declared.isdigit() and int(declared) > limit:
            await too_big(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise Refused(f"upload too large: the limit here is {limit // MB} MB", 413)
            return message

        try:
            await self.app(scope, counting_receive, send)
        except Refused as exc:
            await PlainTextResponse(str(exc), exc.status)(scope, receive, send)


class LoginMiddleware:
    """With a password configured, everything but the login page needs a session."""

    OPEN_PATHS = ("/login", "/static/", "/healthz")

    def __init__(self, app: ASGIApp, password: Callable[[], str | None]) -> None:
        self.app = app
        self.password = password

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        password = self.password()
        if (
            scope["type"] not in ("http", "websocket")
            or not password
            or scope["path"].startswith(self.OPEN_PATHS)
            or logged_in(HTTPConnection(scope), password)
        ):
            await self.app(scope, receive, send)
            return
        response: Response
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401})
            return
        accepts_html = "text/html" in dict(scope["headers"]).get(b"accept", b"").decode()
        if scope["method"] == "GET" and accepts_html:
            response = RedirectResponse(f"/login?next={scope['path']}", 303)
        else:
            response = PlainTextResponse("log in first: this instrument has a password", 401)
        await response(scope, receive, send)


def logged_in(connection: HTTPConnection, password: str) -> bool:
    digest = connection.session.get("password") if "session" in connection.scope else None
    return isinstance(digest, str) and hmac.compare_digest(digest, password_digest(password))
