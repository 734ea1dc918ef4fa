"""One exception type for every user-facing mistake.

The CLI catches :class:`SupernetError` and prints its message without a traceback, so every
bad input (arch string, config key, dataset path, ground-truth file) must raise it with a message
that says what is wrong and how to fix it.
"""


class SupernetError(Exception):
    """A problem the user can fix: bad input, missing data, corrupt file."""
