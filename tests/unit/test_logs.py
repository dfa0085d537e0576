"""Performance logs: IMPSY's format, written without blocking, read without tracebacks."""

import json
import os
import stat
import subprocess
import sys
import textwrap
from datetime import datetime

import numpy as np
import pytest

from antiphon.data import logs
from waiting import wait_until


def test_writer_names_the_file_and_writes_impsy_rows(tmp_path):
    started = datetime(2024, 3, 1, 12, 37, 38)
    with logs.LogWriter(tmp_path, 4, started=started) as writer:
        writer.write(
            "interface", [0.3359375, 0.296875, 0.5078125], datetime(2024, 3, 1, 12, 37, 38, 109979)
        )
        writer.write("rnn", np.array([0.1, 0.2, 0.3], np.float32), datetime(2024, 3, 1, 12, 37, 39))
    assert writer.path.name == "2024-03-01T12-37-38-4d-mdrnn.log"
    assert writer.path.read_text().splitlines() == [
        "2024-03-01T12:37:38.109979,interface,0.3359375,0.296875,0.5078125",
        "2024-03-01T12:37:39,rnn,0.10000000149011612,0.20000000298023224,0.30000001192092896",
    ]


def test_two_runs_in_the_same_second_get_two_files(tmp_path):
    started = datetime(2024, 3, 1, 12, 0, 0)
    with (
        logs.LogWriter(tmp_path, 3, started=started) as a,
        logs.LogWriter(tmp_path, 3, started=started) as b,
    ):
        a.write("interface", [0.1, 0.2])
        b.write("interface", [0.3, 0.4])
    assert a.path != b.path and a.path.exists() and b.path.exists()
    # whichever file is created second gets the counter, keeping IMPSY's ending
    assert {a.path.name, b.path.name} == {
        "2024-03-01T12-00-00-3d-mdrnn.log",
        "2024-03-01T12-00-00-2-3d-mdrnn.log",
    }
    assert logs.dimension_from_name(a.path) == logs.dimension_from_name(b.path) == 3


def test_writer_rejects_wrong_length_and_use_after_close(tmp_path):
    writer = logs.LogWriter(tmp_path, 4)
    with pytest.raises(ValueError, match="takes 3 values"):
        writer.write("interface", [0.1, 0.2])
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write("interface", [0.1, 0.2, 0.3])


def written(path) -> str:
    return path.read_text() if path.exists() else ""


def test_each_line_reaches_the_file_while_the_log_is_open(tmp_path):
    with logs.LogWriter(tmp_path, 3) as writer:
        writer.write("interface", [0.5, 0.25])
        wait_until(lambda: "0.25" in written(writer.path), what="the line in the file")
        assert writer.path.read_text().endswith(",interface,0.5,0.25\n")


def test_a_killed_process_loses_no_written_line(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, time
        from antiphon.data.logs import LogWriter
        w = LogWriter({str(tmp_path)!r}, 3)
        for i in range(200):
            w.write("interface", [i / 200, 0.5])
        while w.written < 200:
            time.sleep(0.001)
        print(w.path, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == -9
    log = logs.read_log(result.stdout.strip())
    assert len(log.times) == 200 and not log.skipped


def test_reader_accepts_impsy_variants_and_counts_bad_rows(tmp_path):
    path = tmp_path / "2019-01-17T12-37-38-4d-mdrnn.log"
    path.write_text(
        textwrap.dedent("""\
        # IMPSY iOS app log
        # device: iPad
        2019-01-17T12:37:38.109979,interface,0.3359375,0.296875,0.5078125
        2019-01-17T12:37:39,interface,0.1,0.2,0.3
        2019-01-17T12:37:39.5,rnn,0.4,0.5,0.6
        2019-01-17T12:37:40.000001,interface,0.1,0.2
        not a date,interface,0.1,0.2,0.3
        2019-01-17T12:37:41,interface,0.1,zero,0.3
        2019-01-17T12:37:41,interface,0.1,nan,0.3
        \x00\x01garbage

        2019-01-17T12:37:42.25,interface,1.0,0.0,0.5
    """)
    )
    log = logs.read_log(path)
    assert log.dimension == 4
    assert log.sources == ["interface", "interface", "rnn", "interface"]
    assert dict(log.skipped) == {"wrong length": 2, "unreadable": 2, "not finite": 1}
    events = log.events()
    np.testing.assert_allclose(events[:, 0], [1 - 0.109979, 3.25], rtol=1e-6)
    np.testing.assert_allclose(events[-1, 1:], [1.0, 0.0, 0.5])
    assert log.events("rnn").shape == (0, 4)
    assert log.duration == pytest.approx(4.25 - 0.109979)


def test_reader_infers_the_dimension_without_a_standard_name(tmp_path):
    path = tmp_path / "performance.log"
    path.write_text(
        "2020-01-01T00:00:00,interface,0.1,0.2\n2020-01-01T00:00:01,interface,0.3,0.4\n"
    )
    log = logs.read_log(path)
    assert log.dimension == 3 and log.values.shape == (2, 2)


def test_reader_on_an_empty_or_missing_file(tmp_path):
    empty = tmp_path / "2020-01-01T00-00-00-9d-mdrnn.log"
    empty.write_text("")
    log = logs.read_log(empty)
    assert log.values.shape == (0, 8) and log.events().shape == (0, 9)
    with pytest.raises(Exception, match="cannot read"):
        logs.read_log(tmp_path / "missing.log")


# -- the writer against what happens to files: deleted, a full disk ------------------------


def test_no_file_is_created_until_the_first_event(tmp_path):
    with logs.LogWriter(tmp_path, 3) as idle:
        pass
    assert not idle.path.exists() and list(tmp_path.iterdir()) == []
    with logs.LogWriter(tmp_path, 3) as writer:
        writer.write("interface", [0.5, 0.25])
    assert writer.path.read_text().endswith(",interface,0.5,0.25\n")


def test_a_log_deleted_while_recorded_goes_on_in_a_new_file(tmp_path):
    heard: list[str] = []
    with logs.LogWriter(tmp_path, 3, report=heard.append) as writer:
        writer.write("interface", [0.1, 0.1])
        wait_until(lambda: writer.written == 1)
        first = writer.path
        first.unlink()  # the Logs page or a shell, while antiphon records
        for i in range(5):
            writer.write("interface", [0.2, i / 10])
        wait_until(lambda: writer.written == 6)
        second = writer.path
    assert second != first and not first.exists()
    assert logs.read_log(second).values[:, 1].tolist() == pytest.approx([0, 0.1, 0.2, 0.3, 0.4])
    assert heard == [
        f"the log {first.name} was deleted while it was recorded; recording goes on in "
        f"{second.name}"
    ]
    assert writer.dropped == 0 and writer.problem is None


def test_logs_are_readable_by_everyone_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        with logs.LogWriter(tmp_path, 3) as writer:
            writer.write("interface", [0.1, 0.1])
    finally:
        os.umask(old)
    assert stat.S_IMODE(writer.path.stat().st_mode) == 0o644


def test_write_errors_lose_only_their_events_and_recording_resumes(tmp_path):
    """A file size limit (RLIMIT_FSIZE: EFBIG, as a full disk gives ENOSPC) in a child
    process: each write past it fails, the thread lives on, the file keeps whole lines
    only, close() returns, and writing works again once there is room."""
    script = textwrap.dedent(f"""
        import json, resource, time
        from antiphon.data.logs import LogWriter
        heard = []
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))
        w = LogWriter({str(tmp_path)!r}, 3, report=heard.append)
        def until(condition):
            deadline = time.monotonic() + 20
            while not condition() and time.monotonic() < deadline:
                time.sleep(0.005)
        for i in range(100):  # about 48 bytes a line: the 21st does not fit
            w.write("interface", [i / 100, 0.5])
            until(lambda: w.written + w.dropped > i)
        failing = w.problem
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        w.write("interface", [0.75, 0.75])
        until(lambda: w.written + w.dropped == 101)
        started = time.monotonic()
        w.close()
        print(json.dumps({{"path": str(w.path), "failing": failing, "after": w.problem,
            "written": w.written, "dropped": w.dropped, "heard": heard,
            "close": time.monotonic() - started}}))
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert "File too large" in outcome["failing"] and outcome["after"] is None
    assert outcome["written"] + outcome["dropped"] == 101 and outcome["dropped"] >= 79
    log = logs.read_log(outcome["path"])
    assert not log.skipped  # no half line where a write failed
    assert len(log.times) == outcome["written"] and log.values[-1].tolist() == [0.75, 0.75]
    assert outcome["heard"][0] == outcome["failing"]
    assert outcome["heard"][1].endswith(f"({outcome['dropped']} events were lost)")
    assert outcome["close"] < logs.CLOSE_TIMEOUT


# -- reading logs from anywhere -------------------------------------------------------------


@pytest.mark.parametrize("dimension", ["0", "1", "99999999999", "1025"])
def test_a_name_with_an_impossible_dimension_is_read_by_its_rows(tmp_path, dimension):
    path = tmp_path / f"2024-01-01T00-00-00-{dimension}d-mdrnn.log"
    path.write_text(
        "2024-01-01T00:00:00,interface,0.1,0.2\n2024-01-01T00:00:01,interface,0.3,0.4\n"
    )
    assert logs.dimension_from_name(path) is None
    assert logs.read_log(path).values.shape == (2, 2)


def test_values_beyond_float32_are_skipped_not_turned_into_infinity(tmp_path):
    path = tmp_path / "2024-01-01T00-00-00-3d-mdrnn.log"
    path.write_text(
        "2024-01-01T00:00:00,interface,0.1,0.2\n"
        "2024-01-01T00:00:01,interface,1e39,0.4\n"
        "2024-01-01T00:00:02,interface,0.5,-3.4e38\n"
    )
    log = logs.read_log(path)
    assert log.skipped == {"out of range": 1}
    np.testing.assert_allclose(log.values, [[0.1, 0.2], [0.5, -3.4e38]], rtol=1e-6)


def test_an_overlong_line_is_skipped_without_reading_it_whole(tmp_path):
    path = tmp_path / "2024-01-01T00-00-00-3d-mdrnn.log"
    path.write_text(
        "2024-01-01T00:00:00,interface,0.1,0.2\n"
        + "9" * (3 * logs.MAX_LINE)
        + "\n2024-01-01T00:00:01,interface,0.3,0.4\n"
    )
    log = logs.read_log(path)
    assert log.skipped == {"too long": 1} and len(log.times) == 2


def test_a_logs_name_says_where_it_came_from_and_keeps_impsys_ending(tmp_path):
    started = datetime(2024, 3, 1, 12, 0, 0)
    path = logs.write_events(tmp_path, np.full((3, 3), 0.5, np.float32), origin="synthetic")
    assert path.name.endswith("-synthetic-3d-mdrnn.log")  # IMPSY collects *-3d-mdrnn.log
    log = logs.read_log(path)
    assert log.origin == "synthetic" and not log.played and len(log.times) == 3
    assert logs.dimension_from_name(path) == 3
    with logs.LogWriter(tmp_path, 3, started=started, origin="browser") as a:
        a.write("interface", [0.1, 0.2])
    with logs.LogWriter(tmp_path, 3, started=started, origin="browser") as b:
        b.write("interface", [0.1, 0.2])
    assert a.path.name == "2024-03-01T12-00-00-browser-3d-mdrnn.log"
    assert b.path.name == "2024-03-01T12-00-00-2-browser-3d-mdrnn.log"
    assert logs.recording_order(a.path) < logs.recording_order(b.path)
    assert logs.read_log(b.path).describe_origin() == "played in the browser"
    old = tmp_path / "2019-01-17T12-37-38-3d-mdrnn.log"  # IMPSY's, or antiphon's before
    old.write_text("2019-01-17T12:37:38.1,interface,0.1,0.2\n")
    assert logs.read_log(old).played and logs.origin_from_name(old) is None
    assert logs.origin_of("midi X-TOUCH") == "midi" and logs.origin_of("command port") is None
    with pytest.raises(ValueError, match="unknown log origin"):
        logs.log_name(started, 3, "made-up")


def test_a_log_created_before_its_origin_was_known_is_renamed_once(tmp_path):
    with logs.LogWriter(tmp_path, 3, started=datetime(2024, 3, 1, 12, 0, 0)) as writer:
        writer.write("rnn", [0.1, 0.2])  # the model played first (battle mode)
        wait_until(lambda: writer.path.exists())
        first = writer.path
        writer.origin = "osc"  # then the performer, over OSC
        writer.write("interface", [0.3, 0.4])
    assert writer.path.name == "2024-03-01T12-00-00-osc-3d-mdrnn.log" and not first.exists()
    assert logs.read_log(writer.path).sources == ["rnn", "interface"]
