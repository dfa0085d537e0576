"""Training windows: IMPSY's split reproduced exactly; antiphon's split by performance."""

import numpy as np
import pytest

from antiphon.data.dataset import Dataset
from antiphon.training import windows
from antiphon.training.windows import WINDOW


def _dataset(lengths, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return Dataset.from_performances([rng.random((n, d)).astype(np.float32) for n in lengths])


def _impsy_windows(perfs):
    """IMPSY's recipe written out naively: every 51-event window of every performance
    longer than 51 events, x10, in order; the last 10 % validate."""
    slices = [
        p[i : i + WINDOW + 1] for p in perfs if len(p) > WINDOW + 1 for i in range(len(p) - WINDOW)
    ]
    x = np.array(slices) * 10
    cut = int(len(x) * 0.9)
    return x[:cut], x[cut:]


def test_impsy_split_matches_impsy_windows_exactly():
    data = _dataset([300, 51, 80, 52, 400, 200])
    train_ref, val_ref = _impsy_windows(data.performances)
    split = windows.split(data, "impsy")
    np.testing.assert_allclose(split.validation, val_ref, rtol=1e-6)
    train = windows.all_windows(split.train, stride=1)
    np.testing.assert_allclose(train, train_ref, rtol=1e-6)


def test_split_by_performance_holds_out_whole_performances():
    data = _dataset([100 + i for i in range(25)])
    split = windows.split(data, "performances")
    held = [9, 19]  # every 10th performance
    assert len(split.train) == 23
    expected = windows.all_windows([data.performances[i] * 10 for i in held], WINDOW)
    np.testing.assert_allclose(split.validation, expected, rtol=1e-6)
    train_rows = {row.tobytes() for run in split.train for row in run}
    assert not any(row.tobytes() in train_rows for w in split.validation for row in w)
    # with few performances, the one nearest 10 % of the events
    few = windows.split(_dataset([1000, 150, 2000, 400]), "performances")
    assert [len(r) for r in few.train] == [1000, 150, 2000]  # 400 is nearest 355
    assert "1 of 4 performances" in few.description


def test_a_single_performance_is_split_in_time():
    split = windows.split(_dataset([1000]), "performances")
    assert [len(r) for r in split.train] == [900]
    assert len(split.validation) == 1  # its last 100 events hold one window of 51


def test_too_little_data_is_a_clear_error():
    with pytest.raises(Exception, match="52 events or more"):
        windows.split(_dataset([20, 51]), "performances")


def test_epoch_batches_use_every_event_once_per_pass_at_a_random_phase():
    runs = [np.arange(n, dtype=np.float32)[:, None].repeat(2, 1) for n in (260, 171)]
    rng = np.random.default_rng(0)
    starts_seen = set()
    for _ in range(20):
        batches = list(
            windows.plan_epoch(runs, stride=WINDOW, batch_size=4, min_windows=0, rng=rng)
        )
        stacked = np.concatenate(batches)  # (W, 51, 2)
        assert stacked.shape[1:] == (WINDOW + 1, 2)
        # windows are runs of consecutive events from one performance
        assert np.all(np.diff(stacked[:, :, 0], axis=1) == 1)
        # within a pass, targets never repeat: each event is predicted at most once
        targets = [(int(w[0, 0]), int(w[-1, 0])) for w in stacked]
        assert len(targets) == len(set(targets))
        assert len(stacked) in (4 + 3, 5 + 3, 4 + 2, 5 + 2)  # floor((n - phase - 1) / 50) per run
        starts_seen.update(int(w[0, 0]) % WINDOW for w in stacked)
    assert len(starts_seen) > 25  # phases vary from pass to pass


def test_small_datasets_make_epochs_of_several_passes():
    runs = [np.zeros((200, 3), np.float32)]
    rng = np.random.default_rng(0)
    epoch = windows.plan_epoch(runs, stride=WINDOW, batch_size=8, min_windows=64, rng=rng)
    assert sum(len(b) for b in epoch) >= 64 and len(epoch) == len(list(epoch))
