"""The command line: fast help, workspaces, model commands, install check, bench."""

import subprocess
import sys

import pytest
from click.testing import CliRunner

from antiphon import __version__
from antiphon.cli import cli
from antiphon.model.presets import Architecture

HEAVY = ("torch", "h5py", "matplotlib", "tensorflow")


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "antiphon", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_version_and_help():
    assert run("--version").stdout.strip() == f"antiphon, version {__version__}"
    result = run("--help")
    assert result.returncode == 0
    for command in ("init", "model", "test-model", "bench", "config"):
        assert command in result.stdout


def test_help_imports_nothing_heavy_and_is_quick():
    code = (
        "import sys, time; t = time.perf_counter(); from antiphon.cli import cli\n"
        "try:\n    cli(['--help'], standalone_mode=False)\nexcept SystemExit: pass\n"
        f"print(time.perf_counter() - t, [m for m in {HEAVY!r} if m in sys.modules], "
        "'numpy' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()[-1]
    seconds, heavy, numpy_loaded = out.split(" ", 1)[0], out.split(" ", 1)[1], out
    assert heavy.startswith("[]"), out
    assert numpy_loaded.endswith("False")  # --help does not even need NumPy
    assert float(seconds) < 1.0  # the 0.3 s budget is measured by `antiphon bench`


def test_init_creates_a_workspace_and_never_overwrites(tmp_path):
    runner = CliRunner()
    target = tmp_path / "instrument"
    result = runner.invoke(cli, ["init", str(target)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in target.iterdir()} == {"config.toml", "logs", "datasets", "models"}
    text = (target / "config.toml").read_text()
    for section in (
        "[interaction]",
        "[model]",
        "[osc]",
        "# [midi]",
        "# [websocket]",
        "# [serial]",
        "# [serialmidi]",
        "[webui]",
    ):
        assert section in text
    (target / "config.toml").write_text("# mine\n")
    (target / "datasets").rmdir()
    again = runner.invoke(cli, ["init", str(target)])  # as IMPSY's init: keep, add folders
    assert again.exit_code == 0 and "kept" in again.output and "--force" in again.output
    assert (target / "config.toml").read_text() == "# mine\n"
    assert (target / "datasets").is_dir()
    forced = runner.invoke(cli, ["init", str(target), "-f"])  # IMPSY's spelling
    assert forced.exit_code == 0
    assert (target / "config.toml.bak").read_text() == "# mine\n"
    assert "[interaction]" in (target / "config.toml").read_text()


def test_config_check_reports_errors_with_the_key(tmp_path):
    runner = CliRunner()
    path = tmp_path / "config.toml"
    path.write_text('[interaction]\nmode = "solo"\n')
    result = runner.invoke(cli, ["config", "check", str(path)])
    assert result.exit_code == 1
    assert "interaction.mode" in result.output and "'solo'" in result.output
    assert "callresponse" in result.output and "Traceback" not in result.output


def test_model_info_prints_architecture_and_metadata(model_file):
    result = CliRunner().invoke(cli, ["model", "info", str(model_file)])
    assert result.exit_code == 0, result.output
    assert "size xs: dimension 4, 2 LSTM layers x 32 units, 5 mixtures" in result.output
    assert f"{Architecture.from_size(4, 'xs').parameter_count:,}" in result.output
    assert "created_by" in result.output


def test_model_info_on_a_corrupt_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    result = run("model", "info", str(bad))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("Error:") and str(bad) in result.stderr


@pytest.mark.parametrize("name", ["test-model", "test-mdrnn"])
def test_test_model_times_predictions(model_file, name):
    result = CliRunner().invoke(cli, [name, str(model_file), "-n", "300", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "300 predictions: p50" in result.output and "OK" in result.output


def test_test_model_uses_the_configured_model(tmp_path, model_file, monkeypatch):
    (tmp_path / "config.toml").write_text(f'[model]\ndimension = 4\nfile = "{model_file.name}"\n')
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["test-model", "-n", "50"])
    assert result.exit_code == 0, result.output
    assert f"model: {model_file.name}" in result.output


def test_test_model_without_any_model_uses_a_fresh_one(tmp_path, monkeypatch):
    (tmp_path / "config.toml").write_text('[model]\ndimension = 17\nsize = "xxs"\n')
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["test-model", "-n", "50"])
    assert result.exit_code == 0, result.output
    assert "fresh untrained model" in result.output and "dimension 17" in result.output


@pytest.mark.slow
def test_bench_writes_a_markdown_table(tmp_path):
    from antiphon import bench

    out = tmp_path / "bench.md"
    lines = []
    rows = bench.run(markdown=out, quick=True, echo=lines.append)
    names = [r.name.strip() for r in rows]
    assert "s D=9" in names and "xl D=4" in names and "reference: fixed work, no model" in names
    assert any("import antiphon.cli" in n for n in names)
    heavy = next(r for r in rows if r.name.startswith("heavy modules"))
    assert heavy.value == "none"
    table = out.read_text()
    assert table.count("\n| ") == len(rows) + 1 and "p50" in table


def test_an_install_without_its_source_folder_is_told_which_packages_to_add(monkeypatch):
    from antiphon import errors

    advice = errors.needs_extra("reading IMPSY .h5/.keras models needs h5py", "impsy")
    assert "-e '.[impsy]' -c constraints.txt" in advice  # from this source folder
    monkeypatch.setattr(errors, "__file__", "/opt/antiphon/lib/antiphon/errors.py")
    advice = errors.needs_extra("reading IMPSY .h5/.keras models needs h5py", "impsy")
    assert "pip install 'h5py>=" in advice and "constraints" not in advice  # as on a Pi
