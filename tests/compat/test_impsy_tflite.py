"""IMPSY's .tflite files play their own weights, read without LiteRT or TensorFlow."""

import importlib.util
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from antiphon.cli import cli
from antiphon.model import files, litert, loader, tflite
from antiphon.model.files import ModelFileError
from antiphon.model.flatbuffer import Table
from antiphon.model.mdrnn import MDRNN

DATA = Path(__file__).with_name("data")
FIXTURE = DATA / "random-dim3-xxs-int8.tflite"  # per-axis int8, made by IMPSY 1.2.1
FIXTURE_SOURCE = DATA / "random-dim3-xxs.safetensors"
DIM4 = "musicMDRNN-dim4-layers2-units64-mixtures5-scale10"
DIM9 = "musicMDRNN-dim9-layers2-units64-mixtures5-scale10"
HAS_LITERT = importlib.util.find_spec("ai_edge_litert") is not None
needs_litert = pytest.mark.skipif(not HAS_LITERT, reason="LiteRT (the litert extra) is absent")

QUANTISED = 0.01
"""Dequantised weights are within 1 % of each tensor's range of the float ones
(one int8 step is 1/254 of it)."""


def assert_close_weights(got, expected, exact: bool) -> None:
    want = expected.tensors()
    for name, array in got.tensors().items():
        if exact:
            np.testing.assert_array_equal(array, want[name], err_msg=name)
        else:
            span = float(np.ptp(want[name])) or 1.0
            assert np.abs(array - want[name]).max() <= QUANTISED * span, name


def steps(model, events) -> np.ndarray:
    return np.array([model.step(e).copy() for e in events])


@pytest.mark.parametrize(
    ("stem", "storage", "flex"),
    [
        ("musicMDRNN-dim2-layers2-units32-mixtures5-scale10", "int8", True),
        (DIM4, "int8", True),
        (DIM9, "float32", False),
    ],
)
def test_every_impsy_tflite_holds_the_weights_of_its_h5(impsy_dir, stem, storage, flex):
    from antiphon.model import impsy

    pytest.importorskip("h5py")
    loaded = tflite.read(impsy_dir / "models" / f"{stem}.tflite")
    assert loaded.metadata["tflite_weights"].startswith(storage)
    assert ("Flex" in loaded.metadata["impsy_layout"]) == flex
    h5 = impsy.read(impsy_dir / "models" / f"{stem}.h5").weights
    assert_close_weights(loaded.weights, h5, exact=storage == "float32")


def test_a_flex_tflite_plays_its_own_weights(impsy_dir):
    """The int8 Flex file plays the model TensorFlow computes from the .h5, to within
    what its quantised weights change (under 1 % of each step's MDN range; 0.7 % here)."""
    reference = np.load(impsy_dir / "reference-dim4.npz")
    model = loader.open_model(impsy_dir / "models" / f"{DIM4}.tflite")
    assert isinstance(model, MDRNN)
    got = steps(model, reference["inputs"])
    error = np.abs(got - reference["mdn"]).max(axis=1) / np.ptp(reference["mdn"], axis=1)
    assert error.max() < 0.01


def test_per_axis_int8_weights_are_dequantised_row_by_row():
    loaded = tflite.read(FIXTURE)
    assert loaded.metadata["tflite_weights"] == "int8 (3 tensors, dequantised)"
    source = files.load(FIXTURE_SOURCE).weights
    assert_close_weights(loaded.weights, source, exact=False)
    # each row has its own scale: the error in a row stays within half of its step
    for name in ("lstm.0.recurrent_kernel", "lstm.1.kernel", "lstm.1.recurrent_kernel"):
        got, want = loaded.weights.tensors()[name], source.tensors()[name]
        half_step = np.abs(want).max(axis=0) / 127 / 2  # columns here are TFLite's rows
        assert np.all(np.abs(got - want) <= half_step * 1.001 + 1e-7), name


@needs_litert
@pytest.mark.parametrize(
    ("name", "tolerance"),
    [
        (f"models/{DIM9}.tflite", 1e-4),
        ("conformance/models/conformance-dim3-layers2-units16-mixtures5.tflite", 1e-4),
    ],
)
def test_the_reader_computes_what_litert_computes(impsy_dir, name, tolerance):
    path = impsy_dir / name
    ours = loader.open_model(path)
    theirs = litert.LiteRTMDRNN(path)
    events = np.random.default_rng(3).uniform(0, 1, (100, ours.architecture.dimension))
    a, b = steps(ours, events), steps(theirs, events)
    assert np.all(np.abs(a - b) <= tolerance * np.maximum(1, np.abs(b)))


@needs_litert
def test_int8_weights_agree_with_litert_to_its_quantisation():
    """LiteRT also quantises the activations of an int8 layer; antiphon computes in
    float from the dequantised weights, so the two differ by about a quantisation step
    (measured 0.0014 on values up to 1.7) and antiphon is nearer the float model."""
    ours, theirs = loader.open_model(FIXTURE), litert.LiteRTMDRNN(FIXTURE)
    source = MDRNN(files.load(FIXTURE_SOURCE).weights)
    events = np.random.default_rng(4).uniform(0, 1, (50, 3))
    a, b, exact = steps(ours, events), steps(theirs, events), steps(source, events)
    assert np.abs(a - b).max() < 0.01 * np.abs(exact).max()
    assert np.abs(a - exact).max() <= np.abs(b - exact).max()


def test_info_and_import_read_a_flex_tflite(impsy_dir, tmp_path):
    source = tmp_path / f"{DIM4}.tflite"
    source.write_bytes((impsy_dir / "models" / f"{DIM4}.tflite").read_bytes())
    info = CliRunner().invoke(cli, ["model", "info", str(source)])
    assert info.exit_code == 0, info.output
    assert "E (.tflite, Flex ops)" in info.output and "int8 (6 tensors" in info.output
    imported = CliRunner().invoke(cli, ["model", "import", str(source)])
    assert imported.exit_code == 0, imported.output
    converted = files.load(source.with_suffix(".safetensors"))
    assert converted.metadata["imported_from"] == source.name
    assert_close_weights(converted.weights, tflite.read(source).weights, exact=True)


# -- files that are not IMPSY models ----------------------------------------------------


def test_bytes_that_are_not_tflite_say_so(tmp_path):
    for name, data in [
        ("empty.tflite", b""),
        ("text.tflite", b"this is not a model at all"),
        ("wrong-id.tflite", struct.pack("<I", 8) + b"TFL2" + b"\0" * 64),
        ("loop.tflite", struct.pack("<I", 8) + b"TFL3" + struct.pack("<i", 0) * 4),
    ]:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ModelFileError, match="not a readable TensorFlow Lite file") as info:
            tflite.read(path)
        assert name in str(info.value) and ".h5" in str(info.value)


def test_a_file_too_large_for_any_impsy_model_is_not_read(tmp_path):
    path = tmp_path / "huge.tflite"
    with path.open("wb") as f:
        f.truncate(tflite.MAX_FILE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(ModelFileError, match="larger than any IMPSY model"):
        tflite.read(path)


def test_truncated_and_corrupted_files_raise_only_model_file_errors(impsy_dir, tmp_path):
    """Every cut and every flipped byte gives a readable model or a ModelFileError."""
    data = (impsy_dir / "models" / f"{DIM4}.tflite").read_bytes()
    rng = np.random.default_rng(0)
    path = tmp_path / "bad.tflite"
    outcomes = {"read": 0, "refused": 0}
    variants = [data[:cut] for cut in rng.integers(0, len(data), 60)]
    for _ in range(300):
        corrupt = bytearray(data)
        for at in rng.integers(0, len(data), 4):
            corrupt[at] = int(rng.integers(0, 256))
        variants.append(bytes(corrupt))
    for variant in variants:
        path.write_bytes(variant)
        try:
            tflite.read(path)
            outcomes["read"] += 1
        except ModelFileError:
            outcomes["refused"] += 1
    assert outcomes["refused"] >= 100  # every cut, and the flips that hit the tables
    assert outcomes["read"] >= 100  # most flips land in weights and still read


def _patch_opcode(data: bytes, old: int, new: int) -> bytes:
    """The same graph with every use of builtin operator ``old`` made ``new``."""
    out = bytearray(data)
    for code in Table.root(data, b"TFL3").tables(1, 1000):
        if code.scalar(3, "<i") == old:
            struct.pack_into("<b", out, code.position(0), new)
            struct.pack_into("<i", out, code.position(3), new)
    return bytes(out)


def test_a_graph_of_another_shape_is_refused_with_the_reason(impsy_dir, tmp_path, monkeypatch):
    """TANH made LOGISTIC: still a valid graph LiteRT runs, but not an LSTM antiphon
    knows; without LiteRT the error says why and what to use instead."""
    data = impsy_dir / "conformance/models/conformance-dim3-layers2-units16-mixtures5.tflite"
    path = tmp_path / "odd.tflite"
    path.write_bytes(_patch_opcode(data.read_bytes(), old=28, new=14))
    with pytest.raises(ModelFileError, match="not in Keras' order") as info:
        tflite.read(path)
    assert "odd.tflite" in str(info.value) and "antiphon model import" in str(info.value)
    monkeypatch.setattr(litert, "can_run", lambda path: False)
    with pytest.raises(ModelFileError, match="not in Keras' order"):
        loader.open_model(path)


@needs_litert
def test_litert_runs_a_graph_the_reader_does_not_know(impsy_dir, tmp_path):
    data = impsy_dir / "conformance/models/conformance-dim3-layers2-units16-mixtures5.tflite"
    path = tmp_path / "odd.tflite"
    path.write_bytes(_patch_opcode(data.read_bytes(), old=28, new=14))
    model = loader.open_model(path, seed=0)
    assert isinstance(model, litert.LiteRTMDRNN)
    assert len(model.generate([0.1, 0.5, 0.5])) == 3


def test_operators_wired_wrongly_are_refused(impsy_dir, tmp_path):
    """Every RESHAPE given no inputs: the graph cannot be followed, and the reader says
    so instead of failing on an index."""
    data = bytearray((impsy_dir / "models" / f"{DIM9}.tflite").read_bytes())
    root = Table.root(bytes(data), b"TFL3")
    reshape = [i for i, c in enumerate(root.tables(1, 1000)) if c.scalar(3, "<i") == 22]
    for graph in root.tables(2, 100):
        for op in graph.tables(3, 10_000):
            if op.scalar(0, "<I") in reshape:
                at = op.position(1)
                struct.pack_into("<I", data, at + struct.unpack_from("<I", data, at)[0], 0)
    path = tmp_path / "rewired.tflite"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="rewired.tflite"):
        tflite.read(path)
