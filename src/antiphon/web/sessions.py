"""Logging in to the web UI: the password's hash, sessions, and how often one may guess.

- The password is checked with scrypt (salted, 16 MiB and ~0.1 s a try here), one try
  at a time on a thread of its own, so guessing costs the guesser and never the music
  (hashlib's scrypt releases the interpreter lock: the loop's timers keep time while
  it runs). A plain-text ``[webui].password`` is hashed in memory the first time it
  is needed; ``antiphon hash-password`` prints the hashed form to put in its place.
- A session is a random token held in memory (its SHA-256, not the token): nothing
  in the cookie is derived from the password, logging out ends it, a new password ends
  them all, and a restart ends them all (a browser then asks for the password again).
- Each address has one password checked at a time and ``ATTEMPTS`` wrong passwords a
  minute; then it waits a minute, and each further lockout doubles the wait, up to
  ``LONGEST_WAIT``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import math
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import tomlkit
import tomlkit.exceptions
from starlette.responses import Response

SESSION_COOKIE = "antiphon_session"
SESSION_SECONDS = 30 * 24 * 3600
MAX_SESSIONS = 256  # the least recently used goes first
MAX_PASSWORD = 1024  # characters; a longer one is not a password

HASH_SCHEME = "scrypt"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MiB, ~0.1 s on a laptop
LARGEST_N = 2**20  # what a config may ask for: 1 GiB, seconds a try
SALT_BYTES = 16
KEY_BYTES = 32
WAITING_CHECKS = 16  # password checks queued at once; more are told to try later

ATTEMPTS = 5  # wrong passwords per guesser per ATTEMPT_WINDOW
ATTEMPT_WINDOW = 60.0
LONGEST_WAIT = 15 * 60.0
MAX_ADDRESSES = 1024  # remembered at once; the least recently seen is forgotten


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$n=16384,r=8,p=1$<salt>$<key>`` (URL-safe base64): what to store in
    ``[webui].password`` instead of the password. Takes ~0.1 s: not on the loop."""
    salt = salt or secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES)
    params = f"n={SCRYPT_N},r={SCRYPT_R},p={SCRYPT_P}"
    return f"{HASH_SCHEME}${params}${_b64(salt)}${_b64(key)}"


@dataclass(frozen=True)
class Hashed:
    n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    @classmethod
    def parse(cls, stored: str) -> Hashed | None:
        """The parameters of a stored hash, or None if ``stored`` is not one (then it is
        a plain-text password, even if it starts with ``scrypt$``)."""
        parts = stored.split("$")
        if len(parts) != 4 or parts[0] != HASH_SCHEME:
            return None
        try:
            params = dict(item.split("=", 1) for item in parts[1].split(","))
            n, r, p = int(params["n"]), int(params["r"]), int(params["p"])
            salt, key = _unb64(parts[2]), _unb64(parts[3])
        except (ValueError, KeyError):
            return None
        if not (1 < n <= LARGEST_N and n & (n - 1) == 0 and 0 < r <= 32 and 0 < p <= 16):
            return None
        if len(salt) < 8 or not 16 <= len(key) <= 64:
            return None
        return cls(n, r, p, salt, key)

    def matches(self, password: str) -> bool:
        key = _scrypt(password, self.salt, self.n, self.r, self.p, len(self.key))
        return hmac.compare_digest(key, self.key)


def is_hashed(stored: str) -> bool:
    return Hashed.parse(stored) is not None


def hash_new_password(text: str, previous: str | None) -> str:
    """``text`` (a config) with its ``[webui] password`` hashed if it is plain text
    and not the password already configured (``previous``): a password set through
    the web UI is kept hashed, one kept as it was is left alone (changing it would
    log everyone out). Comments and layout survive. Takes ~0.1 s when it hashes."""
    try:
        document = tomlkit.parse(text)
    except tomlkit.exceptions.TOMLKitError:
        return text  # the config check that follows says what is wrong
    webui = document.get("webui")
    password = webui.get("password") if isinstance(webui, dict) else None
    if not isinstance(password, str) or not password or is_hashed(password):
        return text
    if previous is not None and hmac.compare_digest(password.encode(), previous.encode()):
        return text
    webui["password"] = hash_password(str(password))  # type: ignore[index]
    return tomlkit.dumps(document)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    memory = 128 * n * r * p + (1 << 20)
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=memory, dklen=length)


class Busy(Exception):
    """Too many password checks are waiting already."""


class Password:
    """``[webui].password`` as configured: a hash, or plain text hashed here when first
    needed. ``check`` runs on the one password thread, never on the event loop."""

    _thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="antiphon-password")
    _waiting = 0

    def __init__(self, configured: str) -> None:
        self.configured = configured
        self._hashed = Hashed.parse(configured)

    async def check(self, supplied: str) -> bool:
        if Password._waiting >= WAITING_CHECKS:
            raise Busy
        Password._waiting += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(Password._thread, self._check, supplied)
        finally:
            Password._waiting -= 1

    def _check(self, supplied: str) -> bool:
        if self._hashed is None:  # plain text: hashed once, here, then kept hashed
            self._hashed = Hashed.parse(hash_password(self.configured))
            assert self._hashed is not None
        return self._hashed.matches(supplied[:MAX_PASSWORD])


@dataclass
class Session:
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    expires: float = 0.0


class Sessions:
    """Logged-in browsers: random tokens, in memory, at most ``MAX_SESSIONS``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def start(self) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        session = Session(expires=self._clock() + SESSION_SECONDS)
        self._sessions[_digest(token)] = session
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return token, session

    def find(self, token: str | None) -> Session | None:
        if not token or len(token) > 100:
            return None
        key = _digest(token)
        session = self._sessions.get(key)
        if session is None:
            return None
        if session.expires <= self._clock():
            del self._sessions[key]
            return None
        self._sessions.move_to_end(key)
        return session

    def end(self, token: str | None) -> None:
        if token:
            self._sessions.pop(_digest(token), None)

    def end_all(self) -> None:
        self._sessions.clear()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def set_session_cookie(response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, max_age=SESSION_SECONDS, httponly=True, samesite="strict"
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict")


@dataclass
class _Guesses:
    wrong: deque[float] = field(default_factory=lambda: deque(maxlen=ATTEMPTS))
    lockouts: int = 0
    until: float = 0.0


def guesser(address: str) -> str:
    """Who is guessing, as far as an address tells: an IPv6 address by its /64 network,
    since one computer on such a network may choose among all of it."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # not an address (a test client's name): itself
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # an IPv4 client of a dual-stack socket
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class Attempts:
    """Wrong passwords per guesser (an address, or an IPv6 /64): ``ATTEMPTS`` a minute,
    then a doubling wait."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._addresses: OrderedDict[str, _Guesses] = OrderedDict()
        self._checking: set[str] = set()

    def begin(self, address: str) -> bool:
        """Whether ``address`` may have a password checked now: one at a time each, so
        that guesses sent in parallel meet the limit as surely as guesses in a row."""
        address = guesser(address)
        if address in self._checking or len(self._checking) >= MAX_ADDRESSES:
            return False
        self._checking.add(address)
        return True

    def end(self, address: str) -> None:
        self._checking.discard(guesser(address))

    def __len__(self) -> int:
        return len(self._addresses)

    def wait(self, address: str) -> float:
        """Seconds before ``address`` may try again; 0 when it may now."""
        address = guesser(address)
        guesses = self._addresses.get(address)
        return max(0.0, guesses.until - self._clock()) if guesses else 0.0

    def wrong(self, address: str) -> None:
        address = guesser(address)
        now = self._clock()
        guesses = self._addresses.pop(address, None) or _Guesses()
        self._addresses[address] = guesses  # now the most recently seen
        while len(self._addresses) > MAX_ADDRESSES:
            self._addresses.popitem(last=False)
        guesses.wrong.append(now)
        if len(guesses.wrong) == ATTEMPTS and now - guesses.wrong[0] <= ATTEMPT_WINDOW:
            guesses.until = now + min(ATTEMPT_WINDOW * 2 ** min(guesses.lockouts, 8), LONGEST_WAIT)
            guesses.lockouts += 1
            guesses.wrong.clear()

    def right(self, address: str) -> None:
        self._addresses.pop(guesser(address), None)


def seconds(wait: float) -> int:
    return max(1, math.ceil(wait))
