"""The procedural performer plays like a person: gestures, pauses, human timing."""

import numpy as np
import pytest

from antiphon.data import performer
from antiphon.data.dataset import from_logs
from antiphon.data.performer import Performer
from antiphon.errors import AntiphonError


@pytest.fixture(scope="module")
def knobs():
    return Performer(9, seed=3).performance(300)


@pytest.fixture(scope="module")
def sensor():
    return Performer(4, seed=3).performance(300)


def _gaps(events):
    return events[1:, 0]  # the first row's dt is from the start of the recording


def test_knobs_play_like_a_midi_controller(knobs):
    dt = _gaps(knobs)
    assert 0.010 < np.median(dt) < 0.030  # human-speed streams of messages
    assert 0.05 < np.mean(dt < 0.001) < 0.35  # several knobs turned at once
    assert np.sum(dt > 1.0) >= 10 and dt.max() < 60  # pauses, some long
    values = knobs[:, 1:]
    np.testing.assert_allclose(values * 127, np.round(values * 127), atol=1e-4)  # 7-bit values
    changed = np.count_nonzero(np.diff(values, axis=0), axis=1)
    assert changed.max() == 1  # one control per message


def test_a_sensor_streams_every_control_at_once(sensor):
    dt = _gaps(sensor)
    assert 0.012 < np.median(dt) < 0.030 and np.mean(dt < 0.001) < 0.05
    assert np.sum(dt > 1.0) >= 10  # the hand lifts off
    changed = np.count_nonzero(np.diff(sensor[:, 1:], axis=0), axis=1)
    assert np.mean(changed >= 2) > 0.5


@pytest.mark.parametrize("fixture", ["knobs", "sensor"])
def test_every_control_sweeps_its_whole_range_and_some_move_together(request, fixture):
    events = request.getfixturevalue(fixture)
    values = events[:, 1:]
    assert np.all(values.min(axis=0) < 0.05) and np.all(values.max(axis=0) > 0.95)
    assert np.all(values.std(axis=0) > 0.2)  # not parked at one end
    # in a good share of one-second stretches, two or more controls move
    t = np.cumsum(events[:, 0])
    bins = np.floor(t).astype(int)
    moving = np.diff(values, axis=0) != 0
    together = [moving[bins[1:] == b].any(axis=0).sum() >= 2 for b in np.unique(bins[1:])]
    assert np.mean(together) > 0.2


def test_sensor_controls_are_correlated_through_shared_motions():
    values = Performer(9, style="sensor", seed=2).performance(120)[:, 1:]
    moves = np.diff(values, axis=0)
    correlation = np.corrcoef(moves.T)[np.triu_indices(8, 1)]
    assert np.max(np.abs(correlation)) > 0.6  # several controls follow one hand
    assert np.min(np.percentile(values, 98, axis=0) - np.percentile(values, 2, axis=0)) > 0.5


def test_a_seed_makes_the_same_performance():
    a = Performer(5, seed=9).performance(30)
    b = Performer(5, seed=9).performance(30)
    c = Performer(5, seed=10).performance(30)
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_any_dimension_works():
    events = Performer(2, seed=1).performance(20)
    assert events.shape[1] == 2 and len(events) > 200
    wide = Performer(17, seed=1).performance(20)
    assert wide.shape[1] == 17 and wide.dtype == np.float32


def test_synthetic_logs_become_a_dataset(tmp_path):
    paths = performer.write_logs(tmp_path, 4, 3, 0.5, seed=4)
    assert len(paths) == 3 and all(p.name.endswith("-synthetic-4d-mdrnn.log") for p in paths)
    assert paths == sorted(paths)  # dated one after another
    expected = Performer(4, seed=4)
    with pytest.raises(AntiphonError, match="all synthetic or generated logs.*--synthetic"):
        from_logs(tmp_path, 4)  # no one played them: not without asking
    collected = from_logs(tmp_path, 4, made=True)
    for got in collected.dataset.performances:
        want = expected.performance(30)[1:]  # the log's first row has no dt
        np.testing.assert_allclose(got[:, 1:], want[:, 1:], atol=1e-6)
        np.testing.assert_allclose(got[:, 0], want[:, 0], atol=2e-6)
