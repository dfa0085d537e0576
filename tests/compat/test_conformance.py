"""IMPSY's conformance vectors, every case of every file, through antiphon's own code.

IMPSY 1.2.1 ships JSON vectors generated from its own code so that any implementation
can check itself against it (see ``conformance/README.md`` beside the IMPSY samples).
Each case here is one test, named ``<file>::<case>``. The folder is
``../shared/impsy/conformance`` (or ``$ANTIPHON_CONFORMANCE_DIR``); a vector file of a
kind this runner does not know fails the run rather than being skipped, so a new
IMPSY rule is never passed over in silence.

Every case goes through the code antiphon plays with: the MIDI and WebSocket mappings
(``io.mapping``, ``io.websocket``'s wire format, the serial MIDI byte parser), the
engine (MIDI input to model inputs and log rows; model outputs to waits, played values
and what the model hears back), the log reader and dataset builder, and the model
reader. Stand-ins are used only where a vector gives what a real part would compute: a
model that returns the vector's outputs and records what it is fed.

Where antiphon deliberately differs from a case, ``DIFFERENCES`` names the case and the
reason (docs/coming-from-impsy.md lists them too); such a case asserts what antiphon
does instead.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mido
import numpy as np
import pytest

from antiphon import config as config_module
from antiphon.data import dataset as datasets
from antiphon.engine import engine as engine_module
from antiphon.engine.instrument import Instrument
from antiphon.engine.schedule import new_event_loop
from antiphon.engine.setup import Overrides, Setup
from antiphon.io import midi, websocket
from antiphon.io.channel import Channel
from antiphon.io.mapping import Decoder, Encoder
from antiphon.io.midiwire import Parser
from antiphon.model import loader, mdn
from antiphon.model.mdrnn import MDRNN
from antiphon.model.presets import SCALE_FACTOR
from samples import IMPSY

FOLDER = Path(os.environ.get("ANTIPHON_CONFORMANCE_DIR") or IMPSY / "conformance")
SPEC_MAJOR = 1
"""The major spec version this runner reads; another major version fails the run."""

DIFFERENCES: dict[str, str] = {
    "model::fixed_weight_model_steps": (
        "antiphon picks the mixture with the Gumbel-max trick from its own random numbers "
        "(one comparison per mixture, no cumulative sum), so a given uniform number does "
        "not pick the same mixture as in IMPSY ('mixture_for_draw'); the probabilities "
        "are the same, which is checked by drawing"
    ),
}
"""``<file>::<case>`` -> why antiphon deliberately does otherwise; the rest of the
case is checked as it is."""


def _vector_files() -> list[Path]:
    folder = FOLDER / "vectors" if (FOLDER / "vectors").is_dir() else FOLDER
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def _cases() -> list[Any]:
    files = _vector_files()
    if not files:
        return [pytest.param(None, None, None, id="no-vectors")]
    params = []
    for path in files:
        document = json.loads(path.read_text(encoding="utf-8"))
        cases = document.get("cases") or [None]
        for case in cases:
            name = case.get("name", "?") if isinstance(case, dict) else "no-cases"
            params.append(pytest.param(path, document, case, id=f"{path.stem}::{name}"))
    return params


@pytest.mark.parametrize(("path", "document", "case"), _cases())
def test_conformance_case(path, document, case, tmp_path, monkeypatch):
    if path is None:
        pytest.skip(f"no IMPSY conformance vectors in {FOLDER} (ANTIPHON_CONFORMANCE_DIR)")
    major = str(document.get("spec_version", "")).split(".")[0]
    assert major == str(SPEC_MAJOR), (
        f"{path.name}: spec version {document.get('spec_version')!r}; this runner reads "
        f"version {SPEC_MAJOR}.x: read what changed and update it"
    )
    run = RUNNERS.get(path.stem)
    assert run is not None, (
        f"{path.name}: a kind of conformance vector this runner does not know "
        f"(it knows {', '.join(sorted(RUNNERS))}): add a runner for it"
    )
    assert isinstance(case, dict), f"{path.name} holds no cases"
    run(case, float(document["tolerance"]), Context(path, tmp_path, monkeypatch))


class Context:
    def __init__(self, path: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path, self.tmp, self.monkeypatch = path, tmp, monkeypatch
        self.folder = path.parent.parent if path.parent.name == "vectors" else path.parent


def _mappings(entries: list[list[Any]]) -> list[config_module.MidiMapping]:
    return [config_module.MidiMapping.parse(entry) for entry in entries]


def _updates(found: list[tuple[int, float]]) -> list[list[float]] | None:
    return [[i, v] for i, v in found] if found else None


def _same_updates(got: list[list[float]] | None, want: list[list[float]] | None, tol: float):
    if want is None:
        assert got is None
        return
    assert got is not None and [i for i, _ in got] == [i for i, _ in want]
    np.testing.assert_allclose([v for _, v in got], [v for _, v in want], atol=tol, rtol=0)


# -- mappings --------------------------------------------------------------------------


def midi_input(case: dict[str, Any], tol: float, ctx: Context) -> None:
    """Each message as rtmidi delivers it (a mido message from its bytes) and as serial
    MIDI reads it (the byte parser), through the input mapping."""
    decoder = Decoder(_mappings(case["input_mapping"]))
    for message_bytes, want in zip(case["messages"], case["expected"], strict=True):
        delivered = mido.Message.from_bytes(message_bytes)
        parsed = Parser().feed(bytes(message_bytes))
        assert parsed == [delivered]
        _same_updates(_updates(decoder.decode(delivered)), want, tol)


def midi_output(case: dict[str, Any], tol: float, ctx: Context) -> None:
    encoder = Encoder(_mappings(case["output_mapping"]))
    for step, want in zip(case["steps"], case["expected"], strict=True):
        off = step.get("all_notes_off")  # the output is closed (or antiphon stops)
        sent = encoder.note_offs() if off else encoder.encode(step["values"])
        assert [m.bytes() for m in sent] == want


def websocket_input(case: dict[str, Any], tol: float, ctx: Context) -> None:
    decoder = Decoder(_mappings(case["input_mapping"]))
    for text, want in zip(case["messages"], case["expected"], strict=True):
        try:
            message, _ = websocket.parse(text)
        except ValueError:
            got = None  # dropped (and reported) by the channel
        else:
            got = _updates(decoder.decode(message))
        _same_updates(got, want, tol)


def websocket_output(case: dict[str, Any], tol: float, ctx: Context) -> None:
    encoder = Encoder(_mappings(case["output_mapping"]))
    for values, want in zip(case["steps"], case["expected"], strict=True):
        assert [websocket.frame(m) for m in encoder.encode(values)] == want


# -- the engine ------------------------------------------------------------------------


class Heard:
    """A model that plays what it is given to play and keeps what it is fed: the
    vectors give the model's outputs, and what the engine feeds it is under test."""

    def __init__(self, outputs: list[list[float]], then: list[float]) -> None:
        self.fed: list[list[float]] = []
        self._outputs, self._then = list(outputs), then

    def generate(self, event: Any) -> list[float]:
        self.fed.append([float(v) for v in event])
        return self._outputs.pop(0) if self._outputs else list(self._then)

    def reset(self) -> None:
        pass


class Played(Channel):
    """A channel keeping what the engine sends it."""

    name = "played"

    def __init__(self) -> None:
        self.sent: list[list[float]] = []

    def _send(self, values: Any) -> None:
        self.sent.append(list(values))


def _setup(text: str, predictor: Any, tmp: Path) -> Setup:
    config = config_module.parse(text, tmp / "config.toml")
    return Setup(
        config=config,
        config_path=config.path,
        overrides=Overrides(),
        explicit_model=None,
        predictor=predictor,
        model_name="conformance",
        model_path=None,
        log_dir=tmp / "logs",
        root=tmp,
    )


def _play(scenario: Any) -> Any:
    loop = new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(scenario, 60))
    finally:
        loop.close()


def pipeline(case: dict[str, Any], tol: float, ctx: Context) -> None:
    """Timed MIDI bytes into a MIDI channel of a running engine (on a clock set to the
    vector's times); what the model is fed and what the log holds come out."""
    dimension = case["dimension"]
    mapping = json.dumps(case["input_mapping"])
    text = (
        "log_input = true\n[interaction]\nmode = 'polyphony'\n"
        f"[model]\ndimension = {dimension}\n"
        f"[midi]\nin_device = []\ninput.'conformance' = {mapping}\n"
    )

    class NoPorts:  # the channel's MIDI system: the vector's messages come in directly
        def get_output_names(self) -> list[str]:
            return []

    ctx.monkeypatch.setattr(midi, "open_backend", NoPorts)
    model = Heard([], then=[1.0] + [0.5] * (dimension - 1))
    setup = _setup(text, model, ctx.tmp)
    channel = midi.MIDIChannel(setup.config.midi)
    engine = Instrument(setup, channels={"midi": channel})
    clock = [float(case["start_time"])]
    engine._now = lambda: clock[0]  # the vector's clock: dt is measured on it

    async def scenario() -> None:
        await engine.start()
        engine.pause(True)  # the model hears every input; nothing is scheduled to play
        engine.activity.last_input = [float(v) for v in case["initial_values"]]
        for event in case["events"]:
            clock[0] = float(event["time"])
            channel.received("conformance", mido.Message.from_bytes(event["bytes"]))
        await engine.stop()

    _play(scenario())
    want = case["expected"]
    assert len(model.fed) == len(want["model_inputs"])
    np.testing.assert_allclose(model.fed, want["model_inputs"], atol=tol, rtol=0)
    (log,) = (ctx.tmp / "logs").glob("*.log")
    rows = [line.split(",") for line in log.read_text().splitlines()]
    assert [row[1] for row in rows] == [row["source"] for row in want["log"]]
    np.testing.assert_allclose(
        [[float(v) for v in row[2:]] for row in rows],
        [row["values"] for row in want["log"]],
        atol=tol,
        rtol=0,
    )


def playback(case: dict[str, Any], tol: float, ctx: Context) -> None:
    """The model's outputs played by a running engine (battle mode: it plays on its
    own): the time between played events, what is sent, and what the model is fed back."""
    outputs = case["model_outputs"]
    controls = len(outputs[0]) - 1
    text = (
        "log_input = false\n[interaction]\nmode = 'battle'\n"
        f"[model]\ndimension = {controls + 1}\ntimescale = {case['timescale']}\n"
    )
    first = [0.01] + [0.5] * controls  # played first: the waits are measured from it
    model = Heard([first, *outputs], then=[1000.0] + [0.5] * controls)
    channel = Played()
    engine = Instrument(_setup(text, model, ctx.tmp), channels={"played": channel})
    # A stalled loop restarts the model's timing from now; this measures the rule itself.
    ctx.monkeypatch.setattr(engine_module, "MAX_LATE", float("inf"))

    async def scenario() -> list[float]:
        with engine.subscribe() as events:
            await engine.start()
            deadlines = []
            async for event in events:
                if event.kind == "output":
                    deadlines.append(event.detail["deadline"])
                    if len(deadlines) == len(outputs) + 1:
                        break
        await engine.stop()
        return deadlines

    deadlines = _play(scenario())
    want = case["expected"]
    np.testing.assert_allclose(
        np.diff(deadlines), [step["wait"] for step in want], atol=tol, rtol=0
    )
    np.testing.assert_allclose(channel.sent[1:], [s["output"] for s in want], atol=tol, rtol=0)
    fed_back = model.fed[2 : 2 + len(want)]  # after the seed and the first event
    np.testing.assert_allclose(
        fed_back, [step["next_model_input"] for step in want], atol=tol, rtol=0
    )


# -- data and models -------------------------------------------------------------------


def dataset(case: dict[str, Any], tol: float, ctx: Context) -> None:
    """The lines as a log file, collected into a dataset, saved in both formats and
    read back. Datasets hold float32, as IMPSY's do: the expected rows are compared
    once rounded to float32."""
    dimension = case["dimension"]
    logs = ctx.tmp / "logs"
    logs.mkdir()
    log = logs / f"2026-09-26T10-00-00-{dimension}d-mdrnn.log"
    log.write_text("".join(line + "\n" for line in case["log_lines"]))
    collected = datasets.from_logs(logs, dimension)
    want = np.asarray(case["expected"], np.float32)
    (rows,) = collected.dataset.performances
    np.testing.assert_allclose(rows, want, atol=tol, rtol=0)
    for format in ("antiphon", "impsy"):
        saved = datasets.save(ctx.tmp / f"{format}.npz", collected.dataset, format)
        (again,) = datasets.load(saved).performances
        np.testing.assert_array_equal(again, rows)


DRAWS = 3000
"""Draws per step when checking that the sampler draws from the vector's mixture."""


def model(case: dict[str, Any], tol: float, ctx: Context) -> None:
    """The fixed-weight ``.tflite``, read by antiphon itself (not run by LiteRT): the
    network's outputs exactly, and what antiphon's sampler draws from them."""
    expected = case["expected"]
    predictor = loader.open_model(ctx.folder / case["model_file"], seed=0)
    assert isinstance(predictor, MDRNN)
    arch = predictor.architecture
    d, m = arch.dimension, arch.mixtures
    assert expected["introspected"] == {
        "dimension": d,
        "units": arch.units,
        "mixtures": m,
        "layers": arch.layers,
    }
    compared = 0
    for given, want in zip(case["steps"], expected["steps"], strict=True):
        if given.get("reset"):
            assert want is None
            predictor.reset()
            continue
        out = predictor.step(given["input"]).astype(np.float64)
        scaled = np.asarray(given["input"], np.float32) * np.float32(SCALE_FACTOR)
        np.testing.assert_allclose(scaled, want["model_input"], atol=tol)
        np.testing.assert_allclose(out, want["mdn_output"], atol=tol)
        mus, _, logits = mdn.split(out, d, m)
        np.testing.assert_allclose(mdn.softmax(logits, case["pi_temp"]), want["pi"], atol=tol)
        np.testing.assert_allclose(mus / SCALE_FACTOR, want["mu"], atol=tol)
        _draws_follow(predictor, out.tolist(), case, want)
        compared += 1
    assert compared == sum(1 for step in case["steps"] if not step.get("reset"))


def _draws_follow(predictor: MDRNN, out: list[float], case: dict[str, Any], want: Any) -> None:
    """antiphon's sampler, at the vector's temperatures, picks mixture k with
    probability pi[k] and spreads each value by std[k] around mu[k] (in IMPSY's units:
    divided by 10). Draws are seeded, so the counts are the same on every run."""
    mu, std, pi = (np.asarray(want[key]) for key in ("mu", "std", "pi"))
    predictor.pitemp, predictor.sigmatemp = case["pi_temp"], 0.0  # a draw is its mixture's mu
    picked = np.zeros(len(pi))
    for _ in range(DRAWS):
        drawn = np.asarray(predictor.sampler.sample(out, activated=True)) / SCALE_FACTOR
        picked[int(np.argmin(np.abs(mu - drawn).sum(axis=1)))] += 1
    spread = 5 * np.sqrt(DRAWS * pi * (1 - pi)) + 1
    assert np.all(np.abs(picked - DRAWS * pi) <= spread), (picked / DRAWS, pi)
    predictor.pitemp, predictor.sigmatemp = 1e-6, case["sigma_temp"]  # the likeliest mixture
    k = int(np.argmax(pi))
    drawn = (
        np.array([predictor.sampler.sample(out, activated=True) for _ in range(DRAWS)])
        / SCALE_FACTOR
    )
    np.testing.assert_allclose(drawn.std(axis=0), std[k], rtol=0.1)
    assert np.all(np.abs(drawn.mean(axis=0) - mu[k]) <= 5 * std[k] / np.sqrt(DRAWS))


RUNNERS: dict[str, Callable[[dict[str, Any], float, Context], None]] = {
    "midi_input": midi_input,
    "midi_output": midi_output,
    "websocket_input": websocket_input,
    "websocket_output": websocket_output,
    "pipeline": pipeline,
    "playback": playback,
    "dataset": dataset,
    "model": model,
}
"""Vector file name (without .json) -> how its cases are run."""


def test_each_difference_names_a_case_that_exists():
    names = {param.id for param in _cases()}
    if names == {"no-vectors"}:
        pytest.skip(f"no IMPSY conformance vectors in {FOLDER}")
    present = {path.stem for path in _vector_files()}
    assert {key for key in DIFFERENCES if key.split("::")[0] in present} <= names


def test_an_unknown_kind_of_vector_fails_the_run_and_the_folder_can_be_moved(tmp_path):
    """A vector file the runner cannot run is a failure, not a skip; the folder is
    ``$ANTIPHON_CONFORMANCE_DIR``."""
    import subprocess
    import sys

    vectors = tmp_path / "vectors"
    vectors.mkdir()
    case = {"name": "knob", "dimension": 2, "log_lines": [], "expected": []}
    unknown = {"spec_version": "1.0.0", "tolerance": 1e-9, "cases": [case]}
    (vectors / "aftertouch.json").write_text(json.dumps(unknown))
    known = {**unknown, "cases": [{**case, "name": "one_row"}]}
    known["cases"][0]["log_lines"] = [
        "2026-09-26T10:00:00,interface,0.5",
        "2026-09-26T10:00:01,interface,0.25",
    ]
    known["cases"][0]["expected"] = [[1.0, 0.25]]
    (vectors / "dataset.json").write_text(json.dumps(known))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            __file__,
            "-k",
            "conformance_case",
        ],
        env={**os.environ, "ANTIPHON_CONFORMANCE_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stdout
    assert "1 failed, 1 passed" in result.stdout
    assert "aftertouch.json: a kind of conformance vector this runner does not know" in (
        result.stdout
    )
