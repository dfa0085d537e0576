"""Commands about model files: inspect, import, export, test and benchmark."""

from __future__ import annotations

import copy
from pathlib import Path

import click

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group()
def model() -> None:
    """Inspect and convert model files."""


@model.command("info")
@click.argument("file", type=_FILE)
def model_info(file: Path) -> None:
    """Print a model's architecture, parameter count and metadata."""
    from antiphon.model import loader
    from antiphon.model.files import ModelFileError

    try:
        loaded = loader.read_model(file)
        arch, metadata = loaded.architecture, loaded.metadata
    except ModelFileError:
        predictor = loader.open_model(file)  # a .tflite LiteRT runs, or the same error
        arch, metadata = predictor.architecture, {"runs_with": "LiteRT"}
    shown = {"format", "dimension", "units", "layers", "mixtures", "size"}
    rows = {
        "file": str(file),
        "architecture": arch.describe(),
        "parameters": f"{arch.parameter_count:,}",
    }
    rows |= {key: str(value) for key, value in sorted(metadata.items()) if key not in shown}
    width = max(map(len, rows))
    for key, value in rows.items():
        click.echo(f"{key:<{width}}  {value}")


@model.command("import")
@click.argument("file", type=_FILE)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the antiphon model [default: FILE with .safetensors].",
)
def model_import(file: Path, output: Path | None) -> None:
    """Convert an IMPSY .h5/.keras/.tflite model into an antiphon .safetensors model."""
    from antiphon.model import files, loader

    loaded = loader.read_model(file)
    output = output or file.with_suffix(files.SUFFIX)
    files.save(output, loaded)
    click.echo(f"wrote {output} ({loaded.architecture.describe()})")


@model.command("export")
@click.argument("file", type=_FILE)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["h5", "keras"]),
    help="IMPSY file kind [default: from the name given with -o, else h5].",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write it [default: IMPSY's name for the model, beside FILE].",
)
def model_export(file: Path, fmt: str | None, output: Path | None) -> None:
    """Write a model as an IMPSY 1.2 .h5 or .keras file (IMPSY can then make its .tflite).

    An .h5 whose name ends in .weights.h5 is written in Keras 3's layout, any other .h5
    in Keras 2's; IMPSY loads both, and a .keras file too.
    """
    from antiphon.model import export, loader

    weights = loader.read_model(file).weights
    arch = weights.architecture
    if output is None:
        fmt = fmt or "h5"
        output = file.with_name(arch.impsy_stem + export.FORMATS[fmt])
    export.export(weights, output, fmt)
    click.echo(f"wrote {output} ({arch.describe()})")
    click.echo("IMPSY loads it with these settings in its config.toml:")
    for line in export.impsy_config_lines(arch, output):
        click.echo(f"  {line}")


@click.command("test-model")
@click.argument("file", required=False, type=_FILE)
@click.option(
    "-c",
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config to read the model from [default: ./config.toml if present].",
)
@click.option("-n", "--predictions", default=1000, show_default=True, type=click.IntRange(1))
@click.option("--seed", type=int, help="Seed the sampler for a repeatable run.")
def test_model(
    file: Path | None, config_file: Path | None, predictions: int, seed: int | None
) -> None:
    """Load a model, make predictions and time them: a one-command install check.

    Uses FILE, else the configured model, else the bundled default model for the
    configured dimension, else a fresh untrained model.
    """
    from antiphon.model.check import run_test

    run_test(file, config_file, predictions, seed, echo=click.echo)


@click.command()
@click.option(
    "--markdown",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the results as a markdown table to this file.",
)
@click.option("--quick", is_flag=True, help="Fewer repetitions (a rough look in seconds).")
def bench(markdown: Path | None, quick: bool) -> None:
    """Measure prediction latency, start-up time, load time and memory."""
    from antiphon import bench as bench_module

    bench_module.run(markdown=markdown, quick=quick, echo=click.echo)


_test_mdrnn = copy.copy(test_model)
_test_mdrnn.name = "test-mdrnn"
_test_mdrnn.hidden = True  # the name IMPSY's workshop material uses

COMMANDS = [model, test_model, _test_mdrnn, bench]
