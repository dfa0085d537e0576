"""What the dashboard says about the computer: CPU, memory, disk, temperature."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import psutil

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")


def temperature() -> float | None:
    """CPU temperature in °C where the board reports one (a Raspberry Pi does)."""
    try:
        return int(THERMAL_ZONE.read_text().strip()) / 1000
    except (OSError, ValueError):
        return None


def snapshot(workspace_root: Path) -> dict[str, Any]:
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(str(workspace_root))
    process = psutil.Process()
    return {
        "host": platform.node(),
        "platform": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
        "cpu_percent": psutil.cpu_percent(interval=None),
        "cpus": psutil.cpu_count(),
        "memory_percent": memory.percent,
        "memory_total_mb": memory.total / 2**20,
        "process_rss_mb": process.memory_info().rss / 2**20,
        "disk_free_gb": disk.free / 2**30,
        "disk_percent": disk.percent,
        "temperature_c": temperature(),
    }
