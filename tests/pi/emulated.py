"""An emulated Raspberry Pi: a 64-bit Debian system booted under qemu-system-aarch64,
reached as a Pi is, over the network: ssh for what a person types on the Pi, and the
forwarded web UI and OSC ports for what a laptop sends it."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SUITE = os.environ.get("ANTIPHON_PI_SUITE", "")

REPO = Path(__file__).resolve().parents[2]
EMULATED = REPO / "deploy" / "emulated"
BUILD = REPO / "build" / "pi"

BOOT_TIMEOUT = 15 * 60
"""Seconds for the emulated system to boot as far as ssh (about 1-2 minutes here)."""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], Any], timeout: float, what: str, every: float = 2.0) -> Any:
    """Poll until ``condition()`` is truthy (and return it) or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class EmulatedPi:
    """One boot after another of one disk: ssh in, copy files, pull the plug."""

    def __init__(self, image: Path, disk: Path, console: Path) -> None:
        self.image, self.disk, self.console = image, disk, console
        self.ssh_port, self.web_port = free_port(), free_port()
        self.osc_port = free_port(socket.SOCK_DGRAM)
        self.process: subprocess.Popen | None = None

    @property
    def web(self) -> str:
        return f"127.0.0.1:{self.web_port}"

    def boot(self) -> float:
        """Start the machine and wait for ssh; returns the seconds that took."""
        started = time.monotonic()
        env = {
            **os.environ,
            "SSH_PORT": str(self.ssh_port),
            "WEB_PORT": str(self.web_port),
            "OSC_PORT": str(self.osc_port),
            "CONSOLE": str(self.console),
        }
        self.process = subprocess.Popen(
            [EMULATED / "boot.sh", self.image, self.disk],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        self.wait_for_ssh()
        return time.monotonic() - started

    def wait_for_ssh(self) -> None:
        def answers() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"QEMU exited ({self.process.returncode}); see {self.console}")
            return self.ssh("true", timeout=60, check=False).returncode == 0

        wait_for(answers, BOOT_TIMEOUT, f"ssh on the emulated Pi (console: {self.console})", 5)

    def ssh_command(self) -> list[str]:
        return [
            "ssh",
            "-i", str(self.image / "id_ed25519"),
            "-p", str(self.ssh_port),
            "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR",
            "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=30",
            "-o", "ServerAliveInterval=30",
        ]  # fmt: skip

    def ssh(
        self, command: str, *, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess:
        """Run a shell command on the Pi as root."""
        try:
            result = subprocess.run(
                [*self.ssh_command(), "root@127.0.0.1", command],
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as e:
            if check:
                raise
            return subprocess.CompletedProcess(e.cmd, 255, "", "timed out")
        if check and result.returncode != 0:
            raise AssertionError(
                f"on the Pi: {command}\nexit {result.returncode}\n{result.stdout[-3000:]}"
                f"\n{result.stderr[-3000:]}"
            )
        return result

    def copy_in(self, *sources: Path, to: str) -> None:
        scp = ["scp", "-r", *self.ssh_command()[1:]]
        scp[scp.index("-p")] = "-P"
        subprocess.run([*scp, *map(str, sources), f"root@127.0.0.1:{to}"], check=True, timeout=600)

    def boot_id(self) -> str:
        return self.ssh("cat /proc/sys/kernel/random/boot_id").stdout.strip()

    def reboot(self) -> float:
        """``reboot`` as a person types it; returns seconds until ssh answers again."""
        before = self.boot_id()
        started = time.monotonic()
        self.ssh("systemctl reboot", check=False, timeout=60)
        wait_for(
            lambda: (
                self.ssh(
                    "cat /proc/sys/kernel/random/boot_id", timeout=60, check=False
                ).stdout.strip()
                not in ("", before)
            ),
            BOOT_TIMEOUT,
            "the Pi to come back after reboot",
            5,
        )
        return time.monotonic() - started

    def pull_the_plug(self) -> None:
        """A power cut: the emulator dies at once, the guest gets no warning."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=60)
        self.process = None

    def shut_down(self) -> None:
        if self.process is None:
            return
        self.ssh("systemctl poweroff", check=False, timeout=60)
        try:
            self.process.wait(timeout=300)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def antiphon(*args: str | Path, cwd: Path | None = None, timeout: float = 600) -> str:
    """The antiphon command on this computer (the laptop), which must succeed."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("antiphon")), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )
    assert result.returncode == 0, f"antiphon {shlex.join(map(str, args))}: {result.stderr}"
    return result.stdout
