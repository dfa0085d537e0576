"""The learning loop from the command line: synth -> dataset -> train -> generate."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from antiphon.cli import cli
from antiphon.data import dataset
from antiphon.data.logs import read_log
from antiphon.model import files
from antiphon.workspace import init
from workspaces import edit_config


def antiphon(*args, cwd, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "antiphon", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def _blocking(tmp_path, module):
    """An environment in which importing ``module`` fails, as when it is not installed."""
    fake = tmp_path / "blocked" / module
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        f'raise ImportError("No module named {module}", name="{module}")\n'
    )
    return {**os.environ, "PYTHONPATH": str(tmp_path / "blocked")}


@pytest.fixture
def synth_workspace(tmp_path, monkeypatch):
    """The current folder, where `antiphon data synth` wrote four performances."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        cli, ["data", "synth", "-D", "3", "-n", "4", "-m", "0.4", "--seed", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "wrote 4 sensor performances of 0.4 min to logs/ (dimension 3)" in result.output
    return tmp_path


def test_a_dataset_of_logs_no_one_played_needs_asking_for(synth_workspace):
    result = CliRunner().invoke(cli, ["dataset", "-D", "3"])
    assert result.exit_code == 1 and "--synthetic" in result.output
    assert not list((synth_workspace / "datasets").glob("*.npz"))


def test_synth_dataset_train_generate(synth_workspace):
    runner = CliRunner()
    result = runner.invoke(cli, ["dataset", "-D", "3", "--synthetic", "--plot", "data.png"])
    assert result.exit_code == 0, result.output
    assert (synth_workspace / "data.png").read_bytes()[:4] == b"\x89PNG"
    pytest.importorskip("torch")
    args = ["train", "-D", "3", "-M", "xxs", "-N", "2", "--seed", "1", "--threads", "1",
            "--epoch-windows", "32"]  # fmt: skip
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    models = sorted((synth_workspace / "models").glob("*.safetensors"))
    assert len(models) == 1 and models[0].name.startswith("mdrnn-dim3-xxs-training-dataset-3d-")
    assert models[0].with_suffix(".png").is_file()
    assert not list((synth_workspace / "models").glob("*.checkpoint.pt"))  # finished: cleaned up
    assert "validation NLL" in result.output and "x10-scaled" in result.output
    metadata = files.load(models[0]).metadata
    assert metadata["training"]["epochs"] == 2 and metadata["training"]["settings"]["seed"] == 1
    # the same command again: a second model, the first untouched
    before = models[0].read_bytes()
    assert runner.invoke(cli, args).exit_code == 0
    assert len(list((synth_workspace / "models").glob("*.safetensors"))) == 2
    assert models[0].read_bytes() == before

    before = set((synth_workspace / "logs").glob("*.log"))
    result = runner.invoke(
        cli, ["generate", str(models[0]), "-n", "300", "--seed", "3", "--plot", "g.png"]
    )
    assert result.exit_code == 0, result.output
    (new,) = set((synth_workspace / "logs").glob("*.log")) - before
    generated = read_log(new)
    assert generated.sources == ["rnn"] * 300 and generated.dimension == 3
    assert generated.origin == "generated" and not generated.played
    assert (synth_workspace / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_train_reports_progress_as_json_lines_the_web_ui_reads(synth_workspace):
    pytest.importorskip("torch")
    from antiphon.web.jobs import Job

    assert CliRunner().invoke(cli, ["dataset", "-D", "3", "--synthetic"]).exit_code == 0
    progress = synth_workspace / "run" / "progress.jsonl"
    result = CliRunner().invoke(
        cli,
        ["train", "-D", "3", "-M", "xxs", "-N", "3", "--no-earlystopping", "--seed", "1",
         "--threads", "1", "--epoch-windows", "32", "--progress-file", str(progress)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in progress.read_text().splitlines()]
    events = [r["event"] for r in records]
    assert events[0] == "start" and events[-1] == "done"
    assert [r["epoch"] for r in records if r["event"] == "epoch"] == [1, 2, 3]
    batches = [r for r in records if r["event"] == "batch"]
    assert batches and all(0 < b["done"] <= b["total"] and b["epochs"] == 3 for b in batches)
    (model,) = (synth_workspace / "models").glob("*.safetensors")
    assert records[0]["model"] == records[-1]["model"] == str(model.resolve())
    assert records[-1]["stopped"] == "reached 3 epochs"

    job = Job("train", "test", progress_file=progress)
    state = job.to_dict()
    assert state["result"] == model.name and state["progress"] == 1.0
    assert [e["val_nll"] for e in state["epochs"]] == [
        r["val_nll"] for r in records if r["event"] == "epoch"
    ]
    assert "best validation NLL" in state["message"]


def test_generate_writes_a_log_whose_timestamps_follow_the_dts(model_file, tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(
        cli, ["generate", str(model_file), "-n", "500", "--seed", "1", "--output-dir", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "500 events over" in result.output
    (first,) = out.glob("*-4d-mdrnn.log")
    log = read_log(first)
    assert len(log.times) == 500
    slow = tmp_path / "slow"
    result = runner.invoke(
        cli,
        [
            "generate",
            str(model_file),
            "-n",
            "500",
            "--seed",
            "1",
            "--timescale",
            "2",
            "--output-dir",
            str(slow),
        ],
    )
    (second,) = slow.glob("*.log")
    a, b = read_log(first), read_log(second)
    np.testing.assert_array_equal(a.values, b.values)  # same seed: same music
    np.testing.assert_allclose(np.diff(b.times), 2 * np.diff(a.times), atol=3e-6)  # half speed


def test_generate_plays_at_the_workspaces_settings(model_file, tmp_path, monkeypatch):
    from antiphon.config import DEFAULT_SIGMATEMP

    monkeypatch.chdir(tmp_path)
    args = ["generate", str(model_file), "-n", "50", "--seed", "1"]
    result = CliRunner().invoke(cli, args)  # no config.toml: a new workspace's defaults
    assert f"(sigmatemp {DEFAULT_SIGMATEMP:g}, pitemp 1, timescale 1)" in result.output
    init(tmp_path / "ws")
    edit_config(tmp_path / "ws" / "config.toml", {"model.sigmatemp": 0.5, "model.timescale": 2.0})
    monkeypatch.chdir(tmp_path / "ws")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "(sigmatemp 0.5, pitemp 1, timescale 2)" in result.output
    result = CliRunner().invoke(cli, [*args, "--sigmatemp", "0.01"])  # the option wins
    assert "(sigmatemp 0.01, pitemp 1, timescale 2)" in result.output


def test_generate_for_a_number_of_seconds(model_file, tmp_path):
    from antiphon.data.generate import play
    from antiphon.model.loader import open_model

    played = play(open_model(model_file, seed=0), seconds=4.0)
    assert played.seconds >= 4.0 and played.seconds - played.events[-1, 0] < 4.0
    capped = play(open_model(model_file, seed=0), events=5, seconds=1e6)  # whichever first
    assert len(capped.events) == 5


def test_plotting_without_matplotlib_says_how_to_install_it(model_file, tmp_path):
    result = antiphon(
        "generate",
        str(model_file),
        "-n",
        "10",
        "--plot",
        "x.png",
        cwd=tmp_path,
        env=_blocking(tmp_path, "matplotlib"),
    )
    assert result.returncode == 1 and "pip install -e '.[plot]'" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "logs").exists()


def test_train_without_torch_says_how_to_install_it(tmp_path):
    result = antiphon("train", "-D", "4", cwd=tmp_path, env=_blocking(tmp_path, "torch"))
    assert result.returncode == 1 and "pip install -e '.[train]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_train_without_a_dataset_is_a_clear_error(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["train", "-D", "4"])
    assert result.exit_code == 1 and "no dataset folder datasets" in result.output


@pytest.mark.slow
def test_ctrl_c_saves_the_best_model_and_the_run_resumes(synth_workspace):
    pytest.importorskip("torch")
    assert CliRunner().invoke(cli, ["dataset", "-D", "3", "--synthetic"]).exit_code == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "antiphon", "train", "-D", "3", "-M", "xxs", "-N", "1000",
         "--no-earlystopping", "--seed", "1", "--threads", "1", "--epoch-windows", "32"],
        cwd=synth_workspace, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not list((synth_workspace / "models").glob("*.checkpoint.pt")):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "stopped     interrupted" in out and "Traceback" not in err
    (model,) = (synth_workspace / "models").glob("*.safetensors")
    (checkpoint,) = (synth_workspace / "models").glob("*.checkpoint.pt")
    assert f"antiphon train --resume {checkpoint.relative_to(synth_workspace)}" in out
    done = files.load(model).metadata["training"]["epochs"]

    result = antiphon(
        "train", "--resume", str(checkpoint), "-N", str(done + 1), cwd=synth_workspace
    )
    assert result.returncode == 0, result.stderr
    assert f"resuming {model.stem} after epoch {done}" in result.stdout
    assert f"reached {done + 1} epochs" in result.stdout
    assert not checkpoint.exists()
    resumed = [m for m in (synth_workspace / "models").glob("*.safetensors") if m != model]
    assert len(resumed) == 1 and files.load(resumed[0]).metadata["training"]["epochs"] == done + 1
    refused = antiphon("train", "--resume", str(model), cwd=synth_workspace)
    assert refused.returncode == 1 and "not an antiphon training checkpoint" in refused.stderr


def test_dataset_info_reads_impsy_files(tmp_path):
    perfs = np.empty(2, dtype=object)
    perfs[0] = np.random.default_rng(0).random((70, 4)).astype(np.float32)
    perfs[1] = np.random.default_rng(1).random((30, 4)).astype(np.float32)
    np.savez_compressed(tmp_path / "x.npz", perfs=perfs)
    result = CliRunner().invoke(cli, ["data", "info", str(tmp_path / "x.npz")])
    assert result.exit_code == 0, result.output
    assert "performances 2 (1 shorter than 52 events, not trained on)" in result.output
    assert dataset.load(tmp_path / "x.npz").summary().events == 100
