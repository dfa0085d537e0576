"""Talking to a running instrument's web UI from a laptop: `antiphon remote`.

One ``Instrument`` per address; it logs in when a password is set, carries the CSRF
token every change needs, and turns failures into messages a workshop can act on
("is the Pi connected?", "wrong password") rather than tracebacks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from antiphon.data.logs import NAME_PATTERN
from antiphon.errors import AntiphonError

CSRF_COOKIE = "antiphon_csrf"
KINDS = {"logs": "/api/logs", "datasets": "/api/datasets", "models": "/api/models"}


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    mtime: float


class Instrument:
    def __init__(self, url: str, *, password: str | None = None, timeout: float = 30) -> None:
        if "://" not in url:
            url = f"http://{url}"
        self.url = url.rstrip("/")
        self._client = httpx.Client(base_url=self.url, timeout=timeout, follow_redirects=False)
        self._password = password
        self._ready = False

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Instrument:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the conversation -------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if not self._ready:
            self._connect()
        headers = {
            "x-csrf-token": self._client.cookies.get(CSRF_COOKIE, ""),
            "accept": "application/json",
            **kwargs.pop("headers", {}),
        }
        try:
            response = self._client.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if response.status_code == 401:
            raise AntiphonError(
                f"{self.url} asks for a password: give it with --password (or ANTIPHON_PASSWORD)"
                if not self._password
                else f"{self.url} refused the password"
            )
        if response.status_code >= 400:
            raise AntiphonError(f"{self.url}: {_message(response)}")
        return response

    def _connect(self) -> None:
        try:
            self._client.get("/healthz")  # sets the CSRF cookie
            if self._password:
                response = self._client.post(
                    "/login",
                    data={
                        "csrf_token": self._client.cookies.get(CSRF_COOKIE, ""),
                        "password": self._password,
                        "next": "/",
                    },
                )
                if response.status_code != 303:
                    raise AntiphonError(f"{self.url} refused the password")
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        self._ready = True

    def _unreachable(self, exc: httpx.HTTPError) -> AntiphonError:
        return AntiphonError(
            f"cannot reach {self.url} ({type(exc).__name__}): is antiphon running there, and "
            "is this computer connected to it (USB cable, same network)?"
        )

    # -- what a workshop does ---------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return self._request("GET", "/api/status").json()

    def files(self, kind: str) -> list[RemoteFile]:
        entries = self._request("GET", KINDS[kind]).json()
        return [RemoteFile(e["name"], e["size"], e["mtime"]) for e in entries]

    def download(self, kind: str, name: str, destination: Path) -> Path:
        """Fetch one file, written under a temporary name and renamed when complete."""
        if not self._ready:
            self._connect()
        partial = destination.with_name(f".{destination.name}.part")
        with self._client.stream("GET", f"/{kind}/{quote(name)}/download") as response:
            if response.status_code >= 400:
                response.read()
                raise AntiphonError(f"{self.url}: {_message(response)}")
            with partial.open("wb") as f:
                for chunk in response.iter_bytes():
                    f.write(chunk)
        os.replace(partial, destination)
        return destination

    def push_model(self, path: Path, *, use: bool) -> str:
        with path.open("rb") as f:
            created = self._request("POST", "/api/models", files={"file": (path.name, f)}).json()
        done = "uploaded" if created.get("new", True) else "already has"
        message = f"{done} {created['name']} ({created['architecture']})"
        if use:
            outcome = self._request("POST", "/api/models/use", json={"name": path.name}).json()
            message += f"; {outcome.get('flash') or outcome.get('error')}"
        return message

    def push_config(self, path: Path, *, apply: bool) -> str:
        outcome = self._request(
            "PUT", "/api/config", params={"apply": "1" if apply else "0"}, content=path.read_bytes()
        ).json()
        return outcome.get("flash") or outcome.get("error", "")


def new_files(
    remote: list[RemoteFile], folder: Path, since: datetime | None
) -> Iterator[RemoteFile]:
    """What is on the instrument and not yet here (same name, or a kept-apart variant of
    it, with the same size), newer than since."""
    for file in remote:
        if since is not None and datetime.fromtimestamp(file.mtime) < since:
            continue
        if any(local.stat().st_size == file.size for local in _variants(folder, file.name)):
            continue
        yield file


def keep(downloaded: Path, folder: Path, name: str) -> Path:
    """Move a downloaded file into ``folder`` as ``name`` without losing anything here.

    A file that has grown since the last pull (a log still being written then) replaces
    the shorter copy. A different file with the same name (two instruments began a
    performance in the same second) is kept beside it under the next free variant name.
    """
    new = downloaded.read_bytes()
    for local in _variants(folder, name):
        old = local.read_bytes()
        if old == new:
            downloaded.unlink()
            return local
        if new.startswith(old):
            os.replace(downloaded, local)
            return local
    n = 1
    target = folder / name
    while target.exists():
        n += 1
        target = folder / _variant(name, n)
    os.replace(downloaded, target)
    return target


def _variants(folder: Path, name: str) -> list[Path]:
    """``name`` and its numbered variants that exist in ``folder``."""
    found, candidate, n = [], folder / name, 1
    while candidate.exists():
        found.append(candidate)
        n += 1
        candidate = folder / _variant(name, n)
    return found


def _variant(name: str, n: int) -> str:
    """The n-th name for a file called ``name``; a log keeps IMPSY's ending, with the
    counter after its time as when two performances start in one second."""
    match = NAME_PATTERN.search(name)
    if match and match[2] is None:
        return f"{match[1]}-{n}{name[match.end(1) :]}"
    path = Path(name)
    return f"{path.stem}-{n}{path.suffix}"


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", response.text))
    except ValueError:
        return response.text.strip() or f"HTTP {response.status_code}"
