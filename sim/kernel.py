"""The event kernel: a simpy environment plus a cheap way to schedule a callback.

Mechanisms that know their next event time (a FIFO server computing a departure, a
delay) do not need a simpy process per request: :meth:`Kernel.call_in` puts a tiny
event on simpy's own queue whose one callback receives a payload. simpy processes and
events still work beside it (``kernel.env``) for mechanisms that are easier to write as
generators. Time is in nanoseconds throughout the engine.

:attr:`Kernel.scheduled` counts the events scheduled through :meth:`call_in`; tests use
it to check that coalesced stages cost one event, not one per layer.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from itertools import count
from typing import Any

import simpy
from simpy.core import NORMAL, StopSimulation
from simpy.events import EventPriority


class _Wake:
    """The smallest object simpy's ``Environment.step`` accepts as an event."""

    __slots__ = ("_ok", "_value", "callbacks")

    def __init__(self, callback: Callable[[Any], None], payload: Any) -> None:
        self._ok = True
        self._value = payload
        self.callbacks = [callback]


class Kernel:
    """Owns the simulated clock (ns) and the event queue."""

    def __init__(self) -> None:
        self.env = simpy.Environment()
        self._queue = self.env._queue
        self._eid: count = self.env._eid
        self.scheduled = 0

    @property
    def now(self) -> float:
        return self.env._now

    def call_in(self, delay_ns: float, callback: Callable[[Any], None],
                payload: Any = None) -> None:
        """Run ``callback(event)`` after ``delay_ns``; the event's ``_value`` is ``payload``.

        ``delay_ns`` must be >= 0. Ties run in the order they were scheduled.
        """
        self.scheduled += 1
        heappush(
            self._queue,
            (self.env._now + delay_ns, NORMAL, next(self._eid), _Wake(callback, payload)),
        )

    def call_at(self, time_ns: float, callback: Callable[[Any], None], payload: Any = None) -> None:
        """Run ``callback(event)`` at absolute time ``time_ns`` (not before now)."""
        self.scheduled += 1
        heappush(self._queue, (time_ns, NORMAL, next(self._eid), _Wake(callback, payload)))

    def run(self, until: float | simpy.Event | None = None) -> None:
        if until is not None:
            self.env.run(until=until)
            return
        # ``env.run()`` with simpy's ``Environment.step`` inlined (the same steps in the same
        # order; one method call less per event, which is most of the engine's time).
        env = self.env
        queue = self._queue
        try:
            while True:
                try:
                    env._now, _, _, event = heappop(queue)
                except IndexError:
                    return
                callbacks, event.callbacks = event.callbacks, None
                try:
                    for callback in callbacks:
                        callback(event)
                except StopSimulation:
                    event.callbacks = callbacks[callbacks.index(callback) + 1:]
                    env.schedule(event, EventPriority(-1))
                    raise
                if not event._ok and not hasattr(event, "_defused"):
                    exc = type(event._value)(*event._value.args)
                    exc.__cause__ = event._value
                    raise exc
        except StopSimulation:
            return

    def stop(self) -> None:
        """End :meth:`run` after the current event (used by stopping rules)."""
        raise simpy.core.StopSimulation(None)
