"""IMPSY's own model files, read without TensorFlow, reproduce TensorFlow's numbers."""

import zipfile

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from antiphon.model import files, impsy  # noqa: E402
from antiphon.model.files import ModelFileError  # noqa: E402
from antiphon.model.mdrnn import MDRNN  # noqa: E402

STEM = "musicMDRNN-dim4-layers2-units64-mixtures5-scale10"


def reproduce_reference(weights, reference):
    model = MDRNN(weights)
    for t, event in enumerate(reference["inputs"]):
        got = model.step(event)
        expected = reference["mdn"][t]
        assert np.all(np.abs(got - expected) <= 1e-4 * np.maximum(1, np.abs(expected))), t
        np.testing.assert_allclose(
            np.array(model.state), reference["states_per_step"][t], atol=1e-4
        )
    np.testing.assert_allclose(np.array(model.state), reference["states"], atol=1e-4)


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_impsy_files_reproduce_the_tensorflow_reference(impsy_dir, suffix):
    loaded = impsy.read(impsy_dir / "models" / f"{STEM}{suffix}")
    assert loaded.architecture.describe() == (
        "size s: dimension 4, 2 LSTM layers x 64 units, 5 mixtures"
    )
    reproduce_reference(loaded.weights, np.load(impsy_dir / "reference-dim4.npz"))


def test_full_model_h5_layout_b_loads(impsy_dir):
    loaded = impsy.read(
        impsy_dir / "models" / "musicMDRNN-dim2-layers2-units32-mixtures5-scale10.h5"
    )
    arch = loaded.architecture
    assert (arch.dimension, arch.units, arch.layers, arch.mixtures) == (2, 32, 2, 5)
    assert loaded.metadata["impsy_layout"].startswith("B")
    event = MDRNN(loaded.weights, seed=0).generate([0.1, 0.5])
    assert len(event) == 2


def write_layout_d(keras_path, out_path, layers_key="time_distributed/layer"):
    """A Keras 3 checkpoint: the .keras weights with the MDN under time_distributed and
    an optimizer group, as `.weights.h5` files are laid out."""
    with zipfile.ZipFile(keras_path) as z, open(out_path.with_suffix(".src.h5"), "wb") as f:
        f.write(z.read("model.weights.h5"))
    with h5py.File(out_path.with_suffix(".src.h5"), "r") as src, h5py.File(out_path, "w") as dst:
        for name in ("lstm", "lstm_1"):
            src.copy(src[f"layers/{name}"], dst, f"layers/{name}")
        for head in ("mdn_mus", "mdn_sigmas", "mdn_pi"):
            src.copy(src[f"layers/mdn/{head}"], dst, f"layers/{layers_key}/{head}")
        dst.create_dataset("optimizer/vars/0", data=np.zeros(3))
        dst.create_dataset("optimizer/vars/1", data=np.zeros((4, 256)))


def test_keras3_checkpoint_layout_d_loads_and_matches(impsy_dir, tmp_path):
    path = tmp_path / "checkpoint.weights.h5"
    write_layout_d(impsy_dir / "models" / f"{STEM}.keras", path)
    loaded = impsy.read(path)
    assert loaded.metadata["impsy_layout"].startswith("D")
    reproduce_reference(loaded.weights, np.load(impsy_dir / "reference-dim4.npz"))


def test_import_writes_an_antiphon_model_that_plays_the_same(impsy_dir, tmp_path):
    from click.testing import CliRunner

    from antiphon.cli import cli

    source = tmp_path / f"{STEM}.h5"
    source.write_bytes((impsy_dir / "models" / f"{STEM}.h5").read_bytes())
    result = CliRunner().invoke(cli, ["model", "import", str(source)])
    assert result.exit_code == 0, result.output
    converted = files.load(source.with_suffix(".safetensors"))
    assert converted.metadata["imported_from"] == source.name
    reproduce_reference(converted.weights, np.load(impsy_dir / "reference-dim4.npz"))
    again = CliRunner().invoke(cli, ["model", "import", str(source)])
    assert again.exit_code == 1 and "already exists" in again.output


def test_broken_keras_files_give_clear_errors(tmp_path):
    bad_zip = tmp_path / "bad.keras"
    bad_zip.write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(ModelFileError, match="bad.keras"):
        impsy.read(bad_zip)
    no_weights = tmp_path / "empty.keras"
    with zipfile.ZipFile(no_weights, "w") as z:
        z.writestr("config.json", "{}")
    with pytest.raises(ModelFileError, match="empty.keras"):
        impsy.read(no_weights)
    other_h5 = tmp_path / "other.h5"
    with h5py.File(other_h5, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ModelFileError, match="not a Keras model"):
        impsy.read(other_h5)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(ModelFileError, match="truncated.h5"):
        impsy.read(truncated)
