"""Run IMPSY 1.2 itself on files antiphon wrote: a helper for the checks that need
TensorFlow, which antiphon never installs.

Run it with the Python of a separate virtualenv that has IMPSY (``pip install
impsy==1.2.1``, which brings TensorFlow and Keras 3); tests/compat/test_impsy_export.py
does so when ``ANTIPHON_IMPSY_PYTHON`` names that interpreter.

- ``mdn``: reads ``{"files": [...], "architecture": {...}, "events": [[...], ...]}`` on
  stdin, loads each file with IMPSY's ``KerasMDRNN`` (as ``impsy run`` does for a
  ``.h5`` or ``.keras`` model), feeds it the events from zero state the way its
  ``generate`` does, and prints ``RESULT {file: [MDN vector, ...]}``.
- ``tflite SOURCE OUT D U M L``: converts a model file as IMPSY does
  (``model_to_tflite``) into ``OUT-float.tflite`` and, with IMPSY's ``optimise``
  option (int8 weights), ``OUT-int8.tflite``.
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
from impsy import mdrnn
from impsy.tflite_converter import model_to_tflite


def mdn_vectors() -> None:
    request = json.load(sys.stdin)
    a = request["architecture"]
    shape = (a["dimension"], a["units"], a["mixtures"], a["layers"])
    out = {}
    for path in request["files"]:
        model = mdrnn.KerasMDRNN(Path(path), *shape)
        vectors = []
        for event in request["events"]:
            x = np.asarray(event, np.float32).reshape(1, 1, -1) * mdrnn.SCALE_FACTOR
            result = model.model([tf.convert_to_tensor(x), *model.lstm_states])
            model.lstm_states = result[1:]
            vectors.append(result[0][0].numpy().tolist())
        out[path] = vectors
    print("RESULT " + json.dumps(out))


def to_tflite(source: str, out: str, *shape: str) -> None:
    model = mdrnn.KerasMDRNN(Path(source), *map(int, shape))
    stem = Path(out)
    model_to_tflite(model.model, stem.with_name(stem.name + "-float.tflite"))
    model_to_tflite(model.model, stem.with_name(stem.name + "-int8.tflite"), optimise=True)


if __name__ == "__main__":
    if sys.argv[1] == "mdn":
        mdn_vectors()
    else:
        to_tflite(*sys.argv[2:])
