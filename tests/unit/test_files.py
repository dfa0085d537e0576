"""antiphon model files: round trip, atomic and never overwritten, clear errors."""

import json
import os
import stat
import time

import numpy as np
import pytest

import bombs
from antiphon.model import files, impsy
from antiphon.model.files import ModelFile, ModelFileError
from antiphon.model.mdrnn import MDRNN, Weights
from antiphon.model.presets import Architecture


@pytest.fixture
def model() -> ModelFile:
    return ModelFile(
        Weights.random(Architecture.from_size(9, "s"), 0),
        {"training": {"best_val_nll": -1.25, "epochs": 12}, "title": "1.0"},
    )


def test_round_trip_keeps_weights_and_metadata(tmp_path, model):
    path = files.save(tmp_path / "m.safetensors", model)
    loaded = files.load(path)
    for name, array in model.weights.tensors().items():
        np.testing.assert_array_equal(loaded.weights.tensors()[name], array)
    meta = loaded.metadata
    assert meta["format"] == "antiphon-mdrnn" and meta["format_version"] == 1
    assert (meta["dimension"], meta["units"], meta["layers"], meta["mixtures"]) == (9, 64, 2, 5)
    assert meta["scale_factor"] == 10.0 and meta["size"] == "s"
    assert meta["training"] == {"best_val_nll": -1.25, "epochs": 12}
    assert meta["title"] == "1.0"  # strings stay strings
    assert meta["created_by"].startswith("antiphon ")
    event = [0.1] + [0.5] * 8
    assert MDRNN(loaded.weights, seed=1).generate(event) == MDRNN(model.weights, seed=1).generate(
        event
    )


def test_save_never_overwrites_and_leaves_no_temporary_files(tmp_path, model):
    path = files.save(tmp_path / "m.safetensors", model)
    before = path.read_bytes()
    with pytest.raises(ModelFileError, match="already exists"):
        files.save(path, model)
    assert path.read_bytes() == before
    files.save(path, model, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_save_requires_the_suffix(tmp_path, model):
    with pytest.raises(ModelFileError, match=".safetensors"):
        files.save(tmp_path / "m.h5", model)


def test_loading_needs_no_ml_framework(tmp_path, model):
    import subprocess
    import sys

    path = files.save(tmp_path / "m.safetensors", model)
    code = (
        "import sys; from antiphon.model import loader; "
        f"m = loader.open_model({str(path)!r}); m.generate([0.1] + [0.5] * 8); "
        "print(sorted(k for k in ('torch', 'h5py', 'tensorflow') if k in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def corrupt_variants(path):
    data = path.read_bytes()
    header = int.from_bytes(data[:8], "little")
    yield "empty", b""
    yield "garbage", b"\x00\x01 not a model at all" * 10
    yield "truncated header", data[: 8 + header // 2]
    yield "truncated data", data[: len(data) // 2]
    yield "bad json", data[:8] + b"{" * header + data[8 + header :]


def test_corrupt_and_truncated_files_give_one_clear_error(tmp_path, model):
    good = files.save(tmp_path / "good.safetensors", model)
    for name, data in corrupt_variants(good):
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(data)
        with pytest.raises(ModelFileError, match=str(path)) as info:
            files.load(path)
        assert "\n" not in str(info.value), name


def test_foreign_safetensors_file_is_refused(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "other.safetensors"
    save_file({"weight": np.zeros((2, 2), np.float32)}, str(path), metadata={"a": "b"})
    with pytest.raises(ModelFileError, match="not an antiphon model"):
        files.load(path)


def test_inconsistent_metadata_or_weights_are_refused(tmp_path, model):
    from safetensors.numpy import save_file

    header = files.metadata_header(model.architecture)
    tensors = model.weights.tensors()
    lying = tmp_path / "lying.safetensors"
    save_file(tensors, str(lying), metadata=header | {"units": json.dumps(32)})
    with pytest.raises(ModelFileError, match="units"):
        files.load(lying)
    missing = tmp_path / "missing.safetensors"
    save_file(
        {k: v for k, v in tensors.items() if k != "mdn.pis.bias"}, str(missing), metadata=header
    )
    with pytest.raises(ModelFileError, match="inconsistent"):
        files.load(missing)
    newer = tmp_path / "newer.safetensors"
    save_file(tensors, str(newer), metadata=header | {"format_version": "99"})
    with pytest.raises(ModelFileError, match="upgrade antiphon"):
        files.load(newer)


def test_models_are_readable_by_everyone_whatever_the_umask(tmp_path, model):
    """Docker: antiphon runs as root, the musician reads the bind-mounted workspace."""
    old = os.umask(0o077)
    try:
        path = files.save(tmp_path / "m.safetensors", model)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_keras_zip_bomb_is_refused_before_it_is_unpacked(tmp_path):
    path = bombs.keras_bomb(tmp_path / "bomb.keras")  # 1 MB holding 1 GB of "weights"
    started = time.monotonic()
    with pytest.raises(ModelFileError, match="model.weights.h5 unpacks to 1,024 MB"):
        impsy.read(path)
    assert time.monotonic() - started < 5  # not unpacked: that alone takes seconds


def test_hdf5_arrays_over_the_limit_are_refused_before_they_are_read(tmp_path):
    """HDF5 compresses too: a chunked array never written is a few bytes on disk and
    reads as 160 MB of zeros."""
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "huge.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"lstm"]
        group = f.create_group("lstm")
        group.attrs["weight_names"] = [b"lstm/kernel:0", b"lstm/recurrent_kernel:0", b"lstm/bias:0"]
        group.create_dataset(
            "lstm/kernel:0", (40_000, 1_000), "f4", chunks=True, compression="gzip"
        )
    assert path.stat().st_size < 100_000
    with pytest.raises(ModelFileError, match="arrays unpack to more than 128 MB"):
        impsy.read(path)
