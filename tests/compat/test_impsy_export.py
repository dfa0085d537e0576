"""antiphon models exported as the files IMPSY 1.2 loads.

antiphon's own IMPSY reader checks every export here. Whether IMPSY itself computes
the same MDN outputs from them needs TensorFlow, which antiphon never installs: the
last test runs IMPSY in a separate virtualenv and skips without one. To run it::

    python3 -m venv build/impsy-venv && build/impsy-venv/bin/pip install impsy==1.2.1
    ANTIPHON_IMPSY_PYTHON=build/impsy-venv/bin/python .venv/bin/python -m pytest \
        tests/compat/test_impsy_export.py
"""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from antiphon.cli import cli
from antiphon.model import export, files, loader
from antiphon.model.files import ModelFile, ModelFileError
from antiphon.model.mdrnn import MDRNN, Weights
from antiphon.model.presets import Architecture

impsy = pytest.importorskip("antiphon.model.impsy")
pytest.importorskip("h5py")

KINDS = {"model.h5": "A", "model.weights.h5": "D", "model.keras": "C"}
"""Export name -> the IMPSY layout it is written in (see model/impsy.py)."""


@pytest.fixture
def weights() -> Weights:
    return loader.read_model(loader.bundled_model(9)).weights


@pytest.mark.parametrize(("name", "layout"), KINDS.items())
def test_every_export_reads_back_to_identical_weights(weights, tmp_path, name, layout):
    path = export.export(weights, tmp_path / name)
    back = impsy.read(path)
    assert back.metadata["impsy_layout"].startswith(layout)
    stored = back.weights.tensors()
    for key, array in weights.tensors().items():
        np.testing.assert_array_equal(stored[key], array, err_msg=key)


def test_a_keras_export_describes_impsy_s_inference_network(weights, tmp_path):
    path = export.export(weights, tmp_path / "model.keras")
    with zipfile.ZipFile(path) as archive:
        assert set(archive.namelist()) == {"metadata.json", "config.json", "model.weights.h5"}
        config = json.loads(archive.read("config.json"))["config"]
    assert [name for name, _, _ in config["input_layers"]] == [
        "inputs",
        "state_h_0",
        "state_c_0",
        "state_h_1",
        "state_c_1",
    ]
    assert config["output_layers"][0] == ["mdn_outputs", 0, 0]
    (mdn,) = [layer for layer in config["layers"] if layer["class_name"] == "MDN"]
    assert mdn["config"] == {"name": "mdn_outputs", "output_dimension": 9, "num_mixtures": 5}


def test_export_names_the_file_as_impsy_does_and_prints_its_settings(weights, tmp_path):
    source = tmp_path / "mine.safetensors"
    files.save(source, ModelFile(weights))
    result = CliRunner().invoke(cli, ["model", "export", str(source)])
    assert result.exit_code == 0, result.output
    written = tmp_path / "musicMDRNN-dim9-layers2-units64-mixtures5-scale10.h5"
    assert impsy.read(written).architecture == weights.architecture
    assert 'size = "s"' in result.output and "dimension = 9" in result.output
    again = CliRunner().invoke(cli, ["model", "export", str(source)])
    assert again.exit_code == 1 and "already exists" in again.output
    keras = CliRunner().invoke(
        cli, ["model", "export", str(source), "-o", str(tmp_path / "x.keras")]
    )
    assert keras.exit_code == 0 and zipfile.is_zipfile(tmp_path / "x.keras")


@pytest.mark.parametrize(
    ("name", "fmt", "message"),
    [
        ("model.txt", None, "IMPSY reads .h5 and .keras"),
        ("model.h5", "keras", "must end in .keras"),
        ("model.keras", "h5", "must end in .h5"),
    ],
)
def test_a_name_impsy_would_misread_is_refused(weights, tmp_path, name, fmt, message):
    with pytest.raises(ModelFileError, match=message):
        export.export(weights, tmp_path / name, fmt)
    assert not (tmp_path / name).exists()


def test_a_size_impsy_cannot_build_is_refused(tmp_path):
    custom = Weights.random(Architecture(dimension=4, units=48, layers=2), seed=0)
    with pytest.raises(ModelFileError, match="IMPSY builds only its preset sizes"):
        export.export(custom, tmp_path / "custom.h5")


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("ANTIPHON_IMPSY_PYTHON"),
    reason="ANTIPHON_IMPSY_PYTHON (a Python with IMPSY 1.2 and TensorFlow) is not set",
)
def test_impsy_computes_the_same_mdn_outputs_from_every_export(weights, tmp_path):
    paths = [export.export(weights, tmp_path / name) for name in KINDS]
    events = np.random.default_rng(5).uniform(0, 1, (30, 9))
    events[:, 0] *= 0.2
    request = {
        "files": [str(p) for p in paths],
        "architecture": {"dimension": 9, "units": 64, "mixtures": 5, "layers": 2},
        "events": events.tolist(),
    }
    helper = Path(__file__).with_name("impsy_tf.py")
    done = subprocess.run(
        [os.environ["ANTIPHON_IMPSY_PYTHON"], str(helper), "mdn"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    theirs = json.loads(line.removeprefix("RESULT "))
    model = MDRNN(weights)
    ours = np.array([model.step(event).copy() for event in events])
    worst = 0.0
    for path in paths:
        got = np.array(theirs[str(path)])
        assert np.all(np.abs(got - ours) <= 1e-4 * np.maximum(1, np.abs(ours))), path.name
        worst = max(worst, float(np.abs(got - ours).max()))
    print(f"IMPSY vs antiphon, largest MDN difference: {worst:.3g}", file=sys.stderr)
