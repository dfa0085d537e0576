"""The ``/impsy/...`` commands: one table of address, argument and handler.

A command arrives from OSC, the localhost command port, the JSON API or a button of
the web UI; all of them are read here, with the same argument checks and the same
numeric bounds as config.toml (``antiphon.limits``), so no way in can set what
another refuses. A command that cannot be carried out raises CommandError with a
message short enough to show on a dashboard; nothing a sender writes reaches a log
unbounded (``antiphon.errors.shown`` cuts it down).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from antiphon.errors import AntiphonError, shown
from antiphon.limits import MODES, PITEMP, SIGMATEMP, TIMESCALE, Bounds

PREFIX = "/impsy/"


class CommandError(AntiphonError):
    """A command that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class Word:
    """One of a fixed set of words (a mode)."""

    choices: tuple[str, ...]

    def read(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.choices:
            raise ValueError(f"takes one of {', '.join(self.choices)}, got {shown(value)}")
        return value


@dataclass(frozen=True)
class Number:
    """A number within a setting's Bounds."""

    allowed: Bounds

    def read(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"takes a number, got {shown(value)}")
        problem = self.allowed.problem(value)
        if problem:
            raise ValueError(f"= {shown(value)} is not allowed; {problem}")
        return float(value)


@dataclass(frozen=True)
class Switch:
    """On or off, written 1 or 0 (OSC has no booleans that every sender can write)."""

    def read(self, value: Any) -> bool:
        if isinstance(value, int | float) and not isinstance(value, bool) and value in (0, 1):
            return bool(value)
        if isinstance(value, bool):
            return value
        raise ValueError(f"takes 1 (on) or 0 (off), got {shown(value)}")


Argument = Word | Number | Switch


@dataclass(frozen=True)
class Command:
    name: str  # the address is PREFIX + name
    argument: Argument | None
    handler: str  # the engine's method that carries it out

    @property
    def address(self) -> str:
        return PREFIX + self.name


COMMANDS: dict[str, Command] = {
    command.address: command
    for command in (
        Command("mode", Word(MODES), "set_mode"),  # who plays when
        Command("pause", Switch(), "pause"),  # 1 pauses the model, 0 lets it play
        Command("reset", None, "reset"),  # forget what the model has heard
        Command("sigmatemp", Number(SIGMATEMP), "set_sigmatemp"),  # randomness of each value
        Command("pitemp", Number(PITEMP), "set_pitemp"),  # randomness of the next gesture
        Command("timescale", Number(TIMESCALE), "set_timescale"),  # 2 = half speed
        Command("reload", None, "request_reload"),  # read config.toml and the model again
    )
}


def parse(address: str, args: Sequence[Any]) -> tuple[Command, Any]:
    """The command and its checked argument (None for commands without one)."""
    command = COMMANDS.get(address)
    if command is None:
        raise CommandError(f"unknown command {shown(address)}; use {', '.join(COMMANDS)}")
    if command.argument is None:
        if args:
            raise CommandError(f"{address} takes no argument, got {len(args)}")
        return command, None
    if len(args) != 1:
        raise CommandError(f"{address} takes one argument, got {len(args)}")
    try:
        return command, command.argument.read(args[0])
    except ValueError as exc:
        raise CommandError(f"{address} {exc}") from None
