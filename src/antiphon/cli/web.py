"""`antiphon web` (or IMPSY's name, `webui`): the browser interface for a workspace
where nothing is playing; `antiphon hash-password`: the web UI's password as
config.toml should keep it.

IMPSY runs its web UI as a second process beside ``impsy run`` (two systemd services,
two compose containers). antiphon's ``run`` serves the web UI itself, on the same loop
as the engine, so ``antiphon web`` beside a running ``antiphon run`` would be a second
web UI that could neither see nor control what plays: it says so instead, and where
the playing one is, then exits successfully (a service manager has nothing to restart).
"""

from __future__ import annotations

import copy
import errno
import socket
from pathlib import Path

import click

PROBE_TIMEOUT = 2.0
"""Seconds to wait for a web UI that may already serve the workspace."""


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", help="Address to listen on [default: [webui].host of config.toml].")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Port [default: [webui].port of config.toml, else 4000].",
)
def web(directory: Path, host: str | None, port: int | None) -> None:
    """Manage logs, datasets, models and the config from a browser (no playing).

    `antiphon run` serves the same web UI while it plays: with it running, open its
    address instead (this command says which).
    """
    from antiphon.web.serve import serve_workspace

    playing = already_playing(directory)
    if playing is not None:
        click.echo(playing)
        return
    serve_workspace(directory, host=host, port=port, echo=click.echo)


def already_playing(directory: Path) -> str | None:
    """What to say when an engine already plays this workspace, else None.

    An engine holds the workspace's command port (``[webui].command_port``, UDP on
    localhost); when it also answers on the web UI's port, that is where to go.
    """
    from antiphon import config as config_schema
    from antiphon.errors import AntiphonError
    from antiphon.workspace import Workspace

    try:
        webui = config_schema.load(Workspace(directory).config_path).webui
    except AntiphonError:
        return None  # serve_workspace says what is wrong with the folder
    if not _taken(webui.command_port):
        return None
    url = f"http://{config_schema.browser_host(webui.host)}:{webui.port}/"
    if _answers(webui.host, webui.port):
        return (
            f"`antiphon run` is already playing here and serves the web UI itself: open "
            f"{url} (one process plays and serves the browser, where IMPSY used two; "
            "no second web UI is started)"
        )
    return (
        f"something already holds the command port {webui.command_port} (an `antiphon run "
        "--no-web`, or IMPSY): `antiphon run` serves the web UI itself, so restart it "
        f"without --no-web and open {url}; no second web UI is started, as it could not "
        "control what plays"
    )


def _taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def _answers(host: str, port: int) -> bool:
    """Whether an antiphon web UI answers on ``host:port`` (its health check)."""
    import httpx

    address = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    try:
        reply = httpx.get(f"http://{address}:{port}/healthz", timeout=PROBE_TIMEOUT)
        return reply.status_code == 200 and reply.json().get("ok") is True
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


webui = copy.copy(web)
webui.name = "webui"
webui.hidden = True  # IMPSY's name for it


@click.command("hash-password")
def hash_password() -> None:
    """Print a [webui] password line for config.toml that keeps the password hashed.

    The web UI accepts the password itself in config.toml too; this line (salted
    scrypt) tells nothing to whoever reads the file, and logs in the same way.
    """
    from antiphon.web.sessions import MAX_PASSWORD, hash_password

    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) > MAX_PASSWORD:
        raise click.BadParameter(f"at most {MAX_PASSWORD} characters")
    click.echo(f'[webui]\npassword = "{hash_password(password)}"')


COMMANDS = [web, webui, hash_password]
