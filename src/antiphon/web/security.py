"""What keeps a browser-reachable instrument safe: who may reach it, and what they may do.

What is exposed (docs/security.md says it for people): the web UI listens on
``[webui].host`` (127.0.0.1 by default; 0.0.0.0 on an instrument reached over USB or
Wi-Fi), and with it everything an instrument has: its performance logs, datasets and
models (read, upload, delete), its config (read and replace), commands to the engine,
training runs. Without ``[webui].password`` anyone who can reach the port can do all
of that; the password is the only thing that tells people apart. What keeps other
*web pages* (which a user's browser visits while it can reach the instrument) out:

- Host: a request must name this computer (localhost, its hostname and
  ``<hostname>.local``, its addresses, or ``[webui].allowed_hosts``); anything else is
  refused with 421. A page on another site that re-points its own name at this
  computer (DNS rebinding) is then same-origin with nothing here.
- CSRF: every request that changes something carries the ``antiphon_csrf`` cookie's
  token, as an ``X-CSRF-Token`` header, a ``csrf_token`` field of a small url-encoded
  form, or (for uploads, whose bodies are never buffered) a ``csrf_token`` query
  parameter; a request whose Origin is another site is refused. Logged in, the token
  is the session's own: a token from one session does not work in another. The live
  page's WebSocket, which carries no token, must come from this site's own pages (its
  Origin, when a browser sends one, names the Host it asked for).
- Login (web/sessions.py): the password is checked with scrypt on a thread of its own,
  at most five wrong tries a minute per address; a session is a random token kept in
  memory, ended by logging out, by a new password and by a restart.
- Files: every file route names a file by its bare name inside one workspace folder;
  ``confine`` refuses anything else, including symlinks that point outside.
- Sizes: request bodies are capped per route, counted as they stream in; connections
  are capped and timed (web/connections.py), live pages too (web/pages/live.py).

Not covered: the traffic is plain HTTP (a network that can be listened to can read
the password and the session cookie: use the instrument's own Wi-Fi or USB link), and
OSC, MIDI and the WebSocket channel have no password at all (docs/security.md).
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable
from pathlib import Path

from starlette.datastructures import URL
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from antiphon.hosts import Hosts
from antiphon.web.sessions import SESSION_COOKIE, Session, Sessions

CSRF_COOKIE = "antiphon_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\- ]{0,200}$")

MB = 1024 * 1024
FORM_LIMIT = 1 * MB
"""The largest body that is not an upload: a form or JSON (the config editor's text)."""


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


class HostMiddleware:
    """Serves only requests that name this computer (see ``Hosts``); 421 otherwise."""

    def __init__(self, app: ASGIApp, hosts: Callable[[], Hosts]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        hosts = self.hosts()
        asked = connection.headers.get("host", "")
        if hosts.allows(asked, scope.get("server")):
            await self.app(scope, receive, send)
            return
        await refuse(scope, receive, send, hosts.refusal(asked), 421)


async def refuse(scope: Scope, receive: Receive, send: Send, message: str, status: int) -> None:
    """A plain-text refusal, for an HTTP request or a WebSocket handshake alike."""
    response = PlainTextResponse(message, status)
    if scope["type"] == "http":
        await response(scope, receive, send)
    elif "websocket.http.response" in scope.get("extensions", {}):
        await WebSocket(scope, receive, send).send_denial_response(response)
    else:
        await send({"type": "websocket.close", "code": 1008})


class SessionMiddleware:
    """Finds the login session a request's cookie names (``scope["antiphon.session"]``)."""

    def __init__(self, app: ASGIApp, sessions: Callable[[], Sessions]) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            token = HTTPConnection(scope).cookies.get(SESSION_COOKIE)
            scope["antiphon.session"] = self.sessions().find(token)
        await self.app(scope, receive, send)


def session(connection: HTTPConnection) -> Session | None:
    return connection.scope.get("antiphon.session")


class CSRFMiddleware:
    """Double-submit-cookie CSRF protection (the token is the session's once logged in)
    plus a same-origin check, also for WebSocket handshakes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            problem = _cross_origin(HTTPConnection(scope), websocket=True)
            if problem:
                await refuse(scope, receive, send, problem, 403)
            else:
                await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = HTTPConnection(scope)
        cookie = request.cookies.get(CSRF_COOKIE)
        logged_in = session(request)
        if logged_in is not None:
            token = logged_in.csrf
            unknown = False  # the session's token is known even if the cookie is stale
        else:
            unknown = not cookie or len(cookie) < 32
            token = cookie if cookie and not unknown else new_token()
        scope["antiphon.csrf"] = token
        if scope["method"] in UNSAFE_METHODS:
            problem = _cross_origin(request)
            if problem is None:
                supplied = request.headers.get(CSRF_HEADER) or await _form_token(scope, receive)
                if "antiphon.body" in scope:
                    receive = _replay(scope, receive)
                if unknown or not supplied or not _same(supplied, token):
                    problem = (
                        "missing or wrong CSRF token: reload the page and try again "
                        "(requests from other sites are refused)"
                    )
            if problem:
                await PlainTextResponse(problem, 403)(scope, receive, send)
                return
        set_cookie = cookie != token

        async def send_with_cookie(message: Message) -> None:
            if set_cookie and message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                if not any(
                    name == b"set-cookie" and value.startswith(CSRF_COOKIE.encode() + b"=")
                    for name, value in headers
                ):  # the page may have set a new one itself (logging in or out)
                    headers.append((b"set-cookie", csrf_cookie(token).encode()))
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _same(supplied: str, token: str) -> bool:
    """Constant-time comparison; ``supplied`` comes from outside and may hold any
    character (``compare_digest`` refuses non-ASCII strings with an error)."""
    return hmac.compare_digest(supplied.encode("utf-8", "replace"), token.encode())


def csrf_cookie(token: str) -> str:
    return f"{CSRF_COOKIE}={token}; Path=/; SameSite=Strict"


def from_this_site(connection: HTTPConnection) -> bool:
    """Whether a browser page served by this instrument made the request: an Origin
    that names this Host (a program sends no Origin, and is not a page)."""
    return bool(connection.headers.get("origin")) and (
        _cross_origin(connection, websocket=True) is None
    )


def _cross_origin(request: HTTPConnection, *, websocket: bool = False) -> str | None:
    """A reason to refuse a request whose Origin is another site. A WebSocket has no
    CSRF token, so there an opaque origin ("null": a sandboxed frame, a local file)
    is refused too; a client that sends no Origin is not a browser page."""
    origin = request.headers.get("origin")
    if not origin or (origin == "null" and not websocket):
        return None
    try:
        same = origin != "null" and URL(origin).netloc == request.headers.get("host", "")
    except ValueError:  # not a URL at all, e.g. "http://["
        same = False
    return None if same else f"cross-site request from {origin[:100]!r} refused"


async def _form_token(scope: Scope, receive: Receive) -> str | None:
    """Find the token in the query string, or in a url-encoded body (read once and
    replayed to the app). Multipart bodies are uploads: they are not read here."""
    from urllib.parse import parse_qs

    query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(CSRF_FIELD)
    if query:
        return query[0]
    content_type = _header(scope, b"content-type")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        return None
    body = bytearray()
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > FORM_LIMIT:  # an upload route's own limit is for files, not forms
            raise Refused(f"form too large: the limit is {FORM_LIMIT // MB} MB", 413)
        more = message.get("more_body", False)
    body = bytes(body)
    scope["antiphon.body"] = body
    values = parse_qs(body.decode("latin-1")).get(CSRF_FIELD)
    return values[0] if values else None


def _header(scope: Scope, name: bytes) -> str:
    """One request header as text. Latin-1, as HTTP defines it: any byte decodes, so a
    header from outside can never raise here."""
    return dict(scope["headers"]).get(name, b"").decode("latin-1")


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
        declared = _header(scope, b"content-length")
        too_big = PlainTextResponse(f"upload too large: the limit here is {limit // MB} MB", 413)
        if declared.isdigit() and (len(declared) > 18 or int(declared) > limit):
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

    def __init__(self, app: ASGIApp, password_set: Callable[[], bool]) -> None:
        self.app = app
        self.password_set = password_set

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] not in ("http", "websocket")
            or not self.password_set()
            or scope["path"].startswith(self.OPEN_PATHS)
            or scope.get("antiphon.session") is not None
        ):
            await self.app(scope, receive, send)
            return
        response: Response
        if scope["type"] == "websocket":
            await refuse(scope, receive, send, "log in first: this instrument has a password", 401)
            return
        accepts_html = "text/html" in _header(scope, b"accept")
        if scope["method"] == "GET" and accepts_html:
            response = RedirectResponse(f"/login?next={scope['path']}", 303)
        else:
            response = PlainTextResponse("log in first: this instrument has a password", 401)
        await response(scope, receive, send)
