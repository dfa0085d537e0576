"""The one exception type users see as a message rather than a traceback."""


class AntiphonError(Exception):
    """A problem the user can fix; its text says what was wrong and what to do."""


def needs_extra(what: str, extra: str) -> str:
    """How to install an optional part; antiphon is installed from its source folder."""
    return (
        f"{what} (the '{extra}' extra): in the antiphon folder run "
        f"`.venv/bin/pip install -e '.[{extra}]' -c constraints.txt`"
    )


def shown(value: object, most: int = 40) -> str:
    """``value`` as a message may quote it: its repr, cut to ``most`` characters.

    What a stranger sends (an address, a word, a file name) is quoted this way so that
    a message, a log line or a dashboard never grows with it.
    """
    text = repr(value)
    return text if len(text) <= most else text[: most - 1] + "…"
