"""Datasets: built from logs, saved without pickle, IMPSY .npz files read safely."""

import io
import json
import os
import pickle
import stat
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

import bombs
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


def test_a_bad_value_or_file_costs_only_itself_and_is_named(tmp_path, perfs, monkeypatch):
    """One value overflowing float32 used to fail the whole build without naming its
    log; a log that cannot be opened, too."""
    monkeypatch.chdir(tmp_path)
    logs = tmp_path / "logs"
    for p in perfs:
        write_events(logs, p)
    odd = logs / "2020-01-01T00-00-01-4d-mdrnn.log"
    odd.write_text(
        "2020-01-01T00:00:01,interface,0.1,0.2,0.3\n"
        "2020-01-01T00:00:02,interface,0.1,1e39,0.3\n"
        "2020-01-01T00:00:03,interface,0.1,0.2,0.3\n"
    )
    gone = logs / "2020-01-01T00-00-02-4d-mdrnn.log"
    gone.symlink_to(tmp_path / "nowhere.log")
    collected = dataset.from_logs(logs, 4)
    assert len(collected.dataset.performances) == 4
    assert np.isfinite(collected.dataset.events).all()
    assert collected.notes() == [
        f"left out {gone.name}: cannot read the log (No such file or directory)",
        f"skipped rows in {odd.name}: 1 out of range",
    ]
    result = CliRunner().invoke(cli, ["dataset", "-D", "4"])
    assert result.exit_code == 0, result.output
    assert f"left out {gone.name}" in result.output
    assert f"skipped rows in {odd.name}: 1 out of range" in result.output


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


# -- files from strangers: bombs, lies and malformed parts -----------------------------------


def _peak_rss_loading(path) -> tuple[str, int]:
    """Load ``path`` in a fresh process: (the error, or "loaded"; peak RSS in MB). The
    peak is VmHWM: ru_maxrss would include this process's size when it forked."""
    script = (
        "import sys\nfrom antiphon.data import dataset\nfrom antiphon.errors import "
        "AntiphonError\ntry:\n    dataset.load(sys.argv[1]); print('loaded')\n"
        "except AntiphonError as e:\n    print(e)\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print(int(hwm.split()[1]) // 1024)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    message, peak = done.stdout.rsplit("\n", 2)[:2]
    return message, int(peak)


def test_a_deflate_bomb_is_refused_before_it_is_unpacked(tmp_path):
    path = bombs.dataset_bomb(tmp_path / "bomb.npz")  # 1 MB that unpacks to 1 GB
    assert path.stat().st_size < 2 * bombs.MB
    message, peak_mb = _peak_rss_loading(path)
    assert "events.npy unpacks to 1,024 MB" in message
    assert peak_mb < 200, message  # nothing was unpacked (NumPy and Python take ~40 MB)


def test_a_zip_that_understates_a_size_is_stopped_at_that_size(tmp_path):
    """``ZipFile.read`` would unpack the whole gigabyte before comparing sizes."""
    path = tmp_path / "training-dataset-4d.npz"
    bombs.write_zip(
        path,
        [bombs.Member("perfs.npy", bombs.npy_header((1,), "|O"), 1 << 30)],
        stated_sizes={"perfs.npy": 10_000},
    )
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("perfs.npy").file_size == 10_000
    message, peak_mb = _peak_rss_loading(path)
    assert "perfs.npy cannot be unpacked (Bad CRC-32" in message and peak_mb < 200


def test_an_array_header_promising_more_than_the_data_is_refused(tmp_path):
    path = tmp_path / "d.npz"
    info = {"format": "antiphon-dataset", "format_version": 1}
    np.savez(path, events=np.zeros((8, 4), np.float32), offsets=[0, 8], info=json.dumps(info))
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    header_end = parts["events.npy"].index(b"\n") + 1
    parts["events.npy"] = bombs.npy_header((30_000_000, 4)) + parts["events.npy"][header_end:]
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    with pytest.raises(AntiphonError, match=r"says \(30000000, 4\) float32 but holds 128 bytes"):
        dataset.load(path)


def test_a_pickled_array_over_its_limit_is_refused_before_unpickling(tmp_path):
    path = tmp_path / "training-dataset-4d.npz"
    bombs.write_zip(path, [bombs.Member("perfs.npy", bombs.npy_header((1,), "|O"), 100 << 20)])
    with pytest.raises(AntiphonError, match="pickled array of 100 MB"):
        dataset.load(path)


@pytest.mark.parametrize(
    "info, message",
    [
        (np.array([1, 2, 3]), "info should be a text"),
        (np.array("[1, 2]"), "info is not a JSON object"),
        (np.array("{not json"), "info is not a JSON object"),
        (np.array('{"format": "antiphon-dataset", "format_version": "1"}'), "format_version"),
    ],
    ids=["numbers", "a list", "not JSON", "a string version"],
)
def test_a_malformed_info_is_one_clear_message_in_the_cli(tmp_path, info, message):
    path = tmp_path / "d.npz"
    np.savez(path, events=np.zeros((8, 4), np.float32), offsets=[0, 8], info=info)
    with pytest.raises(AntiphonError, match=message):
        dataset.load(path)
    result = CliRunner().invoke(cli, ["data", "info", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "d.npz" in result.output and isinstance(result.exception, SystemExit)


def test_info_fields_of_the_wrong_type_fall_back_to_defaults(tmp_path, perfs):
    path = tmp_path / "d.npz"
    data = dataset.Dataset.from_performances(perfs)
    info = {
        "format": "antiphon-dataset",
        "format_version": 1,
        "names": [1, None, {}],
        "skipped_rows": ["x"],
    }
    np.savez(path, events=data.events, offsets=data.offsets, info=json.dumps(info))
    loaded = dataset.load(path)
    assert loaded.names == ["performance 1", "performance 2", "performance 3"]
    assert loaded.skipped == {}


@pytest.mark.parametrize("dimension", [1, 2000])
def test_a_dataset_of_an_impossible_dimension_is_refused(tmp_path, dimension):
    path = tmp_path / "d.npz"
    info = json.dumps({"format": "antiphon-dataset", "format_version": 1})
    np.savez(path, events=np.zeros((3, dimension), np.float32), offsets=[0, 3], info=info)
    with pytest.raises(AntiphonError, match=f"has dimension {dimension}"):
        dataset.load(path)


def test_files_antiphon_writes_are_readable_by_everyone(tmp_path, perfs):
    """Docker: antiphon runs as root, the musician reads the bind-mounted workspace."""
    path = dataset.save(tmp_path / "d.npz", dataset.Dataset.from_performances(perfs))
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
