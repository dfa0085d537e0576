"""The ``antiphon`` command. Each command is thin and calls into a module.

Command modules import only click at the top; everything heavy is imported inside
the command that needs it, so ``antiphon --help`` answers at once.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from antiphon import __version__
from antiphon.errors import AntiphonError


class _Group(click.Group):
    """Shows an AntiphonError as a one-line message, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except AntiphonError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="antiphon")
def cli() -> None:
    """antiphon: an instrument that listens, learns your playing and answers.

    \b
    Start here:
      antiphon init my-instrument     make a workspace with a commented config.toml
      antiphon run                    play (in a workspace folder)
      antiphon test-model             check the install: 1000 predictions, timed
    """


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("-f", "--force", is_flag=True, help="Replace an existing config.toml (kept as .bak).")
@click.option(
    "--web-host",
    help='Where the web UI listens, e.g. "0.0.0.0" on an instrument '
    "reached from a laptop [default: 127.0.0.1].",
)
@click.option("--osc-client-ip", help="Where OSC output goes [default: 127.0.0.1].")
def init(directory: Path, force: bool, web_host: str | None, osc_client_ip: str | None) -> None:
    """Create a workspace: config.toml, logs/, datasets/ and models/."""
    from antiphon import workspace

    created = workspace.init(directory, force=force, web_host=web_host, osc_client_ip=osc_client_ip)
    for path in created:
        click.echo(f"created {path}{'/' if path.is_dir() else ''}")
    config_file = directory / workspace.CONFIG_NAME
    if config_file not in created:
        click.echo(f"kept {config_file} as it is (--force replaces it, keeping it as .bak)")
    click.echo(f"Edit {config_file}, then run `antiphon run` in {directory}.")


@cli.group()
def config() -> None:
    """Check configuration files."""


@config.command("check")
@click.argument("file", default="config.toml", type=click.Path(dir_okay=False, path_type=Path))
def config_check(file: Path) -> None:
    """Check a config.toml as `antiphon run` would (its model too); summarise it."""
    from antiphon.engine.setup import prepare
    from antiphon.io.registry import SECTIONS

    setup = prepare(file, strict=True)
    for warning in setup.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    for substitution in setup.substitutions:  # what `antiphon run` would play instead
        click.secho(f"error: would play {substitution}", fg="red", err=True)
    loaded = setup.config
    channels = [name for name in SECTIONS if getattr(loaded, name) is not None]
    verdict = "plays, but not as written (see the errors)" if setup.substitutions else "OK"
    click.echo(
        f"{file}: {verdict}. mode {loaded.interaction.mode}, dimension "
        f"{loaded.model.dimension}, model {setup.model_name}, channels: "
        f"{', '.join(channels) or 'none'}"
    )


def main() -> None:
    cli(prog_name="antiphon")


_COMMAND_MODULES = ("model", "data", "run", "web", "remote")
"""Modules of antiphon.cli whose COMMANDS are added to the group."""


def _register() -> None:
    import importlib

    for name in _COMMAND_MODULES:
        for command in importlib.import_module(f"antiphon.cli.{name}").COMMANDS:
            cli.add_command(command)


_register()

if __name__ == "__main__":
    sys.exit(main())
