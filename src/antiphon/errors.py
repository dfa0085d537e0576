"""The one exception type users see as a message rather than a traceback."""


class AntiphonError(Exception):
    """A problem the user can fix; its text says what was wrong and what to do."""


def needs_extra(what: str, extra: str) -> str:
    """How to install an optional part; antiphon is installed from its source folder."""
    return (
        f"{what} (the '{extra}' extra): in the antiphon folder run "
        f"`.venv/bin/pip install -e '.[{extra}]' -c constraints.txt`"
    )
