"""The one exception type users see as a message rather than a traceback."""


class AntiphonError(Exception):
    """A problem the user can fix; its text says what was wrong and what to do."""


def needs_extra(what: str, extra: str) -> str:
    """How to install an optional part into the environment antiphon runs in: from its
    source folder when it was installed from one (a laptop), else by package name (an
    instrument's /opt/antiphon has no source folder)."""
    import sys
    from pathlib import Path

    source = Path(__file__).resolve().parents[2]
    if (source / "pyproject.toml").is_file() and (source / "constraints.txt").is_file():
        return (
            f"{what} (the '{extra}' extra): in {source} run "
            f"`{sys.executable} -m pip install -e '.[{extra}]' -c constraints.txt`"
        )
    packages = " ".join(_extra_packages(extra)) or f"'antiphon[{extra}]'"
    return f"{what} (the '{extra}' extra): run `{sys.executable} -m pip install {packages}`"


def _extra_packages(extra: str) -> list[str]:
    """The requirements of one extra, as pyproject.toml lists them."""
    from importlib import metadata

    try:
        requirements = metadata.requires("antiphon") or []
    except metadata.PackageNotFoundError:
        return []
    marker = f'extra == "{extra}"'
    return [f"'{r.split(';')[0].strip()}'" for r in requirements if marker in r.replace("'", '"')]


def shown(value: object, most: int = 40) -> str:
    """``value`` as a message may quote it: its repr, cut to ``most`` characters.

    What a stranger sends (an address, a word, a file name) is quoted this way so that
    a message, a log line or a dashboard never grows with it.
    """
    text = repr(value)
    return text if len(text) <= most else text[: most - 1] + "…"


class Substitution:
    """antiphon plays something other than what was asked (the bundled model for a
    missing one, 127.0.0.1 for a name that does not resolve): never silent, it is
    shown as an error wherever the instrument is watched (the banner, ``/api/status``,
    the dashboard, ``antiphon remote status``), with the reason and the fix."""

    __slots__ = ("asked", "fix", "playing", "reason")

    def __init__(self, asked: str, playing: str, reason: str, fix: str) -> None:
        self.asked, self.playing, self.reason, self.fix = asked, playing, reason, fix

    def __str__(self) -> str:
        return f"{self.playing} instead of {self.asked}: {self.reason}. Fix: {self.fix}"

    def as_dict(self) -> dict[str, str]:
        return {
            "asked": self.asked,
            "playing": self.playing,
            "reason": self.reason,
            "fix": self.fix,
            "message": str(self),
        }
