"""A fresh 64-bit Debian system, as a Raspberry Pi runs it: install, reboot, play,
update from a laptop, lose power, and measure memory. One run, in order: each test
continues from the state the previous one left (the same emulated Pi).

Times measured here are times under emulation, many times slower than a Pi: they are
recorded in the report as such and never asserted on.
"""

from __future__ import annotations

import re
import socket
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from emulated import SUITE, EmulatedPi, antiphon, free_port, wait_for
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

pytestmark = pytest.mark.timeout(3 * 3600)

DIMENSION = 9
WORKSPACE = "/home/antiphon/workspace"
SERVICE_UP = 10 * 60
"""Seconds for antiphon to start under emulation (Python imports are slow there)."""
HEALTHZ = "python3 -c 'import urllib.request as u; u.urlopen(\"http://127.0.0.1:4000/healthz\")'"
"""Does the web UI answer, asked on the Pi itself (a minimal system has no curl)."""
ANSWER = 5 * 60
"""Seconds for a first answer: the first prediction also loads and warms the model."""


class Laptop:
    """The laptop's OSC ports: sends /interface to the Pi, receives /impsy from it."""

    def __init__(self, pi: EmulatedPi) -> None:
        self.pi = pi
        self.inbox = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.inbox.bind(("127.0.0.1", free_port(socket.SOCK_DGRAM)))
        self.port = self.inbox.getsockname()[1]
        self.out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(self, *values: float) -> None:
        builder = OscMessageBuilder("/interface")
        for v in values:
            builder.add_arg(float(v))
        self.out.sendto(builder.build().dgram, ("127.0.0.1", self.pi.osc_port))

    def drain(self) -> None:
        self.inbox.setblocking(False)
        try:
            while True:
                self.inbox.recv(65536)
        except BlockingIOError:
            pass
        finally:
            self.inbox.setblocking(True)

    def answer(self, timeout: float = ANSWER) -> list[float]:
        """Play a gesture, then wait for the Pi's /impsy answer to it."""
        self.drain()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i in range(5):
                self.send(*[0.1 * i + 0.05 * k for k in range(DIMENSION - 1)])
            self.inbox.settimeout(20)
            try:
                message = OscMessage(self.inbox.recv(65536))
            except TimeoutError:
                continue
            if message.address == "/impsy":
                return list(message.params)
        raise AssertionError(f"no /impsy answer from the Pi in {timeout:.0f} s")


@pytest.fixture(scope="module")
def laptop(pi) -> Laptop:
    return Laptop(pi)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A laptop's workspace with a few synthetic performances and a dataset from them."""
    workspace = tmp_path_factory.mktemp("laptop") / "workspace"
    antiphon("init", workspace)
    antiphon("data", "synth", "-D", DIMENSION, "-n", "4", "-m", "0.5", "--seed", "1", cwd=workspace)
    antiphon("dataset", "-D", DIMENSION, "--synthetic", cwd=workspace)
    return workspace


def train(workspace: Path, size: str) -> Path:
    """A newly trained model (one short epoch: it only has to be a real model file)."""
    before = set((workspace / "models").glob("*.safetensors"))
    antiphon(
        "train", "-D", DIMENSION, "-M", size, "-N", "1", "--epoch-windows", "64",
        "--no-plot", "--seed", "1", cwd=workspace,
    )  # fmt: skip
    (model,) = set((workspace / "models").glob("*.safetensors")) - before
    return model


def service(pi: EmulatedPi, *properties: str) -> dict[str, str]:
    shown = pi.ssh(f"systemctl show antiphon.service -p {','.join(properties)}").stdout
    return dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)


def wait_until_playing(pi: EmulatedPi) -> str:
    """Wait until the service is active and its web UI answers; returns its main PID."""
    wait_for(
        lambda: pi.ssh(HEALTHZ, check=False, timeout=120).returncode == 0,
        SERVICE_UP,
        "antiphon's web UI on the Pi",
        5,
    )
    pid = service(pi, "MainPID")["MainPID"]
    assert pid != "0"
    return pid


def memory(pi: EmulatedPi, pid: str) -> dict[str, int]:
    """antiphon's resident memory and the system's, in MB."""
    status = pi.ssh(f"cat /proc/{pid}/status").stdout
    meminfo = pi.ssh("cat /proc/meminfo").stdout

    def kb(text: str, key: str) -> int:
        return int(re.search(rf"^{key}:\s+(\d+) kB", text, re.M).group(1))

    return {
        "rss_mb": round(kb(status, "VmRSS") / 1024),
        "peak_rss_mb": round(kb(status, "VmHWM") / 1024),
        "system_total_mb": round(kb(meminfo, "MemTotal") / 1024),
        "system_available_mb": round(kb(meminfo, "MemAvailable") / 1024),
        "system_free_mb": round(kb(meminfo, "MemFree") / 1024),
    }


def trust_this_network(pi: EmulatedPi) -> None:
    """The certificate authorities this computer adds to Debian's, on the Pi too.

    A network that inspects TLS (as this one does on its way to PyPI) needs its
    authority trusted by whatever downloads through it; a Pi on such a network needs
    the same step. Nothing is done when this computer adds none."""
    extra = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
    if not extra:
        return
    pi.copy_in(*extra, to="/usr/local/share/ca-certificates/")
    pi.ssh("update-ca-certificates >/dev/null")
    # pip's own list of authorities does not have them: use the system's, as here.
    pi.ssh("printf '[global]\\ncert = /etc/ssl/certs/ca-certificates.crt\\n' >/etc/pip.conf")


def test_install_as_on_a_fresh_pi(pi, wheel, laptop, report):
    """deploy/rpi/install.sh as its instructions say: apt, the user, the venv, the unit."""
    trust_this_network(pi)
    pi.ssh("mkdir -p /root/antiphon")
    pi.copy_in(Path(__file__).parents[2] / "deploy", wheel, to="/root/antiphon/")
    started = time.monotonic()
    result = pi.ssh(
        f"/root/antiphon/deploy/rpi/install.sh --from /root/antiphon/{wheel.name} 2>&1",
        timeout=2 * 3600,
    )
    report["install_s"] = round(time.monotonic() - started, 1)
    out = result.stdout
    assert "==> Done" in out and "antiphon, version" in out, out[-3000:]
    python = pi.ssh("python3 -c 'import sys; print(sys.version_info[:2])'").stdout.strip()
    report["python"] = python
    venv = "/opt/antiphon/venv/bin/python"
    if python >= "(3, 13)":
        # No python-rtmidi wheel for this Python on arm64: built here, and said so.
        assert "python-rtmidi" in out and "minutes" in out, out[-3000:]
    pi.ssh(f"{venv} -c 'import rtmidi, numpy, antiphon.web.app'")
    light = pi.ssh(f"{venv} -c 'import sys, antiphon.cli; print(\"torch\" in sys.modules)'")
    assert light.stdout.strip() == "False"
    assert pi.ssh("id -nG antiphon").stdout.split() >= ["antiphon"]
    assert {"audio", "dialout"} <= set(pi.ssh("id -nG antiphon").stdout.split())
    assert pi.ssh("systemctl is-enabled antiphon.service").stdout.strip() == "enabled"
    # The laptop's OSC port: antiphon's answers go to this computer (10.0.2.2 from inside).
    config = f"{WORKSPACE}/config.toml"
    pi.ssh(
        f"sed -i -e 's/^client_ip = .*/client_ip = \"10.0.2.2\"/'"
        f" -e 's/^client_port = .*/client_port = {laptop.port}/' {config}"
    )
    assert f"client_port = {laptop.port}" in pi.ssh(f"cat {config}").stdout


def test_after_a_reboot_the_service_plays_with_realtime_priority(pi, report):
    report["reboot_to_ssh_s"] = round(pi.reboot(), 1)
    started = time.monotonic()
    pid = wait_until_playing(pi)
    report["ssh_to_web_ui_s"] = round(time.monotonic() - started, 1)
    shown = service(pi, "ActiveState", "After", "Wants", "NRestarts", "TasksCurrent")
    assert shown["ActiveState"] == "active" and shown["NRestarts"] == "0"
    # It starts with the network up, but never waits for it to be "online" (DHCP,
    # a laptop plugged in): an instrument must play with no network at all.
    assert "network-online.target" not in shown["After"] + shown["Wants"]
    report["critical_chain"] = pi.ssh(
        "systemd-analyze critical-chain antiphon.service --no-pager 2>&1 | tail -n +3", check=False
    ).stdout.splitlines()
    report["boot_time"] = pi.ssh("systemd-analyze time --no-pager", check=False).stdout.strip()
    # The event loop's thread runs at SCHED_FIFO priority 10; every other thread does not.
    threads = pi.ssh(f"ps -L -o tid=,cls=,rtprio=,comm= -p {pid}").stdout.split("\n")
    rows = [line.split(None, 3) for line in threads if line.strip()]
    fifo = [row for row in rows if row[1] == "FF"]
    assert len(fifo) == 1 and fifo[0][2] == "10", threads
    report["threads"] = len(rows)
    report["thread_classes"] = sorted(f"{row[3]}:{row[1]}" for row in rows)
    report["tasks_in_service"] = int(shown["TasksCurrent"])
    processes = pi.ssh(
        "cat /sys/fs/cgroup/system.slice/antiphon.service/cgroup.procs"
    ).stdout.split()
    report["processes_in_service"] = len(processes)
    report["idle_memory"] = memory(pi, pid)


def test_a_laptop_plays_and_the_web_ui_answers(pi, laptop, report):
    started = time.monotonic()
    values = laptop.answer()
    report["first_answer_s"] = round(time.monotonic() - started, 1)
    assert len(values) == DIMENSION - 1 and all(0.0 <= v <= 1.0 for v in values)
    page = httpx.get(f"http://{pi.web}/", timeout=120, follow_redirects=True)
    assert page.status_code == 200 and "antiphon" in page.text.lower()


def test_push_model_use_plays_it_and_pull_logs_brings_the_take_back(
    pi, laptop, trained, tmp_path, report
):
    model = train(trained, "s")
    started = time.monotonic()
    out = antiphon("remote", "--url", pi.web, "push-model", "--use", model, timeout=1800)
    report["push_model_use_s"] = round(time.monotonic() - started, 1)
    assert model.stem in out or model.name in out, out
    wait_for(
        lambda: model.stem in antiphon("remote", "--url", pi.web, "status", timeout=600),
        SERVICE_UP,
        "the Pi to play the pushed model",
        5,
    )
    laptop.answer()
    # What was just played is in the Pi's log: it comes back to the laptop.
    marker = 0.123
    for _ in range(10):
        laptop.send(*([marker] * (DIMENSION - 1)))
        time.sleep(0.05)
    logs = tmp_path / "logs"

    def pulled() -> bool:
        antiphon("remote", "--url", pi.web, "pull-logs", "--into", logs, timeout=600)
        return any(f",interface,{marker!r}" in log.read_text() for log in logs.glob("*.log"))

    # Re-pulling only fetches what the laptop does not have yet: start each try afresh.
    def pulled_afresh() -> bool:
        for old in logs.glob("*"):
            old.unlink()
        return pulled()

    wait_for(pulled_afresh, 120, "the played events in the pulled log", 5)


def read_sequence(text: str) -> list[int]:
    """The numbers the power-cut test plays, in the order they were logged."""
    rows = [line.split(",") for line in text.splitlines() if ",interface," in line]
    # OSC carries 32-bit floats: 0.777 arrives as 0.7770000100135803.
    return [round(float(row[2]) * 10_000) for row in rows if abs(float(row[3]) - 0.777) < 1e-6]


def test_a_power_cut_loses_only_the_last_moments(pi, laptop, report):
    """Pull the plug while playing: after a reboot the log has all but the last ~0.1 s."""
    sent: list[tuple[int, float]] = []
    # Play until the log on the Pi's disk shows the gestures are being written...
    for seq in range(1, 10_000):
        laptop.send(seq / 10_000, 0.777, *([0.5] * (DIMENSION - 3)))
        sent.append((seq, time.monotonic()))
        time.sleep(0.02)
        if seq % 100 == 0:
            logged = pi.ssh(f"cat $(ls -t {WORKSPACE}/logs/*.log | head -n1)").stdout
            if read_sequence(logged):
                break
    # ... then three more seconds of playing, and the power goes.
    until = time.monotonic() + 3.0
    seq = sent[-1][0]
    while time.monotonic() < until:
        seq += 1
        laptop.send(seq / 10_000, 0.777, *([0.5] * (DIMENSION - 3)))
        sent.append((seq, time.monotonic()))
        time.sleep(0.02)
    cut = time.monotonic()
    pi.pull_the_plug()

    report["power_cut_boot_to_ssh_s"] = round(pi.boot(), 1)
    wait_until_playing(pi)  # by itself, after an unclean shutdown
    logged = pi.ssh(f"cat {WORKSPACE}/logs/*.log").stdout
    sequence = read_sequence(logged)
    assert sequence, "nothing of the take survived"
    first, last = sequence[0], sequence[-1]
    assert sequence == list(range(first, last + 1)), "events missing before the last moment"
    sent_at = dict(sent)
    lost = cut - sent_at[last]
    report["power_cut"] = {
        "events_played": len(sent),
        "events_kept": len(sequence),
        "events_lost_at_the_end": sent[-1][0] - last,
        "seconds_lost_at_the_end": round(lost, 3),
        "event_spacing_s": 0.02,
    }
    # ~0.1 s by design (FLUSH_INTERVAL) plus the writer's fsync and the emulated disk.
    assert lost < 1.0, report["power_cut"]


@pytest.mark.parametrize("size", ["s", "xl"])
def test_memory_playing_s_and_xl_models(pi, laptop, trained, size, report):
    """The xl model must fit a Zero 2 W's 512 MB with room to spare."""
    model = train(trained, size)
    antiphon("remote", "--url", pi.web, "push-model", "--use", model, timeout=1800)
    wait_for(
        lambda: model.stem in antiphon("remote", "--url", pi.web, "status", timeout=600),
        SERVICE_UP,
        f"the Pi to play the {size} model",
        5,
    )
    for _ in range(3):
        laptop.answer()

    for page in ("/", "/models", "/logs"):  # the web UI in use while it plays
        httpx.get(f"http://{pi.web}{page}", timeout=120, follow_redirects=True)
    pid = service(pi, "MainPID")["MainPID"]
    numbers = memory(pi, pid)
    numbers["model_bytes"] = model.stat().st_size
    numbers["restarts"] = int(service(pi, "NRestarts")["NRestarts"])
    report[f"memory_{size}"] = numbers
    assert numbers["restarts"] == 0
    assert "out of memory" not in pi.ssh("dmesg", check=False).stdout.lower()
    assert numbers["system_total_mb"] < 512  # the machine really is a 512 MB one
    assert numbers["system_available_mb"] > 100, numbers  # room to spare


def test_report_names_the_suite(report):
    report["finished"] = datetime.now().isoformat(timespec="seconds")
    assert report["suite"] == SUITE
