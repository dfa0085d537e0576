"""How the tests speak to the web UI in process (Starlette's test client), as a browser."""

from __future__ import annotations

from starlette.testclient import TestClient

LOCAL = "http://localhost"
"""The web UI answers only to names of this computer."""

HTML = {"accept": "text/html"}
"""What a browser asks for: pages, where an API client gets JSON."""


def token(client: TestClient) -> str:
    """The CSRF token a page gave this client (it changes when a session starts)."""
    return client.cookies.get("antiphon_csrf")
