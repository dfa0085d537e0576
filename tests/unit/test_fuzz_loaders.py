"""Property tests of everything that reads a file a stranger may have written: a config,
a dataset, a model. Whatever the bytes, a loader either succeeds or raises the one
error users read as a message (AntiphonError); it never hangs, crashes the process or
escapes as another exception."""

from __future__ import annotations

import dataclasses
import io
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from antiphon import config
from antiphon.data import dataset as datasets
from antiphon.errors import AntiphonError
from antiphon.model import files, loader, tflite
from antiphon.model.mdrnn import Weights
from antiphon.model.presets import Architecture

pytestmark = pytest.mark.timeout(240)

FILES = settings(max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture])

# -- config.toml ---------------------------------------------------------------------------

SECTIONS = {
    f.name: f.type for f in dataclasses.fields(config.Config) if not f.metadata.get("internal")
}
KEYS = sorted(
    {
        f.name
        for table in vars(config).values()
        if dataclasses.is_dataclass(table) and table.__name__.endswith("Config")
        for f in dataclasses.fields(table)
    }
)
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)
    ),
    max_leaves=12,
)
documents = st.dictionaries(
    st.sampled_from(sorted(SECTIONS)),
    st.dictionaries(st.sampled_from(KEYS), values, max_size=5) | scalars,
    max_size=6,
)


def _loads_or_refuses(text: str) -> None:
    try:
        loaded = config.parse(text)
    except config.ConfigError as exc:
        assert str(exc)  # a message a person can read
        return
    assert 2 <= loaded.model.dimension <= 129  # what passes is within bounds


@given(documents)
def test_any_config_document_loads_or_says_what_is_wrong(document):
    _loads_or_refuses(tomlkit.dumps(document))


@given(st.text(max_size=300))
def test_any_text_as_a_config_loads_or_says_what_is_wrong(text):
    _loads_or_refuses(text)


# -- datasets --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def valid_datasets(tmp_path_factory) -> list[bytes]:
    """A real dataset in each format antiphon reads, as bytes to mutate."""
    folder = tmp_path_factory.mktemp("datasets")
    rng = np.random.default_rng(0)
    performances = [rng.random((60, 4)).astype(np.float32) for _ in range(3)]
    made = []
    for form in ("antiphon", "impsy"):
        path = datasets.save(
            folder / f"{form}.npz", datasets.Dataset.from_performances(performances), form
        )
        made.append(path.read_bytes())
    return made


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    mutable = bytearray(data)
    for position, byte in edits:
        mutable[position % len(mutable)] = byte
    return bytes(mutable[:cut] if cut is not None else mutable)


edits = st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=8)
cuts = st.none() | st.integers(min_value=0, max_value=4096)


@FILES
@given(which=st.integers(0, 1), changes=edits, cut=cuts)
def test_a_damaged_dataset_loads_or_says_what_is_wrong(
    tmp_path, valid_datasets, which, changes, cut
):
    path = tmp_path / "training-dataset-4d.npz"
    path.write_bytes(_mutate(valid_datasets[which], changes, cut))
    try:
        loaded = datasets.load(path)
    except AntiphonError as exc:
        assert str(exc)
        return
    assert all(np.isfinite(p).all() for p in loaded.performances)


@FILES
@given(
    members=st.dictionaries(
        st.from_regex(r"[a-z_.]{1,12}", fullmatch=True), st.binary(max_size=200), max_size=4
    )
)
def test_any_zip_as_a_dataset_loads_or_says_what_is_wrong(tmp_path, members):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    path = tmp_path / "training-dataset-4d.npz"
    path.write_bytes(archive.getvalue())
    with pytest.raises(AntiphonError):
        datasets.load(path)


# -- models ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def valid_model(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("models") / "m.safetensors"
    files.save(path, files.ModelFile(Weights.random(Architecture.from_size(4, "xxs"), 0)))
    return path.read_bytes()


@FILES
@given(changes=edits, cut=cuts)
def test_a_damaged_model_loads_or_says_what_is_wrong(tmp_path, valid_model, changes, cut):
    path = tmp_path / "m.safetensors"
    path.write_bytes(_mutate(valid_model, changes, cut))
    try:
        loader.read_model(path)
    except AntiphonError as exc:
        assert str(exc)


IMPSY_MODELS = ("musicMDRNN-dim4-layers2-units64-mixtures5-scale10", ".h5", ".keras", ".tflite")


@pytest.mark.parametrize("suffix", IMPSY_MODELS[1:])
def test_damaged_impsy_models_load_or_say_what_is_wrong(tmp_path, impsy_dir, suffix):
    original = next((impsy_dir / "models").glob(f"*dim4*{suffix}"), None)
    if original is None:
        pytest.skip(f"no IMPSY {suffix} sample")
    data = original.read_bytes()

    @FILES
    @given(changes=edits, cut=cuts)
    def damaged(changes, cut):
        path: Path = tmp_path / f"{IMPSY_MODELS[0]}{suffix}"
        path.write_bytes(_mutate(data, changes, cut))
        try:
            loader.read_model(path)
        except AntiphonError as exc:
            assert str(exc)

    damaged()


def _shared_vtable_tflite(tables: int) -> bytes:
    """A TFL3 file whose buffer list names one table ``tables`` times, that table's vtable
    claiming the most fields a vtable can (32,765)."""
    big = struct.pack("<HH", 65534, 4).ljust(65534, b"\0").ljust(65536, b"\0")  # at 8
    root_vtable = struct.pack("<HH5H", 14, 8, 0, 0, 0, 0, 4).ljust(16, b"\0")  # at 65544
    root = 65560
    vector = root + 8
    target = vector + 4 + 4 * tables
    offsets = [target - (vector + 4 + 4 * i) for i in range(tables)]
    return (
        struct.pack("<I", root)
        + b"TFL3"
        + big
        + root_vtable
        + struct.pack("<iI", root - 65544, 4)
        + struct.pack(f"<I{tables}I", tables, *offsets)
        + struct.pack("<i", target - 8)
    )


def test_a_huge_vtable_shared_by_many_tables_costs_little_memory(tmp_path):
    """Each table once unpacked every field its vtable claims (a 262 KB tuple): 500
    references took 131 MB, the 100,000 a file may hold would take 26 GB."""
    path = tmp_path / "shared.tflite"
    path.write_bytes(_shared_vtable_tflite(500))
    tracemalloc.start()
    try:
        with pytest.raises(AntiphonError, match="no subgraphs"):
            tflite.read(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, f"reading a 68 KB file peaked at {peak / 2**20:.0f} MB"
