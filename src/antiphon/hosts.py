"""This computer's own names: what a request's Host header, or the Origin of a page
that opens a WebSocket, may name without being another site (web/security.py says why
this matters: DNS rebinding)."""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Iterable

import psutil

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
ADDRESSES_CHECKED_EVERY = 5.0  # seconds: interfaces come and go (USB, Wi-Fi)


class Hosts:
    """The names this web UI answers to: this computer's own, and the config's.

    The loopback names, the hostname and ``<hostname>.local`` (mDNS), every address of
    every interface (checked again at most every ``ADDRESSES_CHECKED_EVERY`` seconds,
    when an address not known yet is asked for), the address the request arrived on,
    and ``[webui].allowed_hosts``. The port is not part of the check.
    """

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self.allowed = {n for n in (bare_host(str(a)) for a in allowed) if n}
        self._addresses: set[str] = set()
        self._checked = -ADDRESSES_CHECKED_EVERY

    def names(self) -> list[str]:
        hostname = socket.gethostname().lower()
        return [*LOOPBACK_NAMES, hostname, f"{hostname}.local", *sorted(self.allowed)]

    def allows(self, header: str, server: tuple[str, int | None] | None = None) -> bool:
        name = bare_host(header)
        if not name:
            return False
        if name in self.names():
            return True
        if not _is_address(name):
            return False
        if server is not None and name == bare_host(str(server[0])):
            return True  # the address this request arrived on
        if name not in self._addresses and time.monotonic() - self._checked > (
            ADDRESSES_CHECKED_EVERY
        ):
            self._addresses = _interface_addresses()
            self._checked = time.monotonic()
        return name in self._addresses

    def refusal(self, header: str) -> str:
        name = bare_host(header)
        if not name:
            return "this request does not name a host: its Host header is missing or invalid"
        return (
            f"This web UI answers only to this computer's own names "
            f"({', '.join(self.names())} and its addresses), not to {name!r}: another "
            f"site's page may be trying to reach it. If you reach this instrument by "
            f"that name on purpose, add it to config.toml:\n\n[webui]\n"
            f'allowed_hosts = ["{name}"]\n'
        )


def bare_host(header: str) -> str | None:
    """The host of a Host header, without port, brackets, zone or final dot; lower
    case. None for what is not a host name or address."""
    host = header.strip().lower()
    if host.startswith("["):  # [v6]:port
        host, bracket, _ = host[1:].partition("]")
        if not bracket:
            return None
    elif host.count(":") == 1:  # name:port
        host = host.split(":", 1)[0]
    host = host.split("%", 1)[0].rstrip(".")
    if not host or len(host) > 253 or not re.fullmatch(r"[a-z0-9._:-]+", host):
        return None
    return host


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _interface_addresses() -> set[str]:
    try:
        interfaces = psutil.net_if_addrs()
    except OSError:
        return set()
    return {
        address.address.split("%", 1)[0].lower()
        for entries in interfaces.values()
        for address in entries
        if address.family in (socket.AF_INET, socket.AF_INET6)
    }
