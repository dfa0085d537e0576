"""examples/workshop.pd in headless Pure Data, playing with a running engine."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from peers import Ports, model_file, play, running, until, write_config

from antiphon.engine.setup import Overrides

PATCH = Path(__file__).resolve().parents[2] / "examples" / "workshop.pd"

# Moves the workshop's second input slider every 50 ms, and prints what its first
# output slider receives.
DRIVER = """#N canvas 0 0 400 300 12;
#X obj 10 10 workshop;
#X obj 10 40 loadbang;
#X obj 10 70 metro 50;
#X obj 10 100 random 100;
#X obj 10 130 / 100;
#X obj 10 160 s in2;
#X obj 10 200 r impsy-1;
#X obj 10 230 print received;
#X connect 1 0 2 0;
#X connect 2 0 3 0;
#X connect 3 0 4 0;
#X connect 4 0 5 0;
#X connect 6 0 7 0;
"""


@pytest.mark.skipif(shutil.which("pd") is None, reason="Pure Data (Debian puredata) is missing")
def test_workshop_patch_plays_with_the_engine(tmp_path):
    ports = Ports()
    patch = PATCH.read_text()
    assert "netsend -u -b" in patch and "netreceive -u -b 6001" in patch
    assert "connect localhost 6000" in patch and "oscformat interface" in patch
    (tmp_path / "workshop.pd").write_text(
        patch.replace("localhost 6000", f"localhost {ports.server}").replace(
            "-b 6001", f"-b {ports.client}"
        )
    )
    (tmp_path / "driver.pd").write_text(DRIVER)
    config = write_config(tmp_path, ports, mode="polyphony", model=model_file(tmp_path))

    async def scenario():
        async with running(config, Overrides(timescale=0.01)) as engine:
            pd = await asyncio.create_subprocess_exec(
                "pd", "-nogui", "-noaudio", "-nomidi", "-stderr", "-open", "driver.pd",
                cwd=tmp_path,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            try:
                received = []
                while len(received) < 5:
                    line = (await asyncio.wait_for(pd.stderr.readline(), 10)).decode()
                    if line.startswith("received:"):
                        received.append(float(line.split(":")[1]))
                await until(lambda: engine.outputs >= 5)
                assert engine.inputs >= 5
                assert engine.status()["last_input"]["source"] == "osc"
                assert engine.last_input[0] == 0.0 and engine.last_input[2] == 0.0
                assert all(0.0 <= v <= 1.0 for v in received)
                assert engine.warnings.counts.get("length osc", 0) == 0
            finally:
                pd.kill()
                await pd.wait()

    play(scenario())
