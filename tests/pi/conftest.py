"""The emulated Raspberry Pi's fixtures: the image, the wheel, a fresh system.

Collected only by ``make test-pi`` (which sets ANTIPHON_PI_SUITE): building the image
and emulating an arm64 computer takes tens of minutes, far beyond ``make test``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emulated import BUILD, EMULATED, REPO, SUITE, EmulatedPi

if not SUITE:
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def report() -> Iterator[dict[str, Any]]:
    """What the run measured, written to build/pi/SUITE/report.json at the end."""
    numbers: dict[str, Any] = {"suite": SUITE, "note": "times are under emulation, not Pi times"}
    yield numbers
    path = BUILD / SUITE / "report.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(numbers, indent=2) + "\n")
    print(f"\nemulated Pi ({SUITE}): measurements in {path}", file=sys.stderr)


@pytest.fixture(scope="session")
def image(report) -> Path:
    """The system image, built once and kept in build/pi/SUITE/image."""
    out = BUILD / SUITE / "image"
    started = time.monotonic()
    subprocess.run([EMULATED / "build-image.sh", SUITE, out], check=True, timeout=3 * 3600)
    report["image_build_s"] = round(time.monotonic() - started, 1)
    return out


@pytest.fixture(scope="session")
def wheel() -> Path:
    """antiphon as a wheel, as a release would ship it (pure Python: any CPU)."""
    out = BUILD / SUITE / "dist"
    for old in out.glob("antiphon-*.whl"):
        old.unlink()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(REPO)],
        check=True,
        timeout=600,
    )
    return next(out.glob("antiphon-*.whl"))


@pytest.fixture(scope="session")
def pi(image, report) -> Iterator[EmulatedPi]:
    """A fresh system each run: a copy-on-write layer over the image's disk."""
    run = BUILD / SUITE / "run"
    run.mkdir(parents=True, exist_ok=True)
    disk = run / "disk.qcow2"
    disk.unlink(missing_ok=True)
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", image / "disk.img", disk],
        check=True,
    )
    machine = EmulatedPi(image, disk, run / "console.log")
    report["first_boot_to_ssh_s"] = round(machine.boot(), 1)
    yield machine
    machine.shut_down()
