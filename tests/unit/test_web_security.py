"""Who may reach the web UI and how: Host names, origins, sessions, passwords, guessing."""

import asyncio
import hashlib
import socket

import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse

from antiphon.hosts import Hosts
from antiphon.web import sessions
from antiphon.web.app import create_app
from antiphon.web.security import FORM_LIMIT
from antiphon.web.sessions import Attempts, Hashed, Password, Sessions, hash_password
from webclient import LOCAL
from workspaces import edit_config, edited

LIVE = "ws://localhost/live/ws"


def with_password(workspace, password):
    edit_config(workspace.config_path, adding={"webui.password": password})


def log_in(client, password):
    client.get("/login")
    return client.post(
        "/login",
        data={"csrf_token": client.cookies["antiphon_csrf"], "password": password},
        follow_redirects=False,
    )


# -- Host names (DNS rebinding) -------------------------------------------------------------


def test_a_foreign_host_name_is_refused_and_changes_nothing(workspace):
    """A page on evil.example that re-points its name at this computer sends
    Host: evil.example, with a matching Origin: it must not be served."""
    before = workspace.config_path.read_text()
    with TestClient(create_app(workspace), base_url="http://evil.example:4000") as rebound:
        rebound.cookies.set("antiphon_csrf", "x" * 43)
        page = rebound.get("/")
        assert page.status_code == 421
        assert 'allowed_hosts = ["evil.example"]' in page.text and "localhost" in page.text
        saved = rebound.put(
            "/api/config",
            content=before + "\n# changed\n",
            headers={"origin": "http://evil.example:4000", "x-csrf-token": "x" * 43},
        )
        assert saved.status_code == 421
        with (
            pytest.raises(WebSocketDenialResponse) as denied,
            rebound.websocket_connect("ws://evil.example:4000/live/ws"),
        ):
            pass
        assert denied.value.status_code == 421
    assert workspace.config_path.read_text() == before


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST:4000",
        "127.0.0.1:4000",
        "[::1]:4000",
        "localhost.",
        socket.gethostname(),
        f"{socket.gethostname()}.local:4000",
    ],
)
def test_this_computers_names_are_served(workspace, host):
    with TestClient(create_app(workspace), base_url=f"http://{host}") as client:
        assert client.get("/healthz").status_code == 200


def test_names_the_config_adds_are_served(workspace):
    app = create_app(workspace)
    with TestClient(app, base_url="http://studio.example") as client:
        assert client.get("/healthz").status_code == 421
        app.state.web.hosts = Hosts(["Studio.Example"])  # [webui].allowed_hosts
        assert client.get("/healthz").status_code == 200


def test_host_names_are_parsed_defensively():
    hosts = Hosts(["pi.example"])
    for refused in ("", " ", "evil.example", "[::1", "a b", "x" * 300, "localhost.evil.example"):
        assert not hosts.allows(refused), refused
    assert hosts.allows("PI.example.:80") and hosts.allows("127.0.0.1")
    assert hosts.allows("10.1.2.3:4000", server=("10.1.2.3", 4000))  # where it arrived
    assert not hosts.allows("10.1.2.3:4000", server=("10.9.9.9", 4000))


def test_every_address_of_this_computer_is_served():
    import psutil

    addresses = [
        a.address.split("%")[0]
        for entries in psutil.net_if_addrs().values()
        for a in entries
        if a.family == socket.AF_INET
    ]
    hosts = Hosts()
    assert addresses and all(hosts.allows(f"{a}:4000") for a in addresses)


# -- the live page's WebSocket --------------------------------------------------------------


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://localhost:9999"])
def test_the_live_socket_refuses_other_origins(workspace, origin):
    with TestClient(create_app(workspace), base_url=LOCAL) as client:
        with (
            pytest.raises(WebSocketDenialResponse) as denied,
            client.websocket_connect(LIVE, headers={"origin": origin}),
        ):
            pass
        assert denied.value.status_code == 403


def test_the_live_socket_serves_its_own_pages(workspace):
    with (
        TestClient(create_app(workspace), base_url=LOCAL) as client,
        client.websocket_connect(LIVE, headers={"origin": LOCAL}) as ws,
    ):
        assert ws.receive_json() == {"type": "idle"}  # antiphon web: nothing plays


def test_the_live_socket_needs_a_login_when_there_is_a_password(workspace):
    with_password(workspace, "pw")
    with TestClient(create_app(workspace), base_url=LOCAL) as client:
        with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect(LIVE):
            pass
        assert denied.value.status_code == 401
        log_in(client, "pw")
        with client.websocket_connect(LIVE) as ws:
            assert ws.receive_json() == {"type": "idle"}


# -- sessions ---------------------------------------------------------------------------------


def test_a_session_is_a_random_token_not_the_password(workspace):
    with_password(workspace, "s3cret")
    app = create_app(workspace)
    cookies = []
    for _ in range(2):
        with TestClient(app, base_url=LOCAL) as client:
            assert log_in(client, "s3cret").status_code == 303
            cookies.append(client.cookies["antiphon_session"])
            assert client.get("/api/status").status_code == 200
    assert cookies[0] != cookies[1]
    digest = hashlib.sha256(b"s3cret").hexdigest()
    assert all(digest not in c and "s3cret" not in c for c in cookies)
    with TestClient(app, base_url=LOCAL) as forged:
        forged.cookies.set("antiphon_session", "x" * 43)
        assert forged.get("/api/status").status_code == 401


def test_logging_out_ends_the_session_for_whoever_kept_its_cookie(workspace):
    with_password(workspace, "pw")
    app = create_app(workspace)
    with TestClient(app, base_url=LOCAL) as client:
        log_in(client, "pw")
        kept = client.cookies["antiphon_session"]
        out = client.post("/logout", data={"csrf_token": client.cookies["antiphon_csrf"]})
        assert out.status_code == 200  # followed to the login page
    with TestClient(app, base_url=LOCAL) as thief:
        thief.cookies.set("antiphon_session", kept)
        assert thief.get("/api/status").status_code == 401


def test_the_csrf_token_belongs_to_its_session(workspace):
    with_password(workspace, "pw")
    app = create_app(workspace)
    with TestClient(app, base_url=LOCAL) as a, TestClient(app, base_url=LOCAL) as b:
        log_in(a, "pw")
        log_in(b, "pw")
        a_token, b_token = a.cookies["antiphon_csrf"], b.cookies["antiphon_csrf"]
        assert a_token != b_token
        body = workspace.config_path.read_text()
        # b's session with a's token, even sent as both cookie and header: refused
        b.cookies.set("antiphon_csrf", a_token)
        crossed = b.put("/api/config", content=body, headers={"x-csrf-token": a_token})
        assert crossed.status_code == 403 and "CSRF" in crossed.text
        own = a.put("/api/config", content=body, headers={"x-csrf-token": a_token})
        assert own.status_code == 200


def test_sessions_are_bounded_and_expire():
    now = [0.0]
    table = Sessions(clock=lambda: now[0])
    tokens = [table.start()[0] for _ in range(sessions.MAX_SESSIONS + 10)]
    assert len(table) == sessions.MAX_SESSIONS
    assert table.find(tokens[0]) is None and table.find(tokens[-1]) is not None
    now[0] += sessions.SESSION_SECONDS + 1
    assert table.find(tokens[-1]) is None
    assert table.find(None) is None and table.find("x" * 1000) is None


# -- the password ---------------------------------------------------------------------------


def test_a_hashed_password_in_the_config_logs_in(workspace):
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$n=16384,r=8,p=1$") and "correct horse" not in stored
    with_password(workspace, stored)
    with TestClient(create_app(workspace), base_url=LOCAL) as client:
        assert log_in(client, stored).status_code == 401  # the hash is not the password
        assert log_in(client, "correct horse").status_code == 303


def test_stored_hashes_are_checked_before_use():
    good = Hashed.parse(hash_password("pw"))
    assert good is not None and good.matches("pw") and not good.matches("pW")
    salt, key = hash_password("pw").split("$")[2:]
    for bad in (
        f"scrypt$n=1000,r=8,p=1${salt}${key}",  # not a power of two
        f"scrypt$n={2**30},r=8,p=1${salt}${key}",  # a gigantic work factor
        f"scrypt$n=16384,r=8${salt}${key}",
        f"scrypt$n=16384,r=8,p=1$!!${key}",
        "scrypt$",
    ):
        assert Hashed.parse(bad) is None, bad


def test_a_plain_password_or_a_broken_hash_is_taken_as_plain_text():
    async def check(stored, supplied):
        return await Password(stored).check(supplied)

    assert asyncio.run(check("plain", "plain"))
    assert not asyncio.run(check("plain", "plain "))
    assert asyncio.run(check("scrypt$oops", "scrypt$oops"))


# -- guessing -------------------------------------------------------------------------------


def test_wrong_passwords_lock_that_address_out_for_a_while(workspace):
    with_password(workspace, "pw")
    app = create_app(workspace)
    with TestClient(app, base_url=LOCAL, client=("10.0.0.7", 5000)) as guesser:
        codes = [log_in(guesser, f"guess{i}").status_code for i in range(sessions.ATTEMPTS)]
        assert codes == [401] * sessions.ATTEMPTS
        locked = log_in(guesser, "pw")  # even the right one, until the wait is over
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 59
        assert "Too many wrong passwords" in locked.text
        assert guesser.get("/api/status").status_code == 401
    with TestClient(app, base_url=LOCAL, client=("10.0.0.8", 5000)) as other:
        assert log_in(other, "pw").status_code == 303


def test_each_lockout_doubles_the_wait_up_to_a_limit():
    now = [0.0]
    attempts = Attempts(clock=lambda: now[0])
    waits = []
    for _ in range(8):
        for _ in range(sessions.ATTEMPTS):
            attempts.wrong("a")
        waits.append(attempts.wait("a"))
        now[0] += waits[-1]
        assert attempts.wait("a") == 0
    assert waits[:4] == [60, 120, 240, 480] and max(waits) == sessions.LONGEST_WAIT
    attempts.right("a")
    for _ in range(sessions.ATTEMPTS - 1):
        attempts.wrong("a")
    assert attempts.wait("a") == 0


def test_addresses_of_one_ipv6_network_guess_as_one():
    """A computer on an IPv6 network can pick any address of its /64 to guess from."""
    attempts = Attempts()
    for i in range(sessions.ATTEMPTS):
        attempts.wrong(f"2001:db8:1:2::{i + 1:x}")
    assert attempts.wait("2001:db8:1:2:abcd::99") > 0
    assert attempts.wait("2001:db8:1:3::1") == 0  # the next network is someone else
    for _ in range(sessions.ATTEMPTS):
        attempts.wrong("::ffff:10.0.0.9")  # IPv4 through a dual-stack socket
    assert attempts.wait("10.0.0.9") > 0 and attempts.wait("10.0.0.10") == 0


def test_the_table_of_addresses_is_bounded():
    attempts = Attempts()
    for i in range(sessions.MAX_ADDRESSES + 50):
        attempts.wrong(f"10.0.{i // 256}.{i % 256}")
    assert len(attempts) == sessions.MAX_ADDRESSES


def test_a_password_set_from_the_web_ui_is_saved_hashed(workspace):
    app = create_app(workspace)
    path = workspace.config_path
    with TestClient(app, base_url=LOCAL) as client:
        client.get("/config")
        text = edited(path.read_text(), adding={"webui.password": "new one"})
        saved = client.put(
            "/api/config", content=text, headers={"x-csrf-token": client.cookies["antiphon_csrf"]}
        )
        assert saved.status_code == 200
        stored = path.read_text()
        assert "new one" not in stored and 'password = "scrypt$n=16384' in stored
        assert stored.count("#") == text.count("#")  # the comments are kept
        assert log_in(client, "new one").status_code == 303


def test_a_plain_password_kept_as_it_was_stays_plain(workspace):
    with_password(workspace, "kept")
    path = workspace.config_path
    with TestClient(create_app(workspace), base_url=LOCAL) as client:
        log_in(client, "kept")
        text = edited(path.read_text(), {"interaction.threshold": 0.2})
        saved = client.put(
            "/api/config", content=text, headers={"x-csrf-token": client.cookies["antiphon_csrf"]}
        )
        assert saved.status_code == 200 and path.read_text() == text
        assert client.get("/api/status").status_code == 200  # still logged in


def test_a_big_form_is_refused_before_it_is_held_even_on_an_upload_route(workspace):
    """Forms are read (for their token) before a login is checked: a form's limit, not an
    upload's, is what anyone can make the instrument hold."""
    with_password(workspace, "pw")
    with TestClient(create_app(workspace), base_url=LOCAL) as stranger:
        stranger.get("/login")
        form = {"content-type": "application/x-www-form-urlencoded"}
        big = b"csrf_token=" + b"x" * (FORM_LIMIT + 1)
        for path in ("/datasets/delete", "/datasets/upload", "/models/upload", "/login"):
            refused = stranger.post(path, content=big, headers=form)
            assert refused.status_code == 413 and "too large" in refused.text, path
        assert sorted(p.name for p in workspace.datasets.iterdir()) == []


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "http://["},
        {"origin": "http://[::1"},
        {"content-type": b"application/x-www-form-urlencoded\xff"},
        {"accept": b"text/html\xfe\xff"},
        {"content-length": "9" * 4000},
    ],
)
def test_headers_that_do_not_parse_are_refused_not_an_error(workspace, headers):
    with_password(workspace, "pw")  # the login check reads headers too
    with TestClient(create_app(workspace), base_url=LOCAL) as client:
        client.get("/login")
        answer = client.post(
            "/models/use",
            data={"csrf_token": client.cookies["antiphon_csrf"], "name": "x.safetensors"},
            headers=headers,
        )
        assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
        assert "Traceback" not in answer.text


def test_a_token_with_odd_characters_is_refused_not_an_error(workspace):
    with TestClient(create_app(workspace), base_url=LOCAL) as client:
        client.get("/")
        odd = client.put("/api/config", content="", headers={"x-csrf-token": ("é" * 43).encode()})
        assert odd.status_code == 403
