"""A real `antiphon run` against hostile web clients: floods of idle connections,
request heads sent a byte at a time, live pages that never read, password guessing,
and other sites' names. The web UI must refuse cleanly and the music must go on.

Every load here is bounded (counts and timeouts) and sent to loopback addresses only.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import json
import os
import resource
import selectors
import socket
import threading
import time

import httpx
import psutil
import pytest
from peers import Instrument
from pythonosc.udp_client import SimpleUDPClient

from antiphon import config
from antiphon.bench.engine import round_trips
from antiphon.web import connections, sessions
from antiphon.web.pages import live
from workspaces import edited

FLOOD = 1200


@contextlib.contextmanager
def answering_instrument(root):
    """`antiphon run` in polyphony, answering each /interface at once (timescale ~0);
    it must stop cleanly, having printed no traceback whatever it was sent."""
    playing = Instrument(root, "--timescale", "1e-9")
    said = []
    try:
        playing.wait_ready()
        yield playing, said
    finally:
        said.append(playing.stop())
    assert playing.process.returncode == 0, said[0]
    assert "Traceback" not in said[0], said[0]


@pytest.fixture
def answering(tmp_path):
    with answering_instrument(tmp_path / "ws") as (playing, _):
        yield playing


def osc_answers(instrument: Instrument, rounds: int = 20) -> int:
    """How many of ``rounds`` /interface messages the engine answered (within 2 s)."""
    osc = config.load(instrument.workspace.config_path).osc
    trips = round_trips(osc.server_port, osc.client_port, rounds=rounds, controls=3)
    return rounds - trips.missed


def own_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"this test needs {needed} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def connect_all(port: int, sources: list[str], count: int) -> list[socket.socket]:
    """``count`` connections (non-blocking), from ``sources`` in turn, sending nothing."""
    opened = []
    for i in range(count):
        sock = socket.socket()
        sock.bind((sources[i % len(sources)], 0))
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        opened.append(sock)
    return opened


def outcomes(socks: list[socket.socket], timeout: float = 120) -> dict[str, int]:
    """Wait until the server has answered or closed every one of ``socks``: "refused"
    (a 503), "closed" (held, then closed without a word: nothing was asked), "reset",
    or "answered" (200). Connections the client believes open while the server never
    took them (the kernel dropped them from a full listen queue: they cost the server
    nothing) cannot tell until they speak: once nothing has happened for longer than
    the head deadline, the rest ask for /healthz."""
    counts = {"refused": 0, "closed": 0, "reset": 0, "answered": 0}
    quiet = 2 * connections.HEAD_SECONDS + 1
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while selector.get_map() and time.monotonic() < deadline:
            ready = selector.select(1.0)
            if not ready and time.monotonic() - last > quiet:
                for key in list(selector.get_map().values()):
                    with contextlib.suppress(OSError):
                        key.fileobj.send(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                last = time.monotonic()
            for key, _ in ready:
                last = time.monotonic()
                sock = key.fileobj
                try:
                    data = sock.recv(4096)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                except OSError:
                    counts["reset"] += 1
                else:
                    if data.startswith(b"HTTP/1.1 503"):
                        counts["refused"] += 1
                    elif data.startswith(b"HTTP/1.1 200"):
                        counts["answered"] += 1
                    elif data == b"":
                        counts["closed"] += 1
                    else:
                        raise AssertionError(f"unexpected answer {data[:100]!r}")
                selector.unregister(sock)
        assert not selector.get_map(), f"{len(selector.get_map())} never answered: {counts}"
    return counts


@pytest.mark.slow
def test_a_flood_of_idle_connections_from_one_computer_leaves_the_rest_served(tmp_path):
    own_fd_limit(FLOOD + 200)
    with answering_instrument(tmp_path / "ws") as (answering, said):
        server = psutil.Process(answering.process.pid)
        flood = connect_all(answering.web_port, ["127.0.0.2"], FLOOD)
        try:
            most_fds = server.num_fds()
            # while the flood holds all it may, another computer is served, OSC answered
            assert answering.http.get("/healthz").json() == {"ok": True, "playing": True}
            assert osc_answers(answering) == 20
            most_fds = max(most_fds, server.num_fds())
            seen = outcomes(flood)
        finally:
            for sock in flood:
                sock.close()
    assert seen["closed"] <= connections.MAX_PER_CLIENT  # held until the head deadline
    assert seen["refused"] + seen["reset"] + seen["answered"] >= FLOOD - connections.MAX_PER_CLIENT
    assert seen["refused"] >= connections.REFUSING_AT_ONCE  # most are told, not reset
    assert most_fds < connections.FD_CEILING // 2
    assert 1 <= said[0].count("refused connections beyond") <= 3, said[0]  # rate-limited


@pytest.mark.slow
def test_connections_from_many_computers_are_capped_then_timed_out(answering):
    sources = [f"127.0.0.{i}" for i in range(2, 10)]  # 8 computers, 50 connections each
    flood = connect_all(answering.web_port, sources, 400)
    try:
        seen = outcomes(flood)
    finally:
        for sock in flood:
            sock.close()
    assert seen["closed"] <= connections.MAX_CONNECTIONS
    assert seen["refused"] + seen["reset"] + seen["answered"] >= 400 - connections.MAX_CONNECTIONS
    # every idle one was closed at its deadline, so the web UI is free again
    assert answering.http.get("/healthz").status_code == 200
    assert osc_answers(answering) == 20


def drip(port: int, head: bytes, first: bytes = b"") -> tuple[bool, bytes]:
    """Send ``first`` and read its answer, then send ``head`` a byte a second; (closed
    by the server before the head was complete, the answer to ``first``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        said = b""
        if first:
            sock.sendall(first)
            while not said.endswith(b"}"):  # /healthz's JSON
                said += sock.recv(4096)
        sock.setblocking(False)
        for byte in head:
            try:
                sock.send(bytes([byte]))
                if sock.recv(4096) == b"":
                    return True, said
            except BlockingIOError:
                pass
            except OSError:
                return True, said
            time.sleep(1.0)  # the attacker's pace, not a measuring window
        return False, said


@pytest.mark.slow
def test_request_heads_sent_a_byte_at_a_time_are_cut_off(answering):
    head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Padding: " + b"a" * 40 + b"\r\n\r\n"
    assert len(head) > 3 * connections.HEAD_SECONDS
    whole = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        fresh = pool.submit(drip, answering.web_port, head)
        kept_alive = pool.submit(drip, answering.web_port, head, first=whole)
        cut_fresh, _ = fresh.result()
        cut_later, said = kept_alive.result()
    assert cut_fresh and cut_later
    assert said.startswith(b"HTTP/1.1 200")  # the first request was answered


def partial_post(port: int, path: str, token: str) -> socket.socket:
    """A POST that promises 500 kB and sends only its first bytes."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nCookie: antiphon_csrf={token}\r\n"
        f"X-CSRF-Token: {token}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: 500000\r\n\r\ncsrf_token={token}&text=".encode()
    )
    return sock


@pytest.mark.slow
def test_request_bodies_that_stop_coming_are_cut_and_abandoned_ones_are_quiet(answering):
    token = answering.http.cookies["antiphon_csrf"]
    for path in ("/config", "/api/config", "/logs/delete"):  # abandoned half-way
        partial_post(answering.web_port, path, token).close()
    stalled = partial_post(answering.web_port, "/config", token)
    with stalled:
        stalled.settimeout(connections.BODY_IDLE_SECONDS * 3)
        assert stalled.recv(4096) == b""  # closed by the server, not by this test
    assert answering.http.get("/healthz").status_code == 200  # and no traceback printed


def websocket_without_reading(port: int, source: str) -> tuple[socket.socket, bytes]:
    """A live page that completes the handshake and then never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind((source, 0))
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /live/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    return sock, sock.recv(256)


def tcp_state(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]


ESTABLISHED = 1


@pytest.mark.slow
def test_live_pages_that_never_read_are_let_go_and_cost_the_music_nothing(answering):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    pages = []
    stop = threading.Event()
    inputs = SimpleUDPClient("127.0.0.1", answering.osc_port)

    def flood() -> None:  # 2,000 inputs a second, every one shown on the live pages
        while not stop.is_set():
            for _ in range(20):
                inputs.send_message("/interface", [0.25, 0.5, 0.75])
            time.sleep(0.01)  # pacing the flood

    flooding = threading.Thread(target=flood)
    url = answering.url.replace("http", "ws", 1) + "/live/ws"
    try:
        for i in range(live.MAX_PAGES):
            sock, answer = websocket_without_reading(answering.web_port, f"127.0.0.{2 + i // 16}")
            assert answer.startswith(b"HTTP/1.1 101"), answer
            pages.append(sock)
        with pytest.raises(InvalidStatus) as full:
            connect(url, open_timeout=10)
        assert full.value.response.status_code == 503
        flooding.start()
        assert osc_answers(answering, rounds=100) == 100  # while the pages back up
        deadline = time.monotonic() + 120
        while any(tcp_state(s) == ESTABLISHED for s in pages) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(tcp_state(s) == ESTABLISHED for s in pages)
        with connect(url, open_timeout=10) as page:  # room again
            assert json.loads(page.recv(timeout=10))["type"] == "hello"
            batch = json.loads(page.recv(timeout=10))
            assert any(e["kind"] == "input" for e in batch["events"])
    finally:
        stop.set()
        if flooding.is_alive():
            flooding.join()
        for sock in pages:
            sock.close()


def test_password_guessing_is_slowed_per_computer_and_never_stalls_the_music(answering):
    token = {"x-csrf-token": answering.http.cookies["antiphon_csrf"]}
    text = answering.workspace.config_path.read_text()
    protected = edited(text, adding={"webui.password": "s3cret"})
    assert answering.http.put("/api/config", content=protected, headers=token).status_code == 200

    def guess(i: int) -> int:
        with httpx.Client(base_url=answering.url, timeout=60) as http:
            http.get("/healthz")
            form = {"csrf_token": http.cookies["antiphon_csrf"], "password": f"guess-{i}"}
            return http.post("/login", data=form).status_code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        guesses = pool.map(guess, range(200))
        answered = osc_answers(answering, rounds=50)
        codes = list(guesses)
    assert answered == 50
    assert 1 <= codes.count(401) <= sessions.ATTEMPTS
    assert codes.count(429) == 200 - codes.count(401)
    transport = httpx.HTTPTransport(local_address="127.0.0.3")  # another computer
    with httpx.Client(base_url=answering.url, transport=transport, timeout=30) as other:
        other.get("/healthz")
        right = other.post(
            "/login",
            data={"csrf_token": other.cookies["antiphon_csrf"], "password": "s3cret"},
        )
        assert right.status_code == 303
        assert other.get("/api/status").json()["engine"]["mode"] == "polyphony"


def test_another_sites_name_cannot_command_the_instrument(answering):
    """DNS rebinding: evil.example re-pointed at 127.0.0.1, with its own Origin and a
    CSRF token it set for itself."""
    rebound = f"evil.example:{answering.web_port}"
    token = "x" * 43
    answer = httpx.post(
        f"{answering.url}/api/command",
        json={"address": "/impsy/mode", "args": ["callresponse"]},
        headers={
            "host": rebound,
            "origin": f"http://{rebound}",
            "cookie": f"antiphon_csrf={token}",
            "x-csrf-token": token,
        },
    )
    assert answer.status_code == 421 and "allowed_hosts" in answer.text
    assert answering.http.get("/api/status").json()["engine"]["mode"] == "polyphony"
    assert answering.command("/impsy/mode", "callresponse").status_code == 200  # from here


@pytest.mark.slow
def test_running_out_of_file_descriptors_is_one_line_not_a_traceback_storm(tmp_path):
    with answering_instrument(tmp_path / "ws") as (answering, said):
        pid = answering.process.pid
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (100, 100))  # a far smaller machine
        sources = [f"127.0.0.{i}" for i in range(2, 10)]
        flood = connect_all(answering.web_port, sources, 300)
        try:
            outcomes(flood)  # each one answered, refused or closed in the end
        finally:
            for sock in flood:
                sock.close()
        assert answering.http.get("/healthz").status_code == 200
        assert osc_answers(answering) == 20
    assert 1 <= said[0].count("out of file descriptors") <= 3, said[0]
