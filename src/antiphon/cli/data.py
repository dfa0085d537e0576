"""Commands for the learning loop: synthesise logs, build datasets, train, generate.

Options keep IMPSY's names (and short forms) where IMPSY has them, so IMPSY's
workshop instructions work as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from antiphon.errors import needs_extra
from antiphon.limits import SIZES

if TYPE_CHECKING:
    from antiphon.config import ModelConfig
    from antiphon.data.dataset import Dataset

_TRAIN_HINT = needs_extra("training needs PyTorch", "train")


def _configured_dimension() -> int | None:
    """The dimension in ./config.toml, when the command runs in a workspace."""
    if not Path("config.toml").is_file():
        return None
    from antiphon import config

    return config.load("config.toml").model.dimension


def _configured_model() -> ModelConfig:
    """The [model] settings of ./config.toml, else the defaults every workspace starts with."""
    from antiphon import config

    if not Path("config.toml").is_file():
        return config.ModelConfig()
    return config.load("config.toml").model


# -- antiphon dataset ----------------------------------------------------------------------


@click.command()
@click.option(
    "-D",
    "--dimension",
    type=click.IntRange(2),
    help="Dimension of the logs to collect [default: config.toml's, else the only one in SOURCE].",
)
@click.option(
    "-S",
    "--source",
    type=click.Path(path_type=Path),
    default="logs",
    show_default=True,
    help="Folder of .log files.",
)
@click.option(
    "-O",
    "--destination",
    type=click.Path(file_okay=False, path_type=Path),
    default="datasets",
    show_default=True,
    help="Folder to write the dataset to.",
)
@click.option("-F", "--filename", help="Dataset file name [default: training-dataset-{D}d.npz].")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["antiphon", "impsy"]),
    default="antiphon",
    show_default=True,
    help="antiphon's format (no pickle) or IMPSY's perfs .npz.",
)
@click.option(
    "--synthetic",
    is_flag=True,
    help="Also collect logs no one played (from `data synth` and `generate`).",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw every control over time to this PNG.",
)
def dataset(
    dimension: int | None,
    source: Path,
    destination: Path,
    filename: str | None,
    fmt: str,
    synthetic: bool,
    plot: Path | None,
) -> None:
    """Collect the performance logs of one dimension into a training dataset
    (the logs people played, unless --synthetic)."""
    from antiphon.data import dataset as datasets

    if plot:
        _require_plotting()
    if dimension is None:
        dimension = _configured_dimension() or datasets.only_dimension(source)
    collected = datasets.from_logs(source, dimension, made=synthetic)
    path = datasets.save(
        destination / (filename or datasets.default_name(dimension)), collected.dataset, fmt
    )
    empty = f", {len(collected.empty)} without performer events" if collected.empty else ""
    click.echo(f"read {collected.logs} logs from {source}{empty}")
    for note in collected.notes():
        click.echo(f"  {note}")
    for line in collected.dataset.summary().lines():
        click.echo(f"  {line}")
    click.echo(f"wrote {path} ({fmt} format)")
    if plot:
        _plot_dataset(collected.dataset, plot, path.name)


def _require_plotting() -> None:
    """Say how to install plotting before any work is done, not after."""
    from antiphon.data import plot

    plot.require()


def _plot_dataset(data: Dataset, png: Path, title: str) -> None:
    from antiphon.data import plot

    plot.performance(data.events, png, title=title, boundaries=data.offsets[1:-1])
    click.echo(f"plotted {png}")


# -- antiphon data ... ----------------------------------------------------------------------


@click.group()
def data() -> None:
    """Synthesise performances and inspect datasets."""


@data.command("synth")
@click.option(
    "-D",
    "--dimension",
    type=click.IntRange(2),
    default=9,
    show_default=True,
    help="dt plus the number of controls.",
)
@click.option("-n", "--performances", type=click.IntRange(1), default=10, show_default=True)
@click.option(
    "-m",
    "--minutes",
    type=click.FloatRange(0.05),
    default=3.0,
    show_default=True,
    help="Length of each performance.",
)
@click.option(
    "--style",
    type=click.Choice(["knobs", "sensor"]),
    help="knobs: a MIDI controller, one control per event; sensor: every control in "
    "every event [default: sensor up to 3 controls, else knobs].",
)
@click.option(
    "--destination",
    type=click.Path(file_okay=False, path_type=Path),
    default="logs",
    show_default=True,
)
@click.option("--seed", type=int, help="Make the same performances again.")
def synth(
    dimension: int,
    performances: int,
    minutes: float,
    style: str | None,
    destination: Path,
    seed: int | None,
) -> None:
    """Write believable synthetic performances as log files (no instrument needed)."""
    from antiphon.data import performer

    paths = performer.write_logs(
        destination,
        dimension,
        performances,
        minutes,
        style=style,  # type: ignore[arg-type]
        seed=seed,
    )
    chosen = style or performer.default_style(dimension)
    click.echo(
        f"wrote {len(paths)} {chosen} performances of {minutes:g} min to {destination}/ "
        f"(dimension {dimension})"
    )


@data.command("info")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Draw every control over time to this PNG.",
)
def info(file: Path, plot: Path | None) -> None:
    """Summarise a dataset file (antiphon's or IMPSY's)."""
    from antiphon.data import dataset as datasets

    if plot:
        _require_plotting()
    loaded = datasets.load(file)
    click.echo(str(file))
    for line in loaded.summary().lines():
        click.echo(f"  {line}")
    if plot:
        _plot_dataset(loaded, plot, file.name)


# -- antiphon train ------------------------------------------------------------------------


def _find_dataset(source: Path, dimension: int | None) -> Path:
    from antiphon.data import dataset as datasets
    from antiphon.errors import AntiphonError

    if source.is_file():
        return source
    if not source.is_dir():
        raise AntiphonError(f"no dataset folder {source}: make a dataset with `antiphon dataset`")
    if dimension is None:
        dimension = _configured_dimension()
    if dimension is not None:
        return source / datasets.default_name(dimension)
    candidates = sorted(source.glob("training-dataset-*d.npz"))
    if len(candidates) != 1:
        raise AntiphonError(
            f"say which dataset in {source} to train on with --dimension"
            + (f" (found {', '.join(p.name for p in candidates)})" if candidates else "")
        )
    return candidates[0]


@click.command()
@click.option(
    "-D",
    "--dimension",
    type=click.IntRange(2),
    help="Train on SOURCE/training-dataset-{D}d.npz "
    "[default: config.toml's, else the only dataset].",
)
@click.option(
    "-S",
    "--source",
    type=click.Path(path_type=Path),
    default="datasets",
    show_default=True,
    help="Dataset folder, or a dataset file.",
)
@click.option(
    "-M",
    "--modelsize",
    type=click.Choice(list(SIZES)),
    default="s",
    show_default=True,
)
@click.option(
    "--earlystopping/--no-earlystopping",
    default=True,
    show_default=True,
    help="Stop when validation stops improving.",
)
@click.option(
    "-P",
    "--patience",
    type=click.IntRange(1),
    default=10,
    show_default=True,
    help="Epochs without improvement before stopping.",
)
@click.option(
    "-N",
    "--numepochs",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="Most epochs to train.",
)
@click.option("-B", "--batchsize", type=click.IntRange(1), default=16, show_default=True)
@click.option(
    "--lr",
    type=click.FloatRange(0, min_open=True),
    default=2e-3,
    show_default=True,
    help="Adam learning rate.",
)
@click.option(
    "--stride",
    type=click.IntRange(1, 50),
    default=50,
    show_default=True,
    help="Events between training windows (IMPSY: 1).",
)
@click.option(
    "--epoch-windows",
    type=click.IntRange(0),
    default=8192,
    show_default=True,
    help="Windows an epoch holds at least: small datasets are passed over several times per epoch.",
)
@click.option(
    "--split",
    type=click.Choice(["performances", "impsy"]),
    default="performances",
    show_default=True,
    help="Validate on held-out performances, or on IMPSY's last 10 % of windows.",
)
@click.option(
    "--like-impsy",
    is_flag=True,
    help="Train exactly as IMPSY: --stride 1 --batchsize 64 --split impsy, constant learning rate.",
)
@click.option(
    "-O",
    "--destination",
    type=click.Path(file_okay=False, path_type=Path),
    default="models",
    show_default=True,
    help="Folder to write the model to.",
)
@click.option(
    "--seed", type=int, help="Make the run repeatable [default: random, recorded in the model]."
)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or mps.")
@click.option(
    "--threads", type=click.IntRange(1), help="CPU threads for PyTorch [default: every core]."
)
@click.option(
    "--max-minutes",
    type=click.FloatRange(0, min_open=True),
    help="Stop after this long and keep the best model.",
)
@click.option(
    "--resume",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Continue an interrupted run from its .checkpoint.pt file.",
)
@click.option(
    "--plot/--no-plot",
    default=True,
    show_default=True,
    help="Write a PNG of the loss curves beside the model.",
)
@click.option(
    "--progress-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also append progress as JSON lines to this file (for the web UI or a script).",
)
@click.pass_context
def train(ctx: click.Context, **options: object) -> None:
    """Train a model on a dataset; writes a new model file (never overwriting one)."""
    try:
        from antiphon.training.session import train_from_options
    except ImportError as exc:
        if exc.name in ("torch", "rich") or "torch" in str(exc) or "rich" in str(exc):
            raise click.ClickException(f"{_TRAIN_HINT} ({exc})") from None
        raise

    given = {
        name
        for name in options
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
    }
    train_from_options(options, given, _find_dataset, echo=click.echo)


# -- antiphon generate ---------------------------------------------------------------------


@click.command()
@click.argument(
    "model", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "-D",
    "--dimension",
    type=click.IntRange(2),
    default=9,
    show_default=True,
    help="Without MODEL, play the bundled default model of this dimension.",
)
@click.option(
    "-n", "--events", type=click.IntRange(1), help="Play this many events [default: 1000]."
)
@click.option(
    "-s",
    "--seconds",
    type=click.FloatRange(0, min_open=True),
    help="Play this many seconds instead.",
)
@click.option(
    "--sigmatemp",
    "--sigma-temp",
    type=click.FloatRange(0),
    help="Scales the variance of each sample [default: config.toml's, else 0.2].",
)
@click.option(
    "--pitemp",
    "--pi-temp",
    type=click.FloatRange(0, min_open=True),
    help="Temperature of the mixture choice [default: config.toml's, else 1].",
)
@click.option(
    "--timescale",
    type=click.FloatRange(0, min_open=True),
    help="Multiplies every dt, 2 = half speed [default: config.toml's, else 1].",
)
@click.option("--seed", type=int, help="Make the same performance again.")
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default="logs",
    show_default=True,
    help="Where the log file goes.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw every control over time to this PNG.",
)
def generate(
    model: Path | None,
    dimension: int,
    events: int | None,
    seconds: float | None,
    sigmatemp: float | None,
    pitemp: float | None,
    timescale: float | None,
    seed: int | None,
    output_dir: Path,
    plot: Path | None,
) -> None:
    """Let a model play on its own and write what it played as a log (and a plot).

    It plays as the workspace does: sigmatemp, pitemp and timescale come from
    ./config.toml when there is one."""
    from antiphon.data import generate as generating
    from antiphon.data.logs import RNN, write_events
    from antiphon.errors import AntiphonError
    from antiphon.model import loader

    if events is not None and seconds is not None:
        raise click.UsageError("give --events or --seconds, not both")
    if model is None:
        model = loader.bundled_model(dimension)
        if model is None:
            raise AntiphonError(f"no bundled model for dimension {dimension}; give a MODEL file")
    if plot is not None:
        _require_plotting()
    if events is None and seconds is None:
        events = 1000
    settings = _configured_model()
    sigmatemp = settings.sigmatemp if sigmatemp is None else sigmatemp
    pitemp = settings.pitemp if pitemp is None else pitemp
    timescale = settings.timescale if timescale is None else timescale
    predictor = loader.open_model(model, sigmatemp=sigmatemp, pitemp=pitemp, seed=seed)
    played = generating.play(predictor, events=events, seconds=seconds, timescale=timescale)
    path = write_events(output_dir, played.events, source=RNN, origin="generated")
    click.echo(
        f"{model.name} played (sigmatemp {sigmatemp:g}, pitemp {pitemp:g}, "
        f"timescale {timescale:g}):"
    )
    for line in played.lines():
        click.echo(f"  {line}")
    click.echo(f"wrote {path}")
    if plot is not None:
        from antiphon.data import plot as plotting

        plotting.performance(
            played.events, plot, title=f"{model.name} (sigmatemp {sigmatemp:g}, pitemp {pitemp:g})"
        )
        click.echo(f"plotted {plot}")


COMMANDS = [dataset, data, train, generate]
