"""The bundled default models load without torch and play something musical at the
settings a fresh workspace starts with."""

import json
import subprocess
import sys

import pytest

from antiphon.model import files
from antiphon.model.loader import bundled_model

PLAY = """
import json, sys
sys.modules["torch"] = None  # any attempt to import torch now fails
import numpy as np
from antiphon.model.loader import bundled_model, open_model
from antiphon.data.generate import play

from antiphon import config
from antiphon.workspace import config_template

fresh = config.parse(config_template()).model
temperatures = dict(sigmatemp=fresh.sigmatemp, pitemp=fresh.pitemp)
model = open_model(bundled_model({dimension}), **temperatures, seed=0)
events = play(model, events=3000).events
dt, values = events[:, 0].astype(float), events[:, 1:].astype(float)
still = np.all(np.diff(values, axis=0) == 0, axis=1)
longest_still, run = 0, 0
for s in still:
    run = run + 1 if s else 0
    longest_still = max(longest_still, run)
print(json.dumps({{
    "spans": (np.percentile(values, 98, axis=0) - np.percentile(values, 2, axis=0)).tolist(),
    "distinct": [len(np.unique(v)) for v in values.T],
    "dt_median": float(np.median(dt)),
    "dt_variation": float(dt.std() / dt.mean()),
    "pauses": int((dt > 0.25).sum()),
    "dt_distinct": len(np.unique(dt)),
    "longest_still": longest_still,
    "torch": "torch" in sys.modules and sys.modules["torch"] is not None,
}}))
"""


@pytest.mark.parametrize("dimension", [9, 4])
def test_a_bundled_model_moves_every_control_with_varied_timing(dimension):
    assert bundled_model(dimension) is not None, "run `make models`"
    result = subprocess.run(
        [sys.executable, "-c", PLAY.format(dimension=dimension)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    played = json.loads(result.stdout)
    assert not played["torch"]
    assert len(played["spans"]) == dimension - 1
    assert min(played["spans"]) > 0.6, played  # every control through most of its range
    assert min(played["distinct"]) > 20, played  # ... in many steps, not two states
    assert 0.003 < played["dt_median"] < 0.2, played  # human-scale timing
    assert played["dt_variation"] > 0.5 and played["dt_distinct"] > 200, played  # not a metronome
    assert played["pauses"] >= 2, played  # it breathes
    assert played["longest_still"] < 100, played  # it never stalls on one value


@pytest.mark.parametrize("dimension", [9, 4])
def test_bundled_models_say_what_they_are(dimension):
    loaded = files.load(bundled_model(dimension))
    assert loaded.architecture.size == "s" and loaded.architecture.dimension == dimension
    training = loaded.metadata["training"]
    assert training["dataset"]["file"].startswith("procedural performer")
    assert bundled_model(dimension).stat().st_size < 400_000
