"""examples/workshop.pd in headless Pure Data, playing with a running engine."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from peers import Ports, play, running, until, write_config

from antiphon.engine.setup import Overrides
from workspaces import model_in

PATCH = Path(__file__).resolve().parents[2] / "examples" / "workshop.pd"

# Moves the workshop's second input slider every 50 ms (when MOVE is 1), prints what
# its first output slider receives, and says "heard" once antiphon's voice in the
# patch is louder than 40 dB (env~'s scale: a real signal, from the DSP graph).
DRIVER = """#N canvas 0 0 400 300 12;
#X obj 10 10 workshop;
#X obj 10 40 loadbang;
#X obj 10 70 metro 50;
#X obj 10 100 random 100;
#X obj 10 130 / 100;
#X obj 10 160 s in2;
#X obj 10 200 r impsy-1;
#X obj 10 230 print received;
#X obj 200 40 r antiphon-level;
#X obj 200 70 > 40;
#X obj 200 100 change;
#X obj 200 130 sel 1;
#X obj 200 160 print heard;
#X msg 100 40 MOVE;
#X connect 1 0 13 0;
#X connect 13 0 2 0;
#X connect 2 0 3 0;
#X connect 3 0 4 0;
#X connect 4 0 5 0;
#X connect 6 0 7 0;
#X connect 8 0 9 0;
#X connect 9 0 10 0;
#X connect 10 0 11 0;
#X connect 11 0 12 0;
"""


def patch_for(tmp_path: Path, ports: Ports, *, move: bool) -> None:
    patch = PATCH.read_text()
    assert "netsend -u -b" in patch and "netreceive -u -b 6001" in patch
    assert "connect localhost 6000" in patch and "oscformat interface" in patch
    assert "\\; pd dsp 1" in patch and "dac~" in patch  # it switches its sound on
    (tmp_path / "workshop.pd").write_text(
        patch.replace("localhost 6000", f"localhost {ports.server}").replace(
            "-b 6001", f"-b {ports.client}"
        )
    )
    (tmp_path / "driver.pd").write_text(DRIVER.replace("MOVE", "1" if move else "0"))


async def pd_lines(tmp_path: Path, done) -> list[str]:
    """Run the driver in headless Pure Data until ``done(lines)``; its printed lines."""
    pd = await asyncio.create_subprocess_exec(
        "pd", "-nogui", "-noaudio", "-nomidi", "-stderr", "-open", "driver.pd",
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    lines: list[str] = []
    try:
        while not done(lines):
            line = (await asyncio.wait_for(pd.stderr.readline(), 20)).decode()
            assert line, f"Pure Data stopped: {lines}"
            lines.append(line)
    finally:
        pd.kill()
        await pd.wait()
    return lines


def received(lines: list[str]) -> list[float]:
    return [float(line.split(":")[1]) for line in lines if line.startswith("received:")]


NEEDS_PD = pytest.mark.skipif(
    shutil.which("pd") is None, reason="Pure Data (Debian puredata) is missing"
)


@NEEDS_PD
def test_workshop_patch_plays_with_the_engine(tmp_path):
    ports = Ports()
    patch_for(tmp_path, ports, move=True)
    config = write_config(tmp_path, ports, mode="polyphony", model=model_in(tmp_path))

    async def scenario():
        async with running(config, Overrides(timescale=0.01)) as engine:
            lines = await pd_lines(
                tmp_path, lambda lines: len(received(lines)) >= 5 and "heard: bang\n" in lines
            )
            await until(lambda: engine.outputs >= 5)
            assert engine.inputs >= 5
            assert engine.status()["last_input"]["source"] == "osc"
            assert engine.last_input[0] == 0.0 and engine.last_input[2] == 0.0
            assert all(0.0 <= v <= 1.0 for v in received(lines))
            assert engine.warnings.counts.get("length osc", 0) == 0

    play(scenario())


@NEEDS_PD
def test_participants_hear_the_model_answer_before_they_play(tmp_path):
    """The workshop config's callresponse: with nobody touching the patch, antiphon
    plays from the start, and the patch's synth voice sounds it."""
    ports = Ports()
    patch_for(tmp_path, ports, move=False)
    config = write_config(tmp_path, ports, model=model_in(tmp_path), threshold=0.5)

    async def scenario():
        async with running(config) as engine:
            lines = await pd_lines(tmp_path, lambda lines: "heard: bang\n" in lines)
            assert received(lines) and engine.outputs >= 1
            assert engine.inputs == 0  # nobody played: what was heard is antiphon's

    play(scenario())
