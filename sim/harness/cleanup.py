"""Undoing everything the harness set up, on success, failure and signals.

:class:`CleanupStack` is a last-in-first-out list of undo actions, like
``contextlib.ExitStack``, with two differences: an undo action that fails is reported and
the rest still run, and while the stack unwinds SIGINT and SIGTERM are held back so a
second Ctrl-C cannot leave a namespace or an iptables rule behind.

:func:`signals_as_interrupt` turns SIGTERM into the same ``KeyboardInterrupt`` that
SIGINT raises, so both unwind the stack through ordinary exception handling.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType, TracebackType
from typing import Any

_HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_held() -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM for the duration; re-raise an interrupt afterwards.

    Yields the list of signal numbers that arrived meanwhile. When one did, a
    KeyboardInterrupt is raised on exit, unless an exception is already propagating.
    """
    arrived: list[int] = []

    def note(signum: int, _frame: FrameType | None) -> None:
        arrived.append(signum)

    previous = {s: signal.signal(s, note) for s in _HELD_SIGNALS}
    failed = False
    try:
        yield arrived
    except BaseException:
        failed = True
        raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if arrived and not failed:
            raise KeyboardInterrupt


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """While active, SIGTERM (and SIGINT) raise KeyboardInterrupt in the main thread."""
    previous = {s: signal.signal(s, _raise_interrupt) for s in _HELD_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class CleanupStack:
    """Undo actions run last-in-first-out when the ``with`` block ends, however it ends."""

    def __init__(self, log: Callable[[str], None] | None = None) -> None:
        self._actions: list[tuple[str, Callable[[], Any]]] = []
        self._log = log or (lambda msg: print(msg, file=sys.stderr))

    def push(self, description: str, action: Callable[[], Any]) -> None:
        """Register ``action`` (described for error messages) to run at close."""
        self._actions.append((description, action))

    def close(self) -> list[str]:
        """Run every action (signals held); return descriptions of those that failed."""
        failures: list[str] = []
        with signals_held():
            while self._actions:
                description, action = self._actions.pop()
                try:
                    action()
                except Exception as exc:
                    failures.append(description)
                    self._log(f"uksim: cleanup of {description} failed: {exc}")
        return failures

    def __enter__(self) -> CleanupStack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.close()
        except KeyboardInterrupt:
            if exc_type is None:
                raise
