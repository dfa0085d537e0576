"""`antiphon remote`: update instruments and collect their recordings from a laptop."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from antiphon.remote import Instrument

MAX_REPORTED = 10
"""Refused names printed at most per instrument (a hostile one could list millions)."""

_URL_HELP = (
    "An instrument's web address, e.g. antiphon.local:4000; repeat it to act on "
    "several instruments. [default: localhost:4000]"
)


@click.group()
@click.option("--url", "urls", multiple=True, default=["localhost:4000"], help=_URL_HELP)
@click.option(
    "--password",
    envvar="ANTIPHON_PASSWORD",
    help="The instruments' web UI password, if set (or ANTIPHON_PASSWORD).",
)
@click.pass_context
def remote(ctx: click.Context, urls: tuple[str, ...], password: str | None) -> None:
    """Talk to running instruments: status, push models and configs, pull logs."""
    ctx.obj = {"urls": urls, "password": password}


def _instruments(ctx: click.Context) -> Iterator[tuple[str, Instrument]]:
    from antiphon.remote import Instrument

    for url in ctx.obj["urls"]:
        with Instrument(url, password=ctx.obj["password"]) as instrument:
            yield url, instrument


@remote.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """What each instrument is playing, and its workspace."""
    from antiphon.errors import AntiphonError

    for url, instrument in _instruments(ctx):
        snap = instrument.status()
        try:
            summary, substitutions = _summary(snap)
        except (KeyError, TypeError, AttributeError):
            raise AntiphonError(f"{url}/api/status is not a status antiphon can read") from None
        _say(url, summary)
        for message in substitutions:
            _say(url, f"ERROR: playing {message}", error=True)


def _summary(snap: dict) -> tuple[str, list[str]]:
    """A status in one line, and the substitutions it reports (at most MAX_REPORTED)."""
    engine = snap.get("engine")
    counts = snap["workspace"]
    if engine and engine.get("problem"):
        playing = f"NOT PLAYING: {engine['problem']}"
    elif engine:
        playing = (
            f"playing {engine['model']['name']} in {engine['mode']} mode"
            f"{' (paused)' if engine['paused'] else ''}, dimension {engine['dimension']}"
        )
    else:
        playing = "not playing"  # `antiphon web`, without an engine
    summary = (
        f"antiphon {snap['version']}, {playing}; {counts['logs']} logs, "
        f"{counts['datasets']} datasets, {counts['models']} models"
    )
    substitutions = (engine or {}).get("substitutions") or []
    return summary, [s.get("message") for s in substitutions[:MAX_REPORTED]]


def _say(url: str, text: str, *, error: bool = False) -> None:
    """One line about the instrument at ``url``; what it sent is in ``text``, so the
    line is made safe for the terminal whole."""
    from antiphon.remote import printable

    click.secho(f"{url}: {printable(text)}", fg="red" if error else None, err=error)


@remote.command("push-model")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--use", is_flag=True, help="Make each instrument play it now.")
@click.pass_context
def push_model(ctx: click.Context, file: Path, use: bool) -> None:
    """Upload a model (checked by the instrument before it is kept)."""
    for url, instrument in _instruments(ctx):
        _say(url, instrument.push_model(file, use=use))


@remote.command("push-config")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--apply/--no-apply", default=True, show_default=True, help="Reload the engine with it at once."
)
@click.pass_context
def push_config(ctx: click.Context, file: Path, apply: bool) -> None:
    """Replace config.toml (checked by the instrument, the model too; the old one is kept)."""
    for url, instrument in _instruments(ctx):
        _say(url, instrument.push_config(file, apply=apply))


def _pull(ctx: click.Context, kind: str, into: Path, since: datetime | None) -> None:
    from antiphon.remote import keep, new_files

    into.mkdir(parents=True, exist_ok=True)
    for url, instrument in _instruments(ctx):
        listed, refused = instrument.files(kind)
        fresh = list(new_files(listed, into, since))
        kept = []
        for file in fresh:
            partial = instrument.download(kind, file.name, into)
            kept.append(keep(partial, into, file.name).name)
        names = ", ".join(kept[:3]) + (", ..." if len(kept) > 3 else "")
        _say(url, f"{len(fresh)} new {kind} into {into}" + (f" ({names})" if fresh else ""))
        for reason in refused[:MAX_REPORTED]:
            _say(url, f"refused a name from the instrument: {reason}", error=True)
        if len(refused) > MAX_REPORTED:
            _say(url, f"and {len(refused) - MAX_REPORTED} more names refused", error=True)


@remote.command("pull-logs")
@click.option(
    "--into",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("logs"),
    show_default=True,
    help="Where the logs go.",
)
@click.option("--since", type=click.DateTime(), help="Only logs written after this time.")
@click.pass_context
def pull_logs(ctx: click.Context, into: Path, since: datetime | None) -> None:
    """Copy the logs this computer does not have yet."""
    _pull(ctx, "logs", into, since)


@remote.command("pull-datasets")
@click.option(
    "--into",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("datasets"),
    show_default=True,
    help="Where the datasets go.",
)
@click.pass_context
def pull_datasets(ctx: click.Context, into: Path) -> None:
    """Copy the datasets this computer does not have yet."""
    _pull(ctx, "datasets", into, None)


COMMANDS = [remote]
