"""Talking to a running instrument's web UI from a laptop: `antiphon remote`.

One ``Instrument`` per address; it logs in when a password is set, carries the CSRF
token every change needs, and turns failures into messages a workshop can act on
("is the Pi connected?", "wrong password") rather than tracebacks.

An instrument is another computer on the network, so what it says is checked like
any input: a file name it lists becomes a path on this laptop only if it is a plain
name (no separators, no ``..``, not hidden, the kind's suffix, at most
``MAX_NAME_BYTES``); others are refused and reported (``/../../../tmp/x.log`` once
escaped ``--into``). Every answer is read up to a bound (``MAX_JSON``, and per kind
``MAX_DOWNLOAD``), and a download is written to a new file that is never a symlink
planted in ``--into``, then renamed onto its name.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from antiphon.data.logs import NAME_PATTERN
from antiphon.data.npz import MAX_DATASET_BYTES
from antiphon.errors import AntiphonError
from antiphon.storage import FILE_MODE

CSRF_COOKIE = "antiphon_csrf"
KINDS = {"logs": "/api/logs", "datasets": "/api/datasets", "models": "/api/models"}
SUFFIXES = {"logs": ".log", "datasets": ".npz"}
"""The suffix a pulled file of each kind must have."""
MAX_NAME_BYTES = 200
"""A file name's length at most (file systems allow 255 bytes, and variants add a few)."""
MAX_JSON = 8 << 20
"""Bytes of a JSON answer read at most: a listing of 100 000 files fits."""
MAX_MESSAGE = 500
"""Characters of a message from an instrument shown at most."""
MAX_DOWNLOAD = {"logs": 1 << 30, "datasets": MAX_DATASET_BYTES}
"""Bytes of one pulled file at most: ten hours of a 9-D sensor at 100 Hz is 0.4 GB."""


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    mtime: float


def plain_name(name: object, suffix: str) -> str:
    """``name`` when it is safe to use as a file name in a folder here; AntiphonError
    saying what is wrong otherwise."""
    if not isinstance(name, str):
        raise AntiphonError(f"a name that is not text: {name!r}")
    shown = repr(name[:80])
    if not name or len(name.encode("utf-8", "replace")) > MAX_NAME_BYTES:
        raise AntiphonError(f"{shown}: empty, or longer than {MAX_NAME_BYTES} bytes")
    if any(c in name for c in "/\\") or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise AntiphonError(f"{shown}: not a plain file name (separators or control characters)")
    if name.startswith("."):  # hidden, or . and ..
        raise AntiphonError(f"{shown}: a hidden or relative name")
    if not name.endswith(suffix) or name == suffix:
        raise AntiphonError(f"{shown}: does not end in {suffix}")
    return name


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
    def _send(self, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, bytes]:
        """One request; the answer's body read up to ``MAX_JSON`` bytes."""
        try:
            request = self._client.build_request(method, path, **kwargs)
            response = self._client.send(request, stream=True)
            try:
                body = _read_at_most(response, MAX_JSON, f"{self.url}{path}")
            finally:
                response.close()
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        return response, body

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request carrying the CSRF token; its JSON answer."""
        if not self._ready:
            self._connect()
        headers = {
            "x-csrf-token": self._client.cookies.get(CSRF_COOKIE, ""),
            "accept": "application/json",
            **kwargs.pop("headers", {}),
        }
        response, body = self._send(method, path, headers=headers, **kwargs)
        if response.status_code == 401:
            raise AntiphonError(
                f"{self.url} asks for a password: give it with --password (or ANTIPHON_PASSWORD)"
                if not self._password
                else f"{self.url} refused the password"
            )
        if response.status_code >= 400:
            raise AntiphonError(f"{self.url}: {_message(response, body)}")
        try:
            return json.loads(body)
        except ValueError:
            raise AntiphonError(f"{self.url}{path} answered something that is not JSON") from None

    def _connect(self) -> None:
        self._send("GET", "/healthz")  # sets the CSRF cookie
        if self._password:
            response, _ = self._send(
                "POST",
                "/login",
                data={
                    "csrf_token": self._client.cookies.get(CSRF_COOKIE, ""),
                    "password": self._password,
                    "next": "/",
                },
            )
            if response.status_code != 303:
                raise AntiphonError(f"{self.url} refused the password")
        self._ready = True

    def _unreachable(self, exc: httpx.HTTPError) -> AntiphonError:
        return AntiphonError(
            f"cannot reach {self.url} ({type(exc).__name__}): is antiphon running there, and "
            "is this computer connected to it (USB cable, same network)?"
        )

    # -- what a workshop does ---------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return self._request("GET", "/api/status")

    def files(self, kind: str) -> tuple[list[RemoteFile], list[str]]:
        """The files of ``kind`` the instrument lists, and why any entry was refused."""
        entries = self._request("GET", KINDS[kind])
        if not isinstance(entries, list):
            raise AntiphonError(f"{self.url}{KINDS[kind]} is not a list of files")
        found, refused = [], []
        for entry in entries:
            try:
                found.append(_remote_file(entry, SUFFIXES[kind]))
            except AntiphonError as exc:
                refused.append(str(exc))
        return found, refused

    def download(self, kind: str, name: str, into: Path) -> Path:
        """Fetch one file into a new hidden file in ``into`` (never through a symlink),
        at most ``MAX_DOWNLOAD[kind]`` bytes; returns where it is."""
        name = plain_name(name, SUFFIXES[kind])
        if not self._ready:
            self._connect()
        partial = into / f".{name}.pulled"
        partial.unlink(missing_ok=True)  # a symlink planted there is removed, not followed
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        limit = MAX_DOWNLOAD[kind]
        try:
            with (
                self._client.stream("GET", f"/{kind}/{quote(name)}/download") as response,
                os.fdopen(os.open(partial, flags, FILE_MODE), "wb") as f,
            ):
                if response.status_code >= 400:
                    body = _read_at_most(response, MAX_JSON, name)
                    raise AntiphonError(f"{self.url}: {_message(response, body)}")
                written = 0
                for chunk in response.iter_bytes():
                    written += len(chunk)
                    if written > limit:
                        raise AntiphonError(
                            f"{self.url} sent more than {limit >> 20} MB for {name}; not kept"
                        )
                    f.write(chunk)
        except httpx.HTTPError as exc:
            partial.unlink(missing_ok=True)
            raise self._unreachable(exc) from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return partial

    def push_model(self, path: Path, *, use: bool) -> str:
        with path.open("rb") as f:  # ?use=1: one it cannot play is refused, not kept
            created = self._request(
                "POST",
                "/api/models",
                params={"use": "1"} if use else {},
                files={"file": (path.name, f)},
            )
        done = "uploaded" if created.get("new", True) else "already has"
        message = f"{done} {created['name']} ({created['architecture']})"
        if use:
            outcome = self._request("POST", "/api/models/use", json={"name": path.name})
            message += f"; {outcome.get('flash') or outcome.get('error')}"
        return message

    def push_config(self, path: Path, *, apply: bool) -> str:
        outcome = self._request(
            "PUT", "/api/config", params={"apply": "1" if apply else "0"}, content=path.read_bytes()
        )
        return outcome.get("flash") or outcome.get("error", "")


def new_files(
    remote: list[RemoteFile], folder: Path, since: datetime | None
) -> Iterator[RemoteFile]:
    """What is on the instrument and not yet here (same name, or a kept-apart variant of
    it, with the same size), newer than since."""
    for file in remote:
        if since is not None and datetime.fromtimestamp(file.mtime) < since:
            continue
        if any(
            _plain_file(local) and local.lstat().st_size == file.size
            for local in _variants(folder, file.name)
        ):
            continue
        yield file


def keep(downloaded: Path, folder: Path, name: str) -> Path:
    """Move a downloaded file into ``folder`` as ``name`` without losing anything here.

    A file that has grown since the last pull (a log still being written then) replaces
    the shorter copy. A different file with the same name (two instruments began a
    performance in the same second) is kept beside it under the next free variant name.
    A name taken by something other than a plain file (a symlink) is left alone.
    """
    size = downloaded.stat().st_size
    for local in _variants(folder, name):
        if not _plain_file(local) or local.stat().st_size > size or not _begins(downloaded, local):
            continue
        if local.stat().st_size == size:
            downloaded.unlink()
        else:
            os.replace(downloaded, local)
        return local
    n = 1
    target = folder / name
    while _taken(target):
        n += 1
        target = folder / _variant(name, n)
    os.replace(downloaded, target)
    return target


def _begins(whole: Path, start: Path, chunk: int = 1 << 20) -> bool:
    """Whether the file ``whole`` begins with all of ``start``, read a chunk at a time
    (a pulled log may be up to MAX_DOWNLOAD["logs"])."""
    with whole.open("rb") as a, start.open("rb") as b:
        while piece := b.read(chunk):
            if a.read(len(piece)) != piece:
                return False
    return True


def _taken(path: Path) -> bool:
    """Whether anything, a dangling symlink included, has this name."""
    return os.path.lexists(path)


def _plain_file(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return stat.S_ISREG(path.lstat().st_mode)
    return False


def _variants(folder: Path, name: str) -> list[Path]:
    """``name`` and its numbered variants that exist in ``folder``."""
    found, candidate, n = [], folder / name, 1
    while _taken(candidate):
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


def _remote_file(entry: object, suffix: str) -> RemoteFile:
    if not isinstance(entry, dict):
        raise AntiphonError(f"an entry that is not a file: {str(entry)[:80]!r}")
    name = plain_name(entry.get("name"), suffix)
    size, mtime = entry.get("size"), entry.get("mtime")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise AntiphonError(f"{name!r}: its size {size!r} is not a size")
    if not isinstance(mtime, int | float) or abs(mtime) > 1e11 or not math.isfinite(mtime):
        raise AntiphonError(f"{name!r}: its time {mtime!r} is not a time")
    return RemoteFile(name, size, float(mtime))


def _read_at_most(response: httpx.Response, limit: int, what: str) -> bytes:
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > limit:
            raise AntiphonError(f"{what} answered more than {limit >> 20} MB; not read")
    return bytes(body)


def _message(response: httpx.Response, body: bytes) -> str:
    try:
        answer = json.loads(body)
        return printable(answer.get("error", body.decode(errors="replace")))
    except (ValueError, AttributeError, RecursionError):
        return printable(body.decode(errors="replace").strip()) or f"HTTP {response.status_code}"


def printable(text: object) -> str:
    """Text an instrument sent, safe for a terminal: no control characters (so no
    escape sequences), at most MAX_MESSAGE characters."""
    whole = str(text)
    shown = "".join(c if c.isprintable() else "?" for c in whole[:MAX_MESSAGE])
    return shown + ("…" if len(whole) > MAX_MESSAGE else "")
