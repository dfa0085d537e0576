"""The PyTorch training network computes the reference equations, and exactly what the
NumPy instrument plays."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from antiphon.model import reference  # noqa: E402
from antiphon.model.mdn import sigma_activation  # noqa: E402
from antiphon.model.mdrnn import MDRNN, Weights  # noqa: E402
from antiphon.model.presets import SIZES, Architecture  # noqa: E402
from antiphon.model.reference import nll  # noqa: E402
from antiphon.training.net import MDRNNNet, from_weights, mdn_nll, to_weights  # noqa: E402


@pytest.mark.parametrize("size", list(SIZES))
def test_numpy_and_torch_give_the_same_mdn_vectors_over_100_stateful_steps(size):
    arch = Architecture.from_size(9, size)
    net = MDRNNNet(arch)  # torch's own initialisation, converted to NumPy
    model = MDRNN(to_weights(net))
    events = np.random.default_rng(0).random((100, 9)).astype(np.float32)
    x = torch.from_numpy(events * 10).unsqueeze(0)  # (1, 100, 9)
    with torch.no_grad():
        whole, _ = net(x)  # one pass over the sequence
        state, stepwise = None, []
        for t in range(100):  # one step at a time, carrying the state
            out, state = net(x[:, t : t + 1], state)
            stepwise.append(out[0, 0])
    for t in range(100):
        got = model.step(events[t])
        np.testing.assert_allclose(got, whole[0, t].numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got, stepwise[t].numpy(), rtol=1e-5, atol=1e-5)


def test_weights_convert_both_ways_exactly():
    weights = Weights.random(Architecture.from_size(5, "xs"), 7)
    back = to_weights(from_weights(weights))
    for name, array in weights.tensors().items():
        np.testing.assert_array_equal(back.tensors()[name], array)


def test_torch_nll_matches_numpy_nll():
    arch = Architecture.from_size(4, "xxs")
    net = from_weights(Weights.random(arch, 1))
    x = torch.rand(3, 7, 4) * 10
    y = torch.rand(3, 7, 4) * 10
    with torch.no_grad():
        mdn, _ = net(x)
        loss = mdn_nll(mdn, y, arch)
    expected = nll(mdn.numpy(), y.numpy(), 4, 5)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5)


@pytest.mark.parametrize("size", ["xxs", "s", "xl"])
def test_torch_computes_the_reference_equations(size):
    weights = Weights.random(Architecture.from_size(4, size), 5)
    net = from_weights(weights)
    events = np.random.default_rng(1).random((30, 4))
    with torch.no_grad():
        whole, _ = net(torch.from_numpy(events * 10).float().unsqueeze(0))
    state = reference.zero_state(weights)
    for t in range(30):
        expected, state = reference.step(weights, state, events[t])
        np.testing.assert_allclose(whole[0, t].numpy(), expected, rtol=1e-4, atol=1e-5)


def test_the_sigma_activation_is_one_function_for_numpy_and_torch():
    x = np.array([-80.0, -3.0, -1e-3, 0.0, 1e-3, 2.0, 1e6])
    t = torch.tensor(x, requires_grad=True)
    got = sigma_activation(t)
    np.testing.assert_allclose(got.detach().numpy(), sigma_activation(x), rtol=1e-12)
    expected = torch.nn.functional.elu(t) + 1 + 1e-7
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=1e-12)
    got.sum().backward()  # the gradient is elu's: 1 above zero, exp(x) below
    elu_gradient = np.where(x > 0, 1.0, np.exp(np.minimum(x, 0)))
    np.testing.assert_allclose(t.grad.numpy(), elu_gradient, rtol=1e-12)
