"""The NumPy MDRNN against the reference equations, and its behaviour as a generator."""

import numpy as np
import pytest

from antiphon.model import reference
from antiphon.model.mdrnn import MDRNN, Weights
from antiphon.model.presets import HEADS, MIN_DT, SIZES, Architecture


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("dimension", [2, 4, 9, 17])
def test_fused_step_matches_the_reference(size, dimension):
    arch = Architecture.from_size(dimension, size)
    weights = Weights.random(arch, seed=3)
    model = MDRNN(weights)
    state = reference.zero_state(weights)
    rng = np.random.default_rng(4)
    for _ in range(30 if arch.units <= 128 else 8):  # the float64 reference is slow for l, xl
        event = rng.random(dimension).astype(np.float32)
        expected, state = reference.step(weights, state, event)
        got = model.step(event)
        assert got.shape == (arch.mdn_width,)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    for got_state, (h, c) in zip(np.split(np.array(model.state), arch.layers), state, strict=True):
        np.testing.assert_allclose(got_state[0], h, atol=1e-5)
        np.testing.assert_allclose(got_state[1], c, atol=1e-5)


def test_reset_forgets_the_performance():
    model = MDRNN(Weights.random(Architecture.from_size(4, "xs"), 0))
    first = model.step([0.1, 0.2, 0.3, 0.4]).copy()
    model.step([0.5, 0.9, 0.1, 0.7])
    assert not np.allclose(model.step([0.1, 0.2, 0.3, 0.4]), first)
    model.reset()
    assert all(not s.any() for s in model.state)
    np.testing.assert_array_equal(model.step([0.1, 0.2, 0.3, 0.4]), first)


def test_state_round_trips():
    model = MDRNN(Weights.random(Architecture.from_size(3, "xxs"), 0))
    for _ in range(5):
        model.step([0.1, 0.5, 0.5])
    saved = model.state
    after = model.step([0.2, 0.1, 0.9]).copy()
    model.reset()
    model.state = saved
    np.testing.assert_array_equal(model.step([0.2, 0.1, 0.9]), after)


def test_generate_returns_valid_events():
    arch = Architecture.from_size(5, "s")
    model = MDRNN(Weights.random(arch, 1), sigmatemp=400.0, seed=0)  # wide: forces clipping
    event = [0.1, 0.5, 0.5, 0.5, 0.5]
    seen = []
    for _ in range(500):
        event = model.generate(event)
        assert isinstance(event, list) and len(event) == 5
        assert event[0] >= MIN_DT
        assert all(0.0 <= v <= 1.0 for v in event[1:])
        seen.append(event)
    values = np.array(seen)[:, 1:]
    assert (values == 0.0).any() and (values == 1.0).any()  # clipping happened both ways
    assert len({tuple(e) for e in seen}) > 250  # it is not stuck


def test_generate_is_reproducible_with_a_seed():
    weights = Weights.random(Architecture.from_size(4, "xs"), 0)

    def performance(seed):
        model = MDRNN(weights, seed=seed)
        event, out = [0.1, 0.5, 0.5, 0.5], []
        for _ in range(100):
            event = model.generate(event)
            out.append(event)
        return out

    assert performance(9) == performance(9)
    assert performance(9) != performance(10)


def test_temperatures_reach_the_sampler_and_are_validated():
    model = MDRNN(Weights.random(Architecture.from_size(4, "xs"), 0), sigmatemp=0.5, pitemp=2)
    assert (model.sigmatemp, model.pitemp) == (0.5, 2.0)
    model.sigmatemp = 0.0
    event = [0.1, 0.5, 0.5, 0.5]
    a = model.generate(event)
    model.reset()
    model.seed(1)
    model.pitemp = 1e-9  # effectively argmax: with zero variance the output is fixed
    b = model.generate(event)
    model.reset()
    model.seed(2)
    assert model.generate(event) == b
    assert len(a) == 4
    with pytest.raises(ValueError, match="pitemp"):
        model.pitemp = 0


def test_weights_round_trip_through_tensors_and_reject_bad_shapes():
    weights = Weights.random(Architecture.from_size(6, "xs"), 0)
    again = Weights.from_tensors(weights.tensors())
    for name, array in weights.tensors().items():
        np.testing.assert_array_equal(again.tensors()[name], array)
    broken = weights.tensors() | {"mdn.pis.bias": np.zeros(4, np.float32)}
    with pytest.raises(ValueError, match="has shape"):
        Weights.from_tensors(broken)
    nan = weights.tensors() | {"lstm.0.bias": np.full(4 * 32, np.nan, np.float32)}
    with pytest.raises(ValueError, match="NaN"):
        Weights.from_tensors(nan)


def test_architecture_presets_and_parameter_count():
    arch = Architecture.from_size(9, "s")
    assert (arch.units, arch.layers, arch.mixtures, arch.size) == (64, 2, 5, "s")
    assert Architecture.from_size(9, "xl").layers == 3
    weights = Weights.random(arch, 0)
    assert arch.parameter_count == sum(a.size for a in weights.tensors().values())
    assert arch.impsy_stem == "musicMDRNN-dim9-layers2-units64-mixtures5-scale10"
    with pytest.raises(Exception, match="dimension"):
        Architecture(dimension=1, units=4, layers=1)


def test_weights_are_stored_and_laid_out_in_heads_order():
    arch = Architecture.from_size(3, "xxs")
    names = [n for n in Weights.random(arch, 0).tensors() if n.startswith("mdn.")]
    assert names == [f"mdn.{h}.{p}" for h in HEADS for p in ("kernel", "bias")]
    layout = arch.mdn
    assert (layout.mus, layout.sigmas, layout.logits) == (
        slice(0, 15),
        slice(15, 30),
        slice(30, 35),
    )
    assert list(layout.widths.values()) == [15, 15, 5] and layout.width == arch.mdn_width == 35
