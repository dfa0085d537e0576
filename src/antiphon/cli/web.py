"""`antiphon web`: the browser interface for a workspace where nothing is playing."""

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


COMMANDS = [web]
