"""Datasets: built from logs, saved without pickle, IMPSY .npz files read safely."""

import io
import os
import pickle
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from antiphon.cli import cli
from antiphon.data import dataset, impsy_npz
from antiphon.data.logs import write_events
from antiphon.errors import AntiphonError


def _performance(rng, n, d):
    events = rng.random((n, d)).astype(np.float32)
    events[:, 0] = rng.exponential(0.02, n)
    return events


@pytest.fixture
def perfs():
    rng = np.random.default_rng(0)
    return [_performance(rng, n, 4) for n in (120, 40, 300)]


def test_from_logs_collects_one_dimension_and_summarises(tmp_path, perfs):
    logs = tmp_path / "logs"
    for p in perfs:
        write_events(logs, p)
    (logs / "2020-01-01T00-00-00-9d-mdrnn.log").write_text(
        "2020-01-01T00:00:00,interface," + ",".join(["0.5"] * 8) + "\n"
    )
    bad = logs / "2020-01-01T00-00-01-4d-mdrnn.log"  # one good row, one bad, one rnn row
    bad.write_text(
        "2020-01-01T00:00:01,interface,0.1,0.2,0.3\n"
        "2020-01-01T00:00:02,interface,0.1,0.2\n"
        "2020-01-01T00:00:03,rnn,0.1,0.2,0.3\n"
    )
    collected = dataset.from_logs(logs, 4)
    data = collected.dataset
    assert collected.logs == 4 and collected.empty == [bad.name]
    assert data.dimension == 4 and len(data.performances) == 3
    # every row but each log's first (no dt to measure), in time order
    for got, want in zip(data.performances, perfs, strict=True):
        np.testing.assert_allclose(got[:, 1:], want[1:, 1:], rtol=1e-6)
        np.testing.assert_allclose(got[:, 0], want[1:, 0], atol=2e-6)
    summary = data.summary()
    assert summary.events == 457 and summary.performances == 3 and summary.trainable == 2
    assert summary.skipped_rows == {"wrong length": 1}
    assert summary.seconds == pytest.approx(data.events[:, 0].sum(), rel=1e-5)
    assert summary.dt_percentiles["p50"] == pytest.approx(np.median(data.events[:, 0]), rel=1e-5)
    text = "\n".join(summary.lines())
    assert "1 shorter than 52 events" in text and "rows skipped 1 (1 wrong length)" in text


def test_from_logs_errors_say_what_to_do(tmp_path):
    with pytest.raises(AntiphonError, match="no log folder"):
        dataset.from_logs(tmp_path / "missing", 4)
    (tmp_path / "logs").mkdir()
    with pytest.raises(AntiphonError, match="antiphon data synth"):
        dataset.from_logs(tmp_path / "logs", 4)
    (tmp_path / "logs" / "2020-01-01T00-00-00-9d-mdrnn.log").write_text("")
    with pytest.raises(
        AntiphonError, match=r"no 4d logs .* dimension 9d \(1 files\).*--dimension 9"
    ):
        dataset.from_logs(tmp_path / "logs", 4)


def test_dataset_command_on_an_empty_or_mismatched_folder_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["dataset", "-D", "4"])
    assert result.exit_code == 1 and "no log folder logs" in result.output
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "2020-01-01T00-00-00-9d-mdrnn.log").write_text("")
    result = runner.invoke(cli, ["dataset", "-D", "4"])
    assert result.exit_code == 1 and "--dimension 9" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "datasets").exists()


def test_dataset_command_writes_both_formats(tmp_path, perfs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for p in perfs:
        write_events(tmp_path / "logs", p)
    runner = CliRunner()
    result = runner.invoke(cli, ["dataset"])  # the only dimension present
    assert result.exit_code == 0, result.output
    assert "performances 3" in result.output and "events       457" in result.output
    own = dataset.load(tmp_path / "datasets" / "training-dataset-4d.npz")
    with np.load(tmp_path / "datasets" / "training-dataset-4d.npz", allow_pickle=False) as raw:
        assert set(raw.files) == {"events", "offsets", "info"}  # loads without pickle
    result = runner.invoke(
        cli, ["dataset", "-D", "4", "--format", "impsy", "--filename", "impsy.npz"]
    )
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "datasets" / "impsy.npz", allow_pickle=True) as raw:
        perfs_array = raw["perfs"]  # what IMPSY's train reads
    assert perfs_array.dtype == object and len(perfs_array) == 3
    theirs = dataset.load(tmp_path / "datasets" / "impsy.npz")
    np.testing.assert_array_equal(theirs.events, own.events)
    np.testing.assert_array_equal(theirs.offsets, own.offsets)


def test_antiphon_format_round_trip(tmp_path, perfs):
    data = dataset.Dataset.from_performances(perfs, ["a", "b", "c"], {"unreadable": 2})
    path = dataset.save(tmp_path / "d.npz", data)
    back = dataset.load(path)
    np.testing.assert_array_equal(back.events, data.events)
    np.testing.assert_array_equal(back.offsets, [0, 120, 160, 460])
    assert back.names == ["a", "b", "c"] and back.skipped == {"unreadable": 2}


@pytest.mark.parametrize("lengths", [(30, 50, 10), (40, 40)], ids=["1-D object", "N-D object"])
def test_impsy_files_of_both_shapes_load(tmp_path, lengths):
    rng = np.random.default_rng(1)
    performances = [_performance(rng, n, 3) for n in lengths]
    path = tmp_path / "training-dataset-3d.npz"
    np.savez_compressed(path, perfs=np.array(performances, dtype=object))  # as IMPSY does
    with np.load(path, allow_pickle=True) as raw:
        assert raw["perfs"].ndim == (1 if len(set(lengths)) > 1 else 3)
    data = dataset.load(path)
    assert [len(p) for p in data.performances] == list(lengths)
    np.testing.assert_array_equal(data.events, np.concatenate(performances))


def _npz_with_pickle(path, payload: bytes) -> None:
    """An .npz whose perfs.npy is an object-array header followed by ``payload``."""
    npy = io.BytesIO()
    np.lib.format.write_array(npy, np.empty(1, dtype=object), allow_pickle=True)
    header_end = npy.getvalue().index(b"\n") + 1
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("perfs.npy", npy.getvalue()[:header_end] + payload)


class _RunsAShellCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_impsy_file_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "training-dataset-4d.npz"
    _npz_with_pickle(path, pickle.dumps(np.array([_RunsAShellCommand(marker)], dtype=object)))
    with pytest.raises(impsy_npz.UnsafeDatasetError, match=r"refusing to load .*system"):
        dataset.load(path)
    assert not marker.exists()
    # the same file through the command line: a message, no traceback, nothing run
    result = CliRunner().invoke(cli, ["data", "info", str(path)])
    assert result.exit_code == 1 and "refusing to load" in result.output
    assert not marker.exists()


def test_only_latin1_byte_decoding_is_allowed(tmp_path):
    path = tmp_path / "d.npz"
    payload = pickle.dumps(np.array([b"x"], dtype=object), protocol=2)  # uses _codecs.encode
    assert b"_codecs" in payload and b"latin1" in payload
    _npz_with_pickle(path, payload.replace(b"latin1", b"rot_13"))
    with pytest.raises(impsy_npz.UnsafeDatasetError, match="only latin-1"):
        impsy_npz.read(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not a zip at all", "not a readable .npz"),
        (None, "neither an antiphon nor an IMPSY dataset"),
    ],
)
def test_corrupt_dataset_files_give_one_clear_error(tmp_path, content, message):
    path = tmp_path / "d.npz"
    if content is None:
        np.savez(path, something=np.zeros(3))
    else:
        path.write_bytes(content)
    with pytest.raises(AntiphonError, match=message):
        dataset.load(path)


def test_truncated_antiphon_dataset_is_an_error(tmp_path, perfs):
    path = dataset.save(tmp_path / "d.npz", dataset.Dataset.from_performances(perfs))
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(AntiphonError, match="not a readable"):
        dataset.load(path)
