"""IMPSY's model conformance vector: antiphon, reading the fixed-weight ``.tflite``
itself, computes the outputs IMPSY recorded for it."""

import json

import numpy as np
import pytest

from antiphon.model import loader, mdn
from antiphon.model.mdrnn import MDRNN
from antiphon.model.presets import SCALE_FACTOR


@pytest.fixture
def vector(impsy_dir):
    return json.loads((impsy_dir / "conformance" / "vectors" / "model.json").read_text())


def test_the_fixed_weight_model_gives_impsy_s_outputs(impsy_dir, vector):
    tolerance = vector["tolerance"]
    (case,) = vector["cases"]
    expected = case["expected"]
    model = loader.open_model(impsy_dir / "conformance" / case["model_file"])
    assert isinstance(model, MDRNN)  # read from the file, not run by LiteRT
    arch = model.architecture
    assert expected["introspected"] == {
        "dimension": arch.dimension,
        "units": arch.units,
        "mixtures": arch.mixtures,
        "layers": arch.layers,
    }
    d, m = arch.dimension, arch.mixtures
    compared = 0
    for given, want in zip(case["steps"], expected["steps"], strict=True):
        if given.get("reset"):
            model.reset()
            continue
        out = model.step(given["input"]).astype(np.float64)
        scaled = np.asarray(given["input"], np.float32) * np.float32(SCALE_FACTOR)
        np.testing.assert_allclose(scaled, want["model_input"], atol=tolerance)
        np.testing.assert_allclose(out, want["mdn_output"], atol=tolerance)
        mus, sigmas, logits = mdn.split(out, d, m)
        pi = mdn.softmax(logits, case["pi_temp"])
        np.testing.assert_allclose(pi, want["pi"], atol=tolerance)
        np.testing.assert_allclose(mus / SCALE_FACTOR, want["mu"], atol=tolerance)
        std = sigmas * np.sqrt(case["sigma_temp"]) / SCALE_FACTOR
        np.testing.assert_allclose(std, want["std"], atol=tolerance)
        chosen = [int(np.searchsorted(np.cumsum(pi), u)) for u in case["uniform_draws"]]
        assert chosen == want["mixture_for_draw"]
        compared += 1
    assert compared == 6
