"""The one exception type users see as a message rather than a traceback."""


class AntiphonError(Exception):
    """A problem the user can fix; its text says what was wrong and what to do."""
