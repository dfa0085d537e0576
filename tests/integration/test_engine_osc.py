"""The engine with real UDP peers on 127.0.0.1: modes, commands, reload, bad input."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import socket

import pytest
from peers import OSCPeer, Ports, free_port, play, running, until, write_config

from antiphon.config import ConfigError
from antiphon.data.logs import read_log
from antiphon.engine import engine as engine_module
from antiphon.engine import instrument
from antiphon.engine.commands import CommandError
from antiphon.engine.setup import Overrides, prepare
from antiphon.errors import AntiphonError
from workspaces import edit_config, edited, model_in

pytestmark = pytest.mark.timeout(120)


def now() -> float:
    return asyncio.get_running_loop().time()


def impsy(messages):
    return [m for m in messages if m[1] == "/impsy"]


def nothing_pending(engine) -> bool:
    """Nothing is scheduled, so nothing more will play until something new arrives."""
    return len(engine._schedule) == 0


async def heard(peer: OSCPeer, count: int) -> list:
    return [await peer.next(10.0) for _ in range(count)]


def test_callresponse_listens_while_the_performer_plays_then_answers(tmp_path):
    """Told by the engine's own clock: it plays from the start (as IMPSY's does), and
    once the performer plays every answer comes at least ``threshold`` after the
    performer's latest input, however late the machine delivers anything."""
    threshold = 0.3

    async def scenario():
        ports = Ports()
        performer = await OSCPeer.listen()
        config = write_config(tmp_path, ports, model=model_in(tmp_path), threshold=threshold)
        async with running(config, Overrides(seed=1)) as engine:
            await until(lambda: engine.outputs >= 1)
            assert engine.inputs == 0  # nobody has played: it plays from the start
            with engine.subscribe(maxsize=4096) as events:
                for i in range(8):
                    performer.send(ports.server, "/interface", i / 8, 0.5, 0.9)
                    await asyncio.sleep(0.05)  # pacing: the performer's playing
                await until(lambda: engine.inputs == 8)
                playing = engine.outputs
                await until(lambda: engine.outputs >= playing + 4)  # it answered, went on
                performer.send(ports.server, "/interface", 0.2, 0.2, 0.2)
                await until(lambda: engine.inputs == 9)
                answered = engine.outputs
                await until(lambda: engine.outputs > answered)  # again after the silence
                return events.drain()

    events = play(scenario())
    last_input = None
    answers_after = []
    for event in events:
        if event.kind == "input":
            last_input = event.time
        elif event.kind == "output" and last_input is not None:  # not the opening's
            answers_after.append(event.detail["played"] - last_input)
    assert min(answers_after) >= threshold - 0.001  # never while the performer played
    assert len(answers_after) >= 5


def test_callresponse_can_wait_for_the_performer(tmp_path):
    async def scenario():
        ports = Ports()
        synth, performer = await OSCPeer.listen(ports.client), await OSCPeer.listen()
        config = write_config(tmp_path, ports, model=model_in(tmp_path), threshold=0.1)
        edit_config(config, adding={"interaction.wait_for_performer": True})
        async with running(config, Overrides(seed=1)) as engine:
            assert engine.wait_for_performer
            assert nothing_pending(engine) and engine.outputs == 0  # nobody played: it waits
            performer.send(ports.server, "/interface", 0.5, 0.5, 0.5)
            assert await synth.next(10.0)  # and answers after the performer's silence
            assert engine.outputs >= 1

    play(scenario())


def test_polyphony_answers_each_event_once(tmp_path):
    async def scenario():
        ports = Ports()
        synth, performer = await OSCPeer.listen(ports.client), await OSCPeer.listen()
        config = write_config(tmp_path, ports, mode="polyphony", model=model_in(tmp_path))
        async with running(config, Overrides(seed=2, timescale=0.1)) as engine:
            assert engine.outputs == 0 and nothing_pending(engine)
            for i in range(20):
                performer.send(ports.server, "/interface", i / 20, 1 - i / 20, 0.5)
                await asyncio.sleep(0.02)  # pacing: the performer's playing
            answers = impsy(await heard(synth, 20))
            await until(lambda: nothing_pending(engine))
            assert len(answers) == 20 and engine.outputs == engine.inputs == 20
            assert all(len(m[2]) == 3 and all(0 <= v <= 1 for v in m[2]) for m in answers)

    play(scenario())


def test_battle_plays_from_the_start_and_is_not_steered_by_the_performer(tmp_path):
    async def outputs(with_performer: bool) -> list[list[float]]:
        ports = Ports()
        synth, performer = await OSCPeer.listen(ports.client), await OSCPeer.listen()
        config = write_config(tmp_path, ports, mode="battle", model=model_in(tmp_path))
        async with running(config, Overrides(seed=3, timescale=2)) as engine:
            played = []
            while len(played) < 30:
                played.append((await synth.next(10.0))[2])
                if with_performer and len(played) < 30:
                    performer.send(ports.server, "/interface", 0.9, 0.1, 0.9)
            await until(lambda: engine.inputs == (29 if with_performer else 0))
        return played

    alone = play(outputs(False))
    steered = play(outputs(True))
    assert len(alone) == 30
    assert alone == steered  # same seed, same performance: the performer did not steer it


def test_useronly_logs_and_passes_through_but_never_plays(tmp_path):
    async def scenario():
        ports = Ports()
        synth, performer = await OSCPeer.listen(ports.client), await OSCPeer.listen()
        config = write_config(
            tmp_path, ports, mode="useronly", model=model_in(tmp_path), input_thru=True
        )
        async with running(config) as engine:
            for i in range(5):
                performer.send(ports.server, "/interface", 0.25, 0.5, i / 4)
                await asyncio.sleep(0.03)  # pacing: the performer's playing
            thru = impsy(await heard(synth, 5))
            assert engine.outputs == 0 and nothing_pending(engine)  # the thru, nothing else
            log_path = engine.status()["log"]
        assert [m[2][2] for m in thru] == [0.0, 0.25, 0.5, 0.75, 1.0]
        log = read_log(log_path)
        assert log.sources == ["interface"] * 5
        assert log.values[:, 2].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]

    play(scenario())


def test_live_mode_switching_on_the_osc_port_and_the_command_port(tmp_path):
    async def scenario():
        ports = Ports()
        synth, performer = await OSCPeer.listen(ports.client), await OSCPeer.listen()
        config = write_config(tmp_path, ports, mode="useronly", model=model_in(tmp_path))
        async with running(config, Overrides(timescale=3)) as engine:
            assert nothing_pending(engine)
            performer.send(ports.server, "/impsy/mode", "battle")
            assert (await synth.next(10.0))[1] == "/impsy"
            assert engine.mode == "battle"
            performer.send(ports.command, "/impsy/mode", "useronly")
            await until(lambda: engine.mode == "useronly")
            assert nothing_pending(engine)  # silent from now on
            performer.send(ports.command, "/impsy/mode", "polyphony")
            await until(lambda: engine.mode == "polyphony")
            before = engine.outputs
            performer.send(ports.server, "/interface", 0.1, 0.2, 0.3)
            await until(lambda: engine.outputs == before + 1)
            await until(lambda: nothing_pending(engine))  # one answer per event

    play(scenario())


def test_pause_silences_the_model_until_it_is_resumed(tmp_path):
    async def scenario():
        ports = Ports()
        synth, performer = await OSCPeer.listen(ports.client), await OSCPeer.listen()
        config = write_config(tmp_path, ports, mode="battle", model=model_in(tmp_path))
        async with running(config, Overrides(timescale=2)) as engine:
            await synth.next(10.0)
            performer.send(ports.server, "/impsy/pause", 1)
            await until(lambda: engine.paused)
            assert nothing_pending(engine)  # silent while paused
            performer.send(ports.command, "/impsy/pause", 0)
            played = engine.outputs
            await until(lambda: engine.outputs > played)

    play(scenario())


def test_temperature_timescale_and_reset_commands_from_either_port(tmp_path):
    async def scenario():
        ports = Ports()
        performer = await OSCPeer.listen()
        config = write_config(tmp_path, ports, mode="battle", model=model_in(tmp_path))
        async with running(config, Overrides(timescale=2)) as engine:
            with engine.subscribe() as events:
                performer.send(ports.server, "/impsy/sigmatemp", 0.5)
                performer.send(ports.server, "/impsy/pitemp", 2.0)
                performer.send(ports.command, "/impsy/timescale", 4.0)
                performer.send(ports.server, "/impsy/reset")
                await until(lambda: engine.timescale == 4.0)
                await until(lambda: any(e.kind == "reset" for e in events.drain()))
            status = engine.status()
            assert status["sigmatemp"] == 0.5 and status["pitemp"] == 2.0
            # the same handler answers the web UI
            assert engine.command("/impsy/mode", "polyphony") == "mode polyphony"

    play(scenario())


def test_bad_commands_are_refused_with_the_reason_and_never_fatal(tmp_path):
    async def scenario():
        ports = Ports()
        _synth, performer = await OSCPeer.listen(ports.client), await OSCPeer.listen()
        config = write_config(tmp_path, ports, mode="battle", model=model_in(tmp_path))
        async with running(config, Overrides(timescale=2)) as engine:
            with pytest.raises(CommandError, match="takes one of callresponse.*got .solo."):
                engine.command("/impsy/mode", "solo")
            # on the wire they are reported
            performer.send(ports.server, "/impsy/timescale", "fast")
            performer.send(ports.server, "/impsy/jump", 1)
            await until(lambda: len(engine.warnings.recent) >= 2)
            text = " ".join(m for _, m in engine.warnings.recent)
            assert "takes a number" in text and "unknown command '/impsy/jump'" in text
            played = engine.outputs
            await until(lambda: engine.outputs > played)  # and it plays on

    play(scenario())


def test_timescale_and_absolute_deadlines(tmp_path, monkeypatch):
    """Each deadline is the previous deadline + dt * timescale: no drift, whatever the load."""
    # a loop stalled for longer (by a busy machine) restarts from now: not measured here
    monkeypatch.setattr(engine_module, "MAX_LATE", float("inf"))

    async def scenario():
        ports = Ports()
        config = write_config(tmp_path, ports, mode="battle", model=model_in(tmp_path))
        async with running(config, Overrides(timescale=3, seed=4)) as engine:
            with engine.subscribe() as events:
                outputs = []
                async for event in events:
                    if event.kind == "output":
                        outputs.append(event.detail)
                    if len(outputs) == 40:
                        break
        for previous, current in itertools.pairwise(outputs):
            interval = current["deadline"] - previous["deadline"]
            assert interval == pytest.approx(current["dt"] * 3, abs=1e-9)
            assert current["played"] >= current["deadline"]
        total = outputs[-1]["deadline"] - outputs[0]["deadline"]
        assert total == pytest.approx(sum(o["dt"] for o in outputs[1:]) * 3, abs=1e-6)

    play(scenario())


def test_the_model_hears_dt_since_the_previous_performer_event(tmp_path, monkeypatch):
    monkeypatch.setattr(engine_module, "MAX_INPUT_DT", 0.25)

    async def scenario():
        ports = Ports()
        performer = await OSCPeer.listen()
        config = write_config(tmp_path, ports, mode="polyphony", model=model_in(tmp_path))
        before = now()
        async with running(config) as engine:
            after = now()
            heard, sent = [], []
            generate = engine.model.generate
            engine.model.generate = lambda event: heard.append(event) or generate(event)
            for pause in (0.0, 0.1, 0.15, 0.4):
                await asyncio.sleep(pause)  # pacing: the performer's playing
                performer.send(ports.server, "/interface", 0.5, 0.5, 0.5)
                sent.append(now())
            await until(lambda: len(heard) == 4)
        dts = [event[0] for event in heard]
        # the first is measured from the start, as IMPSY measures it
        assert min(sent[0] - after, 0.25) - 0.01 <= dts[0] <= min(sent[0] - before, 0.25) + 0.05
        assert dts[1] == pytest.approx(sent[1] - sent[0], abs=0.01)
        assert dts[2] == pytest.approx(sent[2] - sent[1], abs=0.01)
        assert dts[3] == 0.25  # a long pause is capped
        assert heard[1][1:] == [0.5, 0.5, 0.5]

    play(scenario())


def test_bad_input_is_dropped_or_repaired_counted_and_never_stops_the_music(tmp_path):
    async def scenario():
        ports = Ports()
        synth, performer = await OSCPeer.listen(ports.client), await OSCPeer.listen()
        config = write_config(tmp_path, ports, mode="polyphony", model=model_in(tmp_path))
        async with running(config, Overrides(timescale=0.001)) as engine:
            port = ports.server
            for _ in range(50):
                performer.send(port, "/interface", 0.5, 0.5)  # wrong length
            performer.send(port, "/interface", 0.5, math.nan, 0.5)
            performer.send(port, "/interface", 0.5, math.inf, 0.5)
            performer.send(port, "/interface", 0.5, "loud", 0.5)
            performer.send(port, "/unknown", 1.0)
            performer.send_raw(port, b"\x00garbage that is not OSC")
            performer.send_raw(port, b"/interface\x00\x00,fff\x00\x00\x00\x00")  # truncated
            counts = engine.warnings.counts
            await until(lambda: counts["osc-malformed"] == 2 and counts["length osc"] == 50)
            assert engine.outputs == 0 and nothing_pending(engine)
            performer.send(port, "/interface", 5.0, -1.0, 0.5)  # clamped
            assert (await synth.next(10.0))[1] == "/impsy"
            assert counts["length osc"] == 50
            assert counts["nan osc"] == 2 and counts["type osc"] == 1
            assert counts["osc-malformed"] == 2 and counts["range osc"] == 1
            assert any(k.startswith("osc-address") for k in counts)
            lines = [m for _, m in engine.warnings.recent if "dropped an input of 2" in m]
            assert len(lines) == 1  # 50 bad messages, one line (rate-limited)
            assert engine.last_input == [1.0, 0.0, 0.5]
            assert engine.inputs == 1 and engine.outputs == 1

    play(scenario())


def test_a_flood_of_input_cannot_grow_memory(tmp_path):
    async def scenario():
        ports = Ports()
        _synth, performer = await OSCPeer.listen(ports.client), await OSCPeer.listen()
        config = write_config(tmp_path, ports, mode="polyphony", model=model_in(tmp_path))
        async with running(config, Overrides(timescale=50)) as engine:  # answers come late
            with engine.subscribe(maxsize=16) as slow_observer:
                longest = 0
                for _burst in range(40):
                    for _ in range(100):
                        performer.send(ports.server, "/interface", 0.1, 0.2, 0.3)
                    await asyncio.sleep(0.005)  # paced, so the kernel keeps most of them
                    longest = max(longest, len(engine._schedule))
                await until(lambda: engine.warnings.counts["schedule full"] > 0)
                assert longest <= engine_module.MAX_PENDING
                assert engine.inputs > engine_module.MAX_PENDING
                assert engine.warnings.counts["schedule full"] > 0
                assert len(slow_observer.drain()) <= 16 and slow_observer.dropped > 0
            assert engine.status()["inputs"] == engine.inputs  # still answering

    play(scenario())


def test_monitor_stream_and_prediction_log(tmp_path):
    async def scenario():
        ports = Ports()
        monitor = await OSCPeer.listen(ports.monitor)
        performer = await OSCPeer.listen()
        config = write_config(tmp_path, ports, mode="polyphony", model=model_in(tmp_path))
        async with running(config, Overrides(timescale=0.01)) as engine:
            for _ in range(3):
                performer.send(ports.server, "/interface", 0.25, 0.5, 0.75)
                await asyncio.sleep(0.05)  # pacing: the performer's playing
            seen = await heard(monitor, 6)
            await until(lambda: engine.outputs == 3 and nothing_pending(engine))
            log_path = engine.status()["log"]
        addresses = [m[1] for m in seen]
        assert addresses.count("/monitor/in") == 3 and addresses.count("/monitor/out") == 3
        assert seen[0][2] == [0.25, 0.5, 0.75]
        log = read_log(log_path)
        assert log.sources.count("interface") == 3 and log.sources.count("rnn") == 3

    play(scenario())


def test_reload_applies_a_new_config_and_keeps_playing_when_it_is_bad(tmp_path):
    async def scenario():
        ports = Ports()
        synth, performer = await OSCPeer.listen(ports.client), await OSCPeer.listen()
        model = model_in(tmp_path)
        config = write_config(tmp_path, ports, mode="useronly", model=model)
        async with running(config) as engine:
            with engine.subscribe() as events:
                write_config(tmp_path, ports, mode="battle", model=model, timescale=2)
                performer.send(ports.server, "/impsy/reload")
                assert (await synth.next(10.0))[1] == "/impsy"
                assert engine.mode == "battle" and engine.timescale == 2
                kinds = [e.kind for e in events.drain()]
                assert "reload" in kinds
            text = config.read_text()
            config.write_text(edited(text, {"interaction.mode": "solo"}))
            with pytest.raises(ConfigError, match="interaction.mode"):
                await engine.reload()
            played = engine.outputs
            await until(lambda: engine.outputs > played)  # still playing the old setup
            assert engine.mode == "battle"
            config.write_text(edited(text, {"model.file": str(tmp_path / "missing.safetensors")}))
            with pytest.raises(Exception, match="missing.safetensors"):
                await engine.reload()
            assert any("reload failed" in m for _, m in engine.warnings.recent)

    play(scenario())


def test_status_snapshot_for_a_dashboard(tmp_path):
    async def scenario():
        ports = Ports()
        performer = await OSCPeer.listen()
        config = write_config(tmp_path, ports, mode="polyphony", model=model_in(tmp_path))
        async with running(config, Overrides(timescale=0.01)) as engine:
            for _ in range(5):
                performer.send(ports.server, "/interface", 0.1, 0.2, 0.3)
                await asyncio.sleep(0.02)  # pacing: the performer's playing
            await until(lambda: engine.outputs == 5)
            status = engine.status()
        assert status["mode"] == "polyphony" and status["dimension"] == 4
        assert status["model"]["name"].startswith("model-dim4")
        assert "dimension 4" in status["model"]["description"]
        assert status["inputs_per_second"] > 0 and status["outputs_per_second"] > 0
        assert status["last_input"]["source"] == "osc"
        assert status["last_input"]["values"] == pytest.approx([0.1, 0.2, 0.3])
        assert len(status["last_output"]["values"]) == 3
        assert status["channels"][0]["name"] == "osc" and status["uptime"] > 0
        assert status["labels"] == ["x1", "x2", "x3"]
        assert json.loads(json.dumps(status)) == status  # ready to send to a browser

    play(scenario())


def test_a_port_already_in_use_stops_the_start_with_a_clear_message(tmp_path):
    async def scenario():
        ports = Ports()
        config = write_config(tmp_path, ports, mode="useronly")
        async with running(config):
            with pytest.raises(AntiphonError, match="is another antiphon or IMPSY running"):
                async with running(config):
                    pass

    play(scenario())


def test_reload_keeps_a_channel_whose_new_port_is_taken(tmp_path):
    async def scenario():
        ports = Ports()
        synth, performer = await OSCPeer.listen(ports.client), await OSCPeer.listen()
        model = model_in(tmp_path)
        config = write_config(tmp_path, ports, mode="polyphony", model=model)
        async with running(config, Overrides(timescale=0.01)) as engine:
            busy = await OSCPeer.listen()  # someone else holds the port we move to
            taken = busy.transport.get_extra_info("sockname")[1]
            edit_config(config, {"osc.server_port": taken})
            await engine.reload()
            assert any("keeping the previous [osc]" in m for _, m in engine.warnings.recent)
            performer.send(ports.server, "/interface", 0.1, 0.2, 0.3)  # the old port still works
            assert (await synth.next(10.0))[1] == "/impsy"

    play(scenario())


def test_stopping_during_a_reload_waits_for_it_and_frees_every_port(tmp_path, monkeypatch):
    """A reload midway through reopening a channel is neither cut off (leaving its old
    port half-closed) nor allowed to open a port after everything was closed."""

    async def scenario():
        ports = Ports()
        config = write_config(tmp_path, ports, mode="useronly")
        engine = instrument.Instrument(prepare(config, Overrides()))
        await engine.start()
        old = engine.channels["osc"]
        gate = asyncio.Event()
        closing = old._close

        async def held() -> None:  # the old [osc] takes its time to close
            await gate.wait()
            await closing()

        monkeypatch.setattr(old, "_close", held)
        moved = free_port()
        edit_config(config, {"osc.server_port": moved})
        engine.command("/impsy/reload")
        await until(lambda: "osc" not in engine.channels)  # the reload is closing it
        stopping = asyncio.create_task(engine.stop())
        done, _ = await asyncio.wait([stopping], timeout=1.0)
        assert not done  # stop waits for the reload under way
        gate.set()
        await stopping
        assert all(channel.closed for channel in engine.channels)
        return ports.server, moved

    for port in play(scenario()):  # the old port and the new one are both free again
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as free:
            free.bind(("127.0.0.1", port))
