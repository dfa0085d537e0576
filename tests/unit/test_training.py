"""Training: reproducible, keeps the best weights, resumes exactly, stops cleanly."""

import copy
import dataclasses
import math
import os
import signal

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from antiphon.data.dataset import Dataset  # noqa: E402
from antiphon.data.performer import Performer  # noqa: E402
from antiphon.model import files  # noqa: E402
from antiphon.model.mdrnn import MDRNN  # noqa: E402
from antiphon.model.reference import nll  # noqa: E402
from antiphon.training import results  # noqa: E402
from antiphon.training.net import to_weights  # noqa: E402
from antiphon.training.train import Reporter, Settings, Trainer, TrainingError, fit  # noqa: E402

TINY = Settings(size="xxs", batch_size=16, epoch_windows=48, epochs=3, seed=7, threads=1)


@pytest.fixture(scope="module")
def data() -> Dataset:
    performer = Performer(3, seed=1)
    return Dataset.from_performances([performer.performance(25) for _ in range(4)])


def _weights(run):
    return run.best_weights.tensors()


def _same(a, b):
    return all(np.array_equal(a[k], b[k]) for k in a)


def test_the_same_seed_gives_the_same_model(data):
    first = fit(Trainer(data, TINY))
    second = fit(Trainer(data, TINY))
    other = fit(Trainer(data, dataclasses.replace(TINY, seed=8)))
    assert _same(_weights(first), _weights(second))
    assert [r.val_nll for r in first.history] == [r.val_nll for r in second.history]
    assert not _same(_weights(first), _weights(other))


class _Scripted(Trainer):
    """Validation losses chosen by the test; the training itself is real."""

    def __init__(self, *args, losses, **kwargs):
        super().__init__(*args, **kwargs)
        self.losses = list(losses)
        self.snapshots = []

    def evaluate(self):
        self.snapshots.append(copy.deepcopy(self.averaged.state_dict()))
        return self.losses.pop(0)


def test_early_stopping_restores_the_best_epoch_not_the_last(data):
    trainer = _Scripted(
        data, dataclasses.replace(TINY, epochs=10, patience=2), losses=[5.0, 3.0, 4.0, 6.0, 1.0]
    )
    run = fit(trainer)
    assert run.stopped == "early stopping: no improvement for 2 epochs"
    assert len(run.history) == 4 and run.best_epoch == 2 and run.best_val_nll == 3.0
    trainer.net.load_state_dict(trainer.snapshots[1])
    assert _same(_weights(run), to_weights(trainer.net).tensors())
    trainer.net.load_state_dict(trainer.snapshots[3])
    assert not _same(_weights(run), to_weights(trainer.net).tensors())


def test_the_learning_rate_halves_when_validation_stalls(data):
    trainer = _Scripted(
        data, dataclasses.replace(TINY, epochs=5, lr_patience=2), losses=[3, 4, 4, 2, 5]
    )
    run = fit(trainer)
    lr = TINY.learning_rate
    assert [r.learning_rate for r in run.history] == [lr, lr, lr, lr / 2, lr / 2]


def test_the_saved_model_scores_the_recorded_best_with_numpy_only(data, tmp_path):
    trainer = Trainer(data, dataclasses.replace(TINY, epochs=3))
    run = fit(trainer)
    path = results.save_model(run, tmp_path / "m.safetensors", "tiny.npz", data)
    png = results.save_loss_plot(run, tmp_path / "m.png")
    assert png is not None and png.read_bytes()[:4] == b"\x89PNG"
    loaded = files.load(path)
    meta = loaded.metadata
    assert meta["training"]["best_val_nll_scaled"] == run.best_val_nll
    assert meta["training"]["best_val_nll_unscaled"] == pytest.approx(
        run.best_val_nll - 3 * math.log(10)
    )
    assert meta["training"]["dataset"]["events"] == len(data.events)
    assert meta["training"]["best_epoch"] == run.best_epoch
    # the NumPy instrument model, stepped over every validation window from zero state
    model = MDRNN(loaded.weights)
    windows = trainer.split.validation / 10  # unscaled events
    total = 0.0
    for window in windows:
        model.reset()
        for t in range(50):
            mdn = model.step(window[t]).copy()
            total += float(nll(mdn, window[t + 1] * 10, 3, 5))
    assert total / (len(windows) * 50) == pytest.approx(run.best_val_nll, rel=1e-4, abs=1e-4)


def test_a_resumed_run_ends_exactly_where_an_uninterrupted_one_does(data, tmp_path):
    whole = fit(Trainer(data, dataclasses.replace(TINY, epochs=4)))
    checkpoint = tmp_path / "run.checkpoint.pt"
    first = Trainer(data, dataclasses.replace(TINY, epochs=2))
    fit(first, checkpoint=checkpoint)
    state = Trainer.read_checkpoint(checkpoint)
    assert state["epoch"] == 2
    resumed = fit(Trainer.resume(state, data, {"epochs": 4}))
    assert _same(_weights(whole), _weights(resumed))
    assert [r.val_nll for r in whole.history] == [r.val_nll for r in resumed.history]
    assert [r.epoch for r in resumed.history] == [1, 2, 3, 4]


def test_resume_refuses_other_data_or_changed_maths(data, tmp_path):
    checkpoint = tmp_path / "run.checkpoint.pt"
    fit(Trainer(data, dataclasses.replace(TINY, epochs=1)), checkpoint=checkpoint)
    state = Trainer.read_checkpoint(checkpoint)
    other = Dataset.from_performances([p * 0.5 for p in data.performances])
    with pytest.raises(Exception, match="different data"):
        Trainer.resume(state, other)
    with pytest.raises(Exception, match="keeps its settings"):
        Trainer.resume(state, data, {"learning_rate": 0.1})
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(Exception, match="not a readable checkpoint"):
        Trainer.read_checkpoint(tmp_path / "junk.pt")


class _CtrlCInEpoch(Reporter):
    def __init__(self, epoch):
        self.epoch = epoch
        self.current = 0

    def begin_epoch(self, epoch, batches):
        self.current = epoch

    def advance(self, train_nll):
        if self.current == self.epoch:
            raise KeyboardInterrupt


def test_ctrl_c_keeps_the_best_model_so_far_and_the_checkpoint(data, tmp_path):
    checkpoint = tmp_path / "run.checkpoint.pt"
    trainer = Trainer(data, dataclasses.replace(TINY, epochs=10))
    run = fit(trainer, reporter=_CtrlCInEpoch(3), checkpoint=checkpoint)
    assert run.stopped == "interrupted" and len(run.history) == 2
    assert run.best_epoch in (1, 2)
    assert Trainer.read_checkpoint(checkpoint)["epoch"] == 2


class _SignalAsEpochEnds(Reporter):
    """A real signal while an epoch's record is being written, before its checkpoint."""

    def __init__(self, signum):
        self.signum = signum

    def end_epoch(self, record, best):
        if record.epoch == 2:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_as_an_epoch_ends_still_checkpoints_that_epoch(data, tmp_path, signum):
    checkpoint = tmp_path / "run.checkpoint.pt"
    run = fit(Trainer(data, dataclasses.replace(TINY, epochs=10)),
              reporter=_SignalAsEpochEnds(signum), checkpoint=checkpoint)  # fmt: skip
    assert run.stopped == "interrupted" and len(run.history) == 2
    assert Trainer.read_checkpoint(checkpoint)["epoch"] == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # as before the run


class _SigtermInEpoch(Reporter):
    def begin_epoch(self, epoch, batches):
        self.current = epoch

    def advance(self, train_nll):
        if self.current == 3:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_stops_a_run_as_ctrl_c_does_keeping_the_best(data):
    run = fit(Trainer(data, dataclasses.replace(TINY, epochs=10)), reporter=_SigtermInEpoch())
    assert run.stopped == "interrupted" and len(run.history) == 2


def test_ctrl_c_before_any_epoch_ends_is_an_error_without_a_model(data):
    with pytest.raises(TrainingError, match="no model to save"):
        fit(Trainer(data, TINY), reporter=_CtrlCInEpoch(1))


def test_max_minutes_bounds_a_run(data):
    run = fit(Trainer(data, dataclasses.replace(TINY, epochs=50)), max_minutes=1e-6)
    assert run.stopped.startswith("time limit") and len(run.history) == 1
    assert run.history[0].windows == TINY.batch_size  # stopped after the first batch


def test_diverging_training_stops_with_a_clear_message(data):
    wild = data.events.copy()
    wild[100, 0] = 3e37  # finite, but the loss of such a dt is not
    bad = Dataset(wild, data.offsets)
    with pytest.raises(TrainingError, match="diverged in epoch 1.*--lr") as caught:
        fit(Trainer(bad, dataclasses.replace(TINY, epoch_windows=10_000)))
    assert caught.value.run is None


def test_unavailable_devices_are_named(data):
    with pytest.raises(Exception, match="not available here; available: cpu"):
        Trainer(
            data,
            dataclasses.replace(TINY, device="cuda" if not torch.cuda.is_available() else "nope"),
        )


def test_impsy_settings_reproduce_impsys_recipe(data):
    from antiphon.training.session import Request

    impsy = Request(like_impsy=True).settings()
    assert (impsy.stride, impsy.batch_size, impsy.learning_rate, impsy.split) == (
        1,
        64,
        1e-3,
        "impsy",
    )
    assert impsy.lr_patience is None and impsy.clip is None and impsy.epoch_windows == 0
    mine = Request.from_options({"like_impsy": True, "batchsize": 32}, {"batchsize"}).settings()
    assert mine.batch_size == 32 and mine.stride == 1
    trainer = Trainer(data, dataclasses.replace(impsy, size="xxs", epochs=1, threads=1))
    windows = sum(len(r) - 50 for r in trainer.split.train)  # every stride-1 window, once
    assert fit(trainer).history[0].windows == windows


def test_command_line_defaults_are_the_training_defaults():
    from antiphon.cli.data import train as command
    from antiphon.training.session import OPTION_FIELDS

    defaults = Settings()
    for param in command.params:
        if param.name in OPTION_FIELDS and isinstance(param.default, (int, float, str)):
            assert param.default == getattr(defaults, OPTION_FIELDS[param.name]), param.name


def test_the_training_benchmark_times_the_step_that_trains(data, monkeypatch):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "training.py"
    spec = importlib.util.spec_from_file_location("training_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    stepped = []
    real = Trainer.step
    monkeypatch.setattr(Trainer, "step", lambda self, batch: stepped.append(real(self, batch)))
    rate = bench.throughput(data, TINY, batches=3, rounds=2)
    assert len(stepped) == 6 and all(math.isfinite(v) for v in stepped)
    assert rate > 0


def test_a_resumed_run_refuses_options_that_change_its_maths_naming_the_allowed_ones(tmp_path):
    from antiphon.training.session import Request, train

    given = {"lr", "batchsize", "numepochs"}
    options = {"resume": tmp_path / "x.checkpoint.pt", "lr": 0.1, "batchsize": 8, "numepochs": 5}
    with pytest.raises(Exception) as refused:
        train(Request.from_options(options, given), find_dataset=None)
    assert str(refused.value) == (
        "a resumed run keeps its settings; --batchsize, --lr cannot change "
        "(only --numepochs, --patience, --earlystopping, --device, --threads)"
    )


@pytest.mark.parametrize(("given", "expected"), [(None, "passive"), ("active", "active")])
def test_training_threads_wait_passively_unless_told_otherwise(given, expected):
    """Spinning threads collapse training when another program keeps a core busy."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    code = "import os, antiphon.training.train; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == expected, out.stderr
