"""Mixture density maths: closed forms, numerical safety and the sampler's statistics."""

import math

import numpy as np
import pytest

from antiphon.model import mdn, reference


def vector(mus, sigmas, logits):
    """Build an MDN vector [mus | sigmas | logits] from (M, D), (M, D), (M,)."""
    return np.concatenate([np.ravel(mus), np.ravel(sigmas), np.ravel(logits)]).astype(np.float64)


def raw_sigma(sigma):
    """The head output that the activation elu(x) + 1 + 1e-7 turns into ``sigma``."""
    sigma = np.asarray(sigma, np.float64) - 1e-7
    return np.where(sigma > 1, sigma - 1, np.log(sigma))


def test_nll_of_one_gaussian_matches_closed_form():
    mu, sigma, y = np.array([0.3, -1.0]), np.array([0.5, 2.0]), np.array([0.1, 0.5])
    expected = -sum(
        -0.5 * ((yi - mi) / si) ** 2 - math.log(si) - 0.5 * math.log(2 * math.pi)
        for yi, mi, si in zip(y, mu, sigma, strict=True)
    )
    got = reference.nll(vector([mu], [sigma], [0.0]), y, dimension=2, mixtures=1)
    assert got == pytest.approx(expected, rel=1e-12)


def test_nll_of_two_component_mixture_matches_closed_form():
    mus = np.array([[0.0], [3.0]])
    sigmas = np.array([[1.0], [0.5]])
    logits = np.array([0.2, -0.7])
    weights = np.exp(logits) / np.exp(logits).sum()
    y = 1.2
    density = sum(
        w * math.exp(-0.5 * ((y - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))
        for w, m, s in zip(weights, mus[:, 0], sigmas[:, 0], strict=True)
    )
    got = reference.nll(vector(mus, sigmas, logits), np.array([y]), dimension=1, mixtures=2)
    assert got == pytest.approx(-math.log(density), rel=1e-12)


def test_nll_is_vectorised_over_leading_axes():
    rng = np.random.default_rng(0)
    vectors = np.concatenate(
        [rng.normal(size=(4, 3, 6)), rng.uniform(0.1, 2, (4, 3, 6)), rng.normal(size=(4, 3, 2))],
        axis=-1,
    )
    targets = rng.normal(size=(4, 3, 3))
    batched = reference.nll(vectors, targets, dimension=3, mixtures=2)
    assert batched.shape == (4, 3)
    assert batched[2, 1] == pytest.approx(reference.nll(vectors[2, 1], targets[2, 1], 3, 2))


@pytest.mark.parametrize(
    ("sigma", "logits"),
    [(1e-7, [0.0, 0.0]), (1e6, [0.0, 0.0]), (1.0, [1e4, -1e4]), (1.0, [-1e4, -1e4])],
)
def test_nll_is_finite_for_extreme_sigmas_and_logits(sigma, logits):
    v = vector([[0.0, 0.0], [1.0, 1.0]], np.full((2, 2), sigma), logits)
    assert np.isfinite(reference.nll(v, np.array([0.5, 0.5]), dimension=2, mixtures=2))


def test_sigma_activation_is_elu_plus_one_and_never_overflows():
    x = np.array([-1e4, -2.0, 0.0, 3.0, 1e30], np.float32)
    with np.errstate(over="raise", invalid="raise"):
        got = mdn.sigma_activation(x)
    expected = np.where(x > 0, x + 1, np.exp(np.minimum(x, 0))) + np.float32(1e-7)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got.min() > 0


def test_the_samplers_inline_activation_is_sigma_activation():
    raw = np.array([-30.0, -3.0, -0.5, 0.0, 0.25, 4.0])
    v = vector(np.zeros((2, 3)), raw.reshape(2, 3), [0.0, -1.0])
    activated = vector(np.zeros((2, 3)), mdn.sigma_activation(raw).reshape(2, 3), [0.0, -1.0])

    def draws(vector, is_activated):
        sampler = mdn.MixtureSampler(3, 2, sigmatemp=1.0, rng=np.random.default_rng(7))
        return np.array(
            [sampler.sample(vector.tolist(), activated=is_activated) for _ in range(50)]
        )

    np.testing.assert_allclose(draws(v, False), draws(activated, True), rtol=1e-12, atol=1e-300)


def test_softmax_temperature_sharpens_and_flattens():
    logits = np.array([1.0, 0.0, -1.0])
    assert mdn.softmax(logits, 0.1)[0] > mdn.softmax(logits, 1.0)[0] > mdn.softmax(logits, 10)[0]
    assert mdn.softmax(np.array([1e4, 0.0]))[0] == pytest.approx(1.0)


def draw(sampler, v, n, activated):
    values = v.tolist()
    return np.array([sampler.sample(values, activated=activated) for _ in range(n)])


@pytest.mark.parametrize("activated", [True, False])
@pytest.mark.parametrize("sigmatemp", [1.0, 0.25, 0.01])
def test_sampler_mean_and_variance_follow_sigmatemp(sigmatemp, activated):
    mus = np.array([[1.0, -2.0, 0.5]])
    sigmas = np.array([[0.5, 2.0, 1.0]])
    v = vector(mus, sigmas if activated else raw_sigma(sigmas), [0.0])
    sampler = mdn.MixtureSampler(3, 1, sigmatemp=sigmatemp, rng=np.random.default_rng(1))
    x = draw(sampler, v, 40_000, activated)
    sd = sigmas[0] * math.sqrt(sigmatemp)
    # mean within 4 standard errors; variance within 4 standard errors of a variance
    assert np.all(np.abs(x.mean(0) - mus[0]) < 4 * sd / math.sqrt(len(x)))
    assert np.all(np.abs(x.var(0) / sd**2 - 1) < 4 * math.sqrt(2 / len(x)))


@pytest.mark.parametrize("pitemp", [1.0, 0.5, 2.0, 0.05])
def test_sampler_component_frequencies_follow_pitemp(pitemp):
    logits = np.array([1.0, 0.0, -0.5, 0.3])
    mus = np.array([[0.0], [10.0], [20.0], [30.0]])  # far apart: the draw tells the component
    v = vector(mus, np.full((4, 1), 0.01), logits)
    sampler = mdn.MixtureSampler(1, 4, pitemp=pitemp, sigmatemp=1.0, rng=np.random.default_rng(2))
    n = 40_000
    components = np.rint(draw(sampler, v, n, activated=True)[:, 0] / 10).astype(int)
    freq = np.bincount(components, minlength=4) / n
    expected = mdn.softmax(logits, pitemp)
    assert np.all(np.abs(freq - expected) < 4 * np.sqrt(expected * (1 - expected) / n) + 1e-9)


def test_sampler_is_reproducible_from_a_seed():
    v = vector(np.zeros((2, 2)), np.ones((2, 2)), [0.0, 0.0]).tolist()

    def run(seed):
        s = mdn.MixtureSampler(2, 2, rng=np.random.default_rng(seed))
        return [s.sample(v, activated=True) for _ in range(600)]  # crosses a block refill

    assert run(5) == run(5)
    assert run(5) != run(6)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_sampler_rejects_unusable_pitemp(bad):
    with pytest.raises(ValueError, match="pitemp"):
        mdn.MixtureSampler(2, 1, pitemp=bad)


def test_sigmatemp_zero_samples_the_mean():
    v = vector([[0.25, 0.75]], [[3.0, 3.0]], [0.0]).tolist()
    s = mdn.MixtureSampler(2, 1, sigmatemp=0.0)
    assert s.sample(v, activated=True) == [0.25, 0.75]
