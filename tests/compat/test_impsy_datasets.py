"""IMPSY's datasets load safely: the shipped ones summarise as documented and split as
IMPSY does, pickles of every protocol load, and no pickle runs anything."""

import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from antiphon.data import dataset, impsy_npz
from antiphon.errors import AntiphonError

DATASETS = {
    "training-dataset-4d-12ksmall.npz": (4, 4, 12_074, 11_874),
    "training-dataset-9d.npz": (9, 46, 94_603, 92_873),
}


@pytest.mark.parametrize("name", DATASETS)
def test_impsy_datasets_load_and_summarise(impsy_dir, name):
    dimension, performances, events, _ = DATASETS[name]
    data = dataset.load(impsy_dir / "datasets" / name)
    summary = data.summary()
    assert (summary.dimension, summary.performances, summary.events) == (
        dimension,
        performances,
        events,
    )
    assert 0.017 <= summary.dt_percentiles["p50"] <= 0.023  # median dt 17-23 ms
    with np.load(impsy_dir / "datasets" / name, allow_pickle=True) as raw:
        reference = np.concatenate(list(raw["perfs"]))  # numpy's own (unrestricted) loader
    np.testing.assert_array_equal(data.events, reference)


def test_the_9d_set_has_simultaneous_events_and_long_pauses(impsy_dir):
    summary = dataset.load(impsy_dir / "datasets" / "training-dataset-9d.npz").summary()
    assert 0.12 < summary.simultaneous < 0.18  # about 15 % under 1 ms
    assert summary.dt_percentiles["p99"] > 0.5


@pytest.mark.parametrize("name", DATASETS)
def test_impsy_split_has_impsys_window_counts(impsy_dir, name):
    from antiphon.training import windows  # plain NumPy: runs without torch

    *_, total = DATASETS[name]
    split = windows.split(dataset.load(impsy_dir / "datasets" / name), "impsy")
    train = sum(len(run) - windows.WINDOW for run in split.train)
    assert train + len(split.validation) == total
    assert train == int(total * 0.9)


def test_impsy_datasets_round_trip_through_impsys_format(impsy_dir, tmp_path):
    data = dataset.load(impsy_dir / "datasets" / "training-dataset-4d-12ksmall.npz")
    path = dataset.save(tmp_path / "again.npz", data, "impsy")
    performances = impsy_npz.read(path)
    assert [len(p) for p in performances] == [len(p) for p in data.performances]
    np.testing.assert_array_equal(np.concatenate(performances), data.events)


# -- pickles of every protocol, and pickles that must never load ----------------------------


def _write_npz(path: Path, perfs_pickle: bytes, header_of: np.ndarray) -> Path:
    """An IMPSY dataset whose perfs.npy holds ``perfs_pickle`` after ``header_of``'s header."""
    npy = io.BytesIO()
    np.lib.format.write_array_header_1_0(npy, np.lib.format.header_data_from_array_1_0(header_of))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("perfs.npy", npy.getvalue() + perfs_pickle)
    return path


def _performances() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.random((n, 4)).astype(np.float32) for n in (60, 0, 75)]  # one empty log


@pytest.mark.parametrize("numpy_name", ["numpy._core", "numpy.core"], ids=["NumPy 2", "NumPy 1"])
@pytest.mark.parametrize("protocol", range(6))
def test_object_arrays_pickled_with_every_protocol_load(tmp_path, protocol, numpy_name):
    """Protocols 0-2 name ``__builtin__.bytes`` (the empty log) and ``_codecs.encode``
    as IMPSY's 2019 datasets do; protocol 5 rebuilds arrays with ``_frombuffer``. NumPy
    1 wrote protocol 3 at most (np.save's), so its module names are tried up to 3 (in
    protocols 4-5 a renamed module would need the pickle's frames rebuilt)."""
    if numpy_name == "numpy.core" and protocol > 3:
        pytest.skip("NumPy 1 never wrote protocols 4-5 into .npy files")
    performances = _performances()
    perfs = np.empty(len(performances), dtype=object)
    perfs[:] = performances
    data = pickle.dumps(perfs, protocol=protocol)
    if protocol < 3:
        assert b"__builtin__" in data and b"_codecs" in data
    data = data.replace(b"numpy._core", numpy_name.encode())
    path = _write_npz(tmp_path / "training-dataset-4d.npz", data, perfs)
    loaded = impsy_npz.read(path)
    assert [p.shape for p in loaded] == [(60, 4), (0, 4), (75, 4)]
    for ours, theirs in zip(loaded, performances, strict=True):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("protocol", range(6))
def test_equal_length_performances_pickled_with_every_protocol_load(tmp_path, protocol):
    """Performances of one length make NumPy build a (P, N, D) array of Python floats."""
    performances = [np.full((50, 3), 0.25 * i, np.float32) for i in range(3)]
    perfs = np.array(performances, dtype=object)
    assert perfs.shape == (3, 50, 3)
    path = _write_npz(tmp_path / "d.npz", pickle.dumps(perfs, protocol=protocol), perfs)
    assert [p.tolist() for p in impsy_npz.read(path)] == [p.tolist() for p in performances]


class _Calls:
    """Pickles as a call of ``function(*args)``: what a hostile dataset contains."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def _hostile_pickles(marker: Path) -> dict[str, bytes]:
    """Ways to spell running a command, in every protocol and in Python 2's names."""
    command = f"touch {marker}"
    spelled = {}
    for protocol in range(6):
        for function in (os.system, eval, subprocess.getoutput):
            perfs = np.array([_Calls(function, command)], dtype=object)
            spelled[f"{function.__module__}.{function.__name__} p{protocol}"] = pickle.dumps(
                perfs, protocol=protocol
            )
    text = command.encode()
    for module, name in [
        (b"os", b"system"),
        (b"posix", b"system"),
        (b"nt", b"system"),
        (b"__builtin__", b"eval"),
        (b"__builtin__", b"getattr"),
        (b"copy_reg", b"_reconstructor"),
        (b"subprocess", b"check_output"),
        (b"numpy", b"load"),
        (b"numpy.testing._private.utils", b"runstring"),
    ]:  # Python 2's protocol 0 text, as a 2019 file would spell it
        spelled[f"{module.decode()}.{name.decode()} py2"] = (
            b"c" + module + b"\n" + name + b"\n(S'" + text + b"'\ntR."
        )
    return spelled


def test_no_spelling_of_a_command_in_a_pickle_runs(tmp_path):
    marker = tmp_path / "pwned"
    for spelling, payload in _hostile_pickles(marker).items():
        path = _write_npz(tmp_path / "d.npz", payload, np.empty(1, dtype=object))
        with pytest.raises(impsy_npz.UnsafeDatasetError, match="refusing to load"):
            impsy_npz.read(path)
        assert not marker.exists(), spelling
        path.unlink()


def _reduce_call(function: bytes, args: bytes) -> bytes:
    """Protocol 2: ``function(*args)`` where function is a text GLOBAL."""
    return b"\x80\x02c" + function + b"\n(" + args + b"tR."


@pytest.mark.parametrize(
    "payload, message",
    [
        # numpy.ndarray called directly would allocate whatever shape it is given
        (_reduce_call(b"numpy\nndarray", b"J\x00\xca\x9a;\x85U\x01O"), "numpy.ndarray"),
        (_reduce_call(b"__builtin__\nbytes", b"J\x00\xca\x9a;"), "bytes"),
        (_reduce_call(b"_codecs\nencode", b"X\x01\x00\x00\x00aX\x06\x00\x00\x00rot_13"), "latin-1"),
    ],
    ids=["ndarray(10**9)", "bytes(10**9)", "encode(rot_13)"],
)
def test_numpys_own_names_refuse_arguments_numpy_never_passes(tmp_path, payload, message):
    path = _write_npz(tmp_path / "d.npz", payload, np.empty(1, dtype=object))
    with pytest.raises(impsy_npz.UnsafeDatasetError, match=message):
        impsy_npz.read(path)


def _state_swapped(perfs: np.ndarray, old: bytes, new: bytes) -> bytes:
    data = pickle.dumps(perfs, protocol=2)
    assert data.count(old) == 1
    return data.replace(old, new)


def test_an_object_array_shorter_than_its_shape_is_refused_not_a_crash(tmp_path):
    """NumPy itself crashes the interpreter restoring such an array, so this runs in a
    child: a regression would show as a signal, not take the test run down."""
    perfs = np.empty(2, dtype=object)
    perfs[:] = [np.zeros((3, 2), np.float32), np.ones((3, 2), np.float32)]
    # the outer array's shape (2,) becomes (9,): BININT1 2 -> BININT1 9, before its list
    data = pickle.dumps(perfs, protocol=2)
    at = data.index(b"K\x01K\x02\x85")  # version 1, shape (2,)
    data = data[:at] + b"K\x01K\x09\x85" + data[at + 5 :]
    path = _write_npz(tmp_path / "d.npz", data, perfs)
    script = (
        "import sys\nfrom antiphon.data import impsy_npz\n"
        "try:\n    impsy_npz.read(sys.argv[1])\n"
        "except impsy_npz.UnsafeDatasetError as e:\n    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "does not match its shape" in done.stdout


def test_a_dtype_with_altered_internals_is_refused(tmp_path):
    perfs = np.empty(1, dtype=object)
    perfs[0] = np.zeros((3, 2), np.float32)
    # float32's pickled state ends in its flags, 0; 63 would mark it as holding objects
    data = _state_swapped(perfs, b"\xffK\x00tq\x1ab", b"\xffK?tq\x1ab")
    path = _write_npz(tmp_path / "d.npz", data, perfs)
    with pytest.raises(impsy_npz.UnsafeDatasetError, match="altered internals"):
        impsy_npz.read(path)


def test_one_array_named_a_thousand_times_is_refused(tmp_path):
    """The pickle memo lets 4 MB of floats be listed 100 times for 2 bytes each: a
    gigabyte once copied out."""
    big = np.zeros(1 << 20, np.float32).reshape(-1, 4)
    perfs = np.empty(100, dtype=object)
    for i in range(100):
        perfs[i] = big
    path = _write_npz(tmp_path / "d.npz", pickle.dumps(perfs, protocol=3), perfs)
    assert path.stat().st_size < 1 << 20
    with pytest.raises(AntiphonError, match="antiphon reads at most"):
        impsy_npz.read(path)
