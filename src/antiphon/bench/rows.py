"""A benchmark's result: rows of what was measured, against its budget."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import numpy as np


@dataclass
class Row:
    section: str
    name: str
    value: str
    budget: str = ""


def to_markdown(rows: list[Row]) -> str:
    lines = [
        f"antiphon bench on {_machine()}",
        "",
        "| what | measured | budget |",
        "|---|---|---|",
    ]
    lines += [f"| {r.section}: {r.name.strip()} | {r.value} | {r.budget} |" for r in rows]
    return "\n".join(lines) + "\n"


def _machine() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, NumPy {np.__version__}"
    )
