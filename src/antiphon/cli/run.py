"""`antiphon run`: play. Builds the engine and its channels, then runs the services."""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import click

from antiphon import limits
from antiphon.limits import MODES, Bounds


def _within(allowed: Bounds) -> click.FloatRange:
    """A click type checking a setting against the same Bounds as config.toml."""
    return click.FloatRange(min=allowed.low, max=allowed.high, min_open=allowed.low_open)


class _Messages(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = "" if record.levelno <= logging.INFO else f"{record.levelname.lower()}: "
        return prefix + record.getMessage()


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Messages())
    logger = logging.getLogger("antiphon")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


@click.command()
@click.argument("model_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-c",
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The config to play [default: ./config.toml, else a new workspace's defaults].",
)
@click.option("--mode", type=click.Choice(MODES), help="Who plays when.")
@click.option(
    "--threshold",
    type=_within(limits.THRESHOLD),
    help="Seconds of silence before the model answers (callresponse).",
)
@click.option(
    "--input-thru/--no-input-thru", default=None, help="Also send what you play to the outputs."
)
@click.option(
    "--sigma-temp",
    "sigmatemp",
    type=_within(limits.SIGMATEMP),
    help="Randomness of each value.",
)
@click.option(
    "--pi-temp",
    "pitemp",
    type=_within(limits.PITEMP),
    help="Randomness of which gesture comes next.",
)
@click.option(
    "--timescale",
    type=_within(limits.TIMESCALE),
    help="Stretch the model's timing (2 = half speed).",
)
@click.option("--verbose/--quiet", default=None, help="Print every input and output.")
@click.option(
    "--log-input/--no-log-input", default=None, help="Log what the performer plays [default: on]."
)
@click.option(
    "--log-predictions/--no-log-predictions", default=None, help="Also log what the model plays."
)
@click.option(
    "-l",
    "--logdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where logs go [default: logs/ of the workspace].",
)
@click.option(
    "-d",
    "--dimension",
    type=click.IntRange(int(limits.DIMENSION.low), int(limits.DIMENSION.high)),
    help="Number of controls + 1.",
)
@click.option("--seed", type=int, help="Seed the model's sampling for a repeatable performance.")
@click.option("--web/--no-web", default=True, help="Serve the web UI [default: on].")
@click.option("--web-host", help="Where the web UI listens [default: [webui].host].")
@click.option(
    "--web-port", type=click.IntRange(1, 65535), help="The web UI's port [default: [webui].port]."
)
def run(
    model_file: Path | None,
    config_file: Path | None,
    web: bool,
    web_host: str | None,
    web_port: int | None,
    **options: object,
) -> None:
    """Play: listen on every configured channel and answer with the model.

    MODEL_FILE (an antiphon .safetensors or an IMPSY .h5/.keras/.tflite file) replaces
    the configured model; without either, the bundled default model for the
    configured dimension plays. SIGINT (Ctrl-C) and SIGTERM stop cleanly.
    """
    from antiphon.engine.runner import print_events
    from antiphon.engine.runner import run as run_engine
    from antiphon.engine.setup import Overrides, not_playing, prepare
    from antiphon.errors import AntiphonError

    _setup_logging()
    if config_file is None and Path("config.toml").is_file():
        config_file = Path("config.toml")
    overrides = Overrides(**options)  # type: ignore[arg-type]
    try:
        setup = prepare(config_file, overrides, model_file)
    except AntiphonError as exc:
        if not web:
            raise
        # The instrument stays reachable: fix the config in the browser, then apply it.
        setup = not_playing(str(exc), config_file, overrides, model_file)
    services = [print_events] if setup.config.verbose else []
    if web:
        from antiphon.web.serve import web_service
        from antiphon.workspace import Workspace

        webui = setup.config.webui
        workspace = Workspace(setup.root, setup.config_path)
        host, port = web_host or webui.host, web_port or webui.port
        services.append(web_service(workspace, host, port))
        services.insert(0, _play_page(host, port))
    code = run_engine(setup, services)
    sys.exit(code)


def _play_page(host: str, port: int) -> Callable[[object], Awaitable[None]]:
    """The last line of the start-up banner: where to play with nothing else at hand."""
    from antiphon.config import browser_host

    shown = browser_host(host)

    async def say(engine: object) -> None:
        logging.getLogger("antiphon").info(
            "play it and hear it from a browser: http://%s:%s/play", shown, port
        )

    return say


COMMANDS = [run]
