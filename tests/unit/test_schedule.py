"""Absolute deadlines, a bounded schedule, and the warnings and event stream."""

import asyncio

import pytest

from antiphon.engine.events import EngineEvent, EventHub, Warnings
from antiphon.engine.schedule import Schedule, new_event_loop


def run(coroutine):
    loop = new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def test_items_play_in_deadline_order_at_their_deadline():
    async def scenario():
        loop = asyncio.get_running_loop()
        played = []
        done = asyncio.Event()

        def play(deadline, item):
            played.append((item, loop.time() - deadline))
            if len(played) == 3:
                done.set()

        schedule = Schedule(loop, play)
        start = loop.time()
        schedule.push(start + 0.06, "c")
        schedule.push(start + 0.02, "a")
        removed = object()
        schedule.push(start + 0.01, removed)
        schedule.push(start + 0.04, "b")
        schedule.remove(removed)
        await asyncio.wait_for(done.wait(), 2)
        return played

    played = run(scenario())
    assert [item for item, _ in played] == ["a", "b", "c"]
    assert all(0 <= late < 0.05 for _, late in played)  # on time (loose: a shared machine)


def test_a_full_schedule_refuses_instead_of_growing():
    async def scenario():
        loop = asyncio.get_running_loop()
        schedule = Schedule(loop, lambda d, i: None, capacity=3)
        accepted = [schedule.push(loop.time() + 10, i) for i in range(5)]
        assert accepted == [True, True, True, False, False] and len(schedule) == 3
        schedule.clear()
        assert len(schedule) == 0 and schedule.next_deadline is None

    run(scenario())


def test_subscribers_drop_their_oldest_events_when_they_fall_behind():
    hub = EventHub()
    slow = hub.subscribe(maxsize=3)
    for i in range(10):
        hub.publish(EngineEvent("input", float(i), "osc", (0.5,)))
    assert [e.time for e in slow.drain()] == [7.0, 8.0, 9.0] and slow.dropped == 7
    slow.close()
    hub.publish(EngineEvent("input", 11.0))
    assert slow.drain() == [] and not hub.active
    assert EngineEvent("output", 1.0, "model", (0.25,), {"dt": 0.1}).as_dict() == {
        "kind": "output",
        "time": 1.0,
        "source": "model",
        "values": [0.25],
        "dt": 0.1,
    }


def test_subscriptions_are_async_iterators_that_end_when_closed():
    async def scenario():
        hub = EventHub()
        with hub.subscribe() as events:
            hub.publish(EngineEvent("mode", 0.0, detail={"mode": "battle"}))
            asyncio.get_running_loop().call_later(0.01, events.close)
            return [e async for e in events]

    assert [e.detail for e in run(scenario())] == [{"mode": "battle"}]


def test_warnings_are_counted_and_rate_limited():
    clock = [0.0]
    said = []
    warnings = Warnings(said.append, interval=5.0, clock=lambda: clock[0])
    for _ in range(100):
        warnings.report("length osc", "dropped a short input")
    warnings.report("nan osc", "dropped NaN")
    assert warnings.counts["length osc"] == 100
    assert said == ["dropped a short input", "dropped NaN"]
    clock[0] = 6.0
    warnings.report("length osc", "dropped a short input")
    assert said[-1] == "dropped a short input" and len(warnings.recent) == 3


def test_suppressed_warnings_are_summarised_when_the_window_ends():
    async def scenario():
        said = []
        warnings = Warnings(said.append, interval=0.05)
        for _ in range(10):
            warnings.report("garbage", "dropped garbage")
        assert said == ["dropped garbage"]  # the rest wait for the window's end

        async def summarised():
            while len(said) < 2:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(summarised(), 10)
        return said

    said = run(scenario())
    assert said == ["dropped garbage", "dropped garbage (9 more like this in the last 0.05 s)"]


@pytest.mark.parametrize("attempts", [0, 3, 10])
def test_backoff_doubles_up_to_a_limit(attempts):
    from antiphon.io.channel import Backoff

    backoff = Backoff()
    delays = [backoff.next() for _ in range(attempts + 1)]
    assert delays[-1] == min(30.0, 0.5 * 2**attempts)


def test_the_loop_watches_descriptors_beyond_selects_limit_of_1024():
    import resource
    import socket

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the open-file limit here is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    pairs = [socket.socketpair() for _ in range(560)]  # 1,120 descriptors
    try:
        reader, writer = pairs[-1]
        assert reader.fileno() >= 1024

        async def scenario():
            loop = asyncio.get_running_loop()
            received = loop.create_future()
            loop.add_reader(reader.fileno(), lambda: received.set_result(reader.recv(8)))
            writer.send(b"played")
            return await asyncio.wait_for(received, 5)

        assert run(scenario()) == b"played"
    finally:
        for a, b in pairs:
            a.close()
            b.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_timeouts_shorter_than_a_millisecond_are_kept_not_rounded_to_zero():
    import sys
    import time

    from antiphon.engine.schedule import PreciseEpollSelector

    if not sys.platform.startswith("linux"):
        pytest.skip("timerfd is Linux only")
    selector = PreciseEpollSelector()
    try:
        for timeout in (0.0002, 0.0015):
            start = time.monotonic()
            assert selector.select(timeout) == []
            assert time.monotonic() - start >= timeout  # it waited, and woke by itself
        assert selector.select(0) == []  # a zero timeout polls and returns at once
    finally:
        selector.close()


def test_items_always_due_still_let_the_loop_serve_everything_else():
    async def scenario():
        loop = asyncio.get_running_loop()
        played = 0

        def play(deadline, item):  # every item schedules another, due at once
            nonlocal played
            played += 1
            schedule.push(deadline, item)

        schedule = Schedule(loop, play)
        schedule.push(loop.time(), "again")
        await asyncio.sleep(0)  # the loop's other work still gets its turn
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
        writer.write(b"ping\n")
        answer = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        schedule.clear()
        return answer, played

    async def echo(reader, writer):
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    async def with_server():
        nonlocal server
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        async with server:
            return await scenario()

    server = None
    answer, played = run(with_server())
    assert answer == b"ping\n" and played > Schedule.BURST


def test_warning_kinds_stay_few_whatever_arrives():
    said = []
    warnings = Warnings(said.append, clock=lambda: 0.0)
    for i in range(10_000):
        warnings.report(f"kind {i}", f"warning {i}")
    assert len(warnings.counts) <= Warnings.MOST_KINDS + 1
    assert sum(warnings.counts.values()) == 10_000 and warnings.counts["other"] > 0
    assert len(warnings.recent) <= 50
