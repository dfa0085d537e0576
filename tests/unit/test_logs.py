"""Performance logs: IMPSY's format, written without blocking, read without tracebacks."""

import subprocess
import sys
import textwrap
import time
from datetime import datetime

import numpy as np
import pytest

from antiphon.data import logs


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
    assert b.path.name == "2024-03-01T12-00-00-2-3d-mdrnn.log"  # still IMPSY's ending
    assert logs.dimension_from_name(b.path) == 3


def test_writer_rejects_wrong_length_and_use_after_close(tmp_path):
    writer = logs.LogWriter(tmp_path, 4)
    with pytest.raises(ValueError, match="takes 3 values"):
        writer.write("interface", [0.1, 0.2])
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write("interface", [0.1, 0.2, 0.3])


def test_each_line_reaches_the_file_while_the_log_is_open(tmp_path):
    with logs.LogWriter(tmp_path, 3) as writer:
        writer.write("interface", [0.5, 0.25])
        deadline = time.monotonic() + 5
        while "0.25" not in writer.path.read_text() and time.monotonic() < deadline:
            time.sleep(0.01)
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
