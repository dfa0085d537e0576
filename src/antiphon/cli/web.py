"""`antiphon web`: the browser interface for a workspace where nothing is playing;
`antiphon hash-password`: the web UI's password as config.toml should keep it."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", help="Address to listen on [default: [webui].host of config.toml].")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Port [default: [webui].port of config.toml, else 4000].",
)
def web(directory: Path, host: str | None, port: int | None) -> None:
    """Manage logs, datasets, models and the config from a browser (no playing)."""
    from antiphon.web.serve import serve_workspace

    serve_workspace(directory, host=host, port=port, echo=click.echo)


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


COMMANDS = [web, hash_password]
