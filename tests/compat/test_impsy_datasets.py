"""IMPSY's shipped datasets load safely, summarise as documented and split as IMPSY does."""

import numpy as np
import pytest

from antiphon.data import dataset, impsy_npz

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
