"""Errors a user can cause, and how they are reported.

Every mistake in a scenario or model file, or on the command line, becomes a
:class:`UksimError` whose message is one line naming the file, the key and what is
wrong. The CLI prints that line and exits with code 2; no traceback reaches the user.
"""

from __future__ import annotations


class UksimError(Exception):
    """A problem the user can fix: printed as one line, exit code 2."""

    exit_code = 2


class ConfigError(UksimError):
    """A bad value in a scenario or model file.

    ``source`` is the file (or ``--set``), ``key`` the dotted key path, ``message`` what is
    wrong and, where it helps, what is allowed.
    """

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source = source
        self.key = key
        self.message = message
        where = f"{source}: {key}" if key else source
        super().__init__(one_line(f"{where}: {message}"))

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, str, str]]:
        # rebuilt from its three parts when it crosses from a worker process (pickle
        # would otherwise call __init__ with the message alone, and fail)
        return (type(self), (self.source, self.key, self.message))


def one_line(text: str) -> str:
    """``text`` with every unprintable character escaped (a key may hold a newline)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


class ToolError(UksimError):
    """A missing or failing external tool (for the measurement harness)."""
