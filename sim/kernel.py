"""The event kernel: the simulated clock and the queue of callbacks to run.

Every mechanism of the engine knows when its next event happens (a FIFO server computes
a departure, a delay its end), so an event is just a callback to run at a time: a heap of
``(time, sequence, function, argument)`` entries, popped in time order, ties in the
order they were scheduled (the sequence number). :meth:`Kernel.at` and
:meth:`Kernel.after` schedule ``function(argument)``: the hot paths' form, no object is
made per event. :meth:`Kernel.call_at` and :meth:`Kernel.call_in` schedule the *event
form*, ``callback(event)`` with the payload in ``event._value``, the convention of the
simpy events the engine was first written with; mechanisms written that way keep
working, and both forms share one queue and one order.

The current time is ``kernel.env._now`` (ns; a plain attribute, read on every hot path;
``kernel.now`` reads it too). :attr:`Kernel.scheduled` counts the events scheduled;
tests use it to check that coalesced stages cost one event, not one per layer.

:meth:`Kernel.run` pops events in bursts of :data:`BURST` (``Kernel._run_some``), so
that the loop is in a function the interpreter has seen called often enough to specialise
(see there). Hot paths elsewhere push onto ``kernel._queue`` with ``next(kernel._seq)``
themselves, as :meth:`Kernel.at` does, to save a call.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from itertools import count
from typing import Any

BURST = range(1024)  # events per call of Kernel._run_some


class _Clock:
    """The simulated time in ns, ``_now`` (named as simpy's environment names it)."""

    __slots__ = ("_now",)

    def __init__(self) -> None:
        self._now = 0.0


class _Event:
    """What an event-form callback receives: the payload as ``_value``."""

    __slots__ = ("_value",)

    def __init__(self, payload: Any) -> None:
        self._value = payload


class _Stop(Exception):
    """Raised by :meth:`Kernel.stop` inside a callback; ends :meth:`Kernel.run`."""


class Kernel:
    """Owns the simulated clock (ns) and the event queue."""

    def __init__(self) -> None:
        self.env = _Clock()
        # (time ns, sequence number, function, argument): the sequence breaks ties
        self._queue: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self._seq = count()  # sequence numbers: one per event scheduled
        self._peeks = 0  # sequence numbers taken by :attr:`scheduled` to read the count

    @property
    def now(self) -> float:
        return self.env._now

    @property
    def scheduled(self) -> int:
        """Events scheduled so far (run, or still waiting in the queue): the sequence
        numbers handed out, less those this property took to read the counter."""
        self._peeks += 1
        return next(self._seq) - self._peeks + 1

    def at(self, time_ns: float, fn: Callable[[Any], None], arg: Any = None) -> None:
        """Run ``fn(arg)`` at absolute time ``time_ns`` (not before now).

        Ties run in the order they were scheduled.
        """
        heappush(self._queue, (time_ns, next(self._seq), fn, arg))

    def after(self, delay_ns: float, fn: Callable[[Any], None], arg: Any = None) -> None:
        """Run ``fn(arg)`` after ``delay_ns`` (>= 0)."""
        heappush(self._queue, (self.env._now + delay_ns, next(self._seq), fn, arg))

    def call_at(self, time_ns: float, callback: Callable[[Any], None], payload: Any = None
                ) -> None:
        """Event form of :meth:`at`: ``callback(event)``, ``event._value`` is ``payload``."""
        heappush(self._queue, (time_ns, next(self._seq), callback, _Event(payload)))

    def call_in(self, delay_ns: float, callback: Callable[[Any], None], payload: Any = None
                ) -> None:
        """Event form of :meth:`after`: ``callback(event)``, ``event._value`` is ``payload``."""
        heappush(self._queue,
                 (self.env._now + delay_ns, next(self._seq), callback, _Event(payload)))

    def run(self, until: float | None = None) -> None:
        """Run events in time order until the queue is empty or :meth:`stop` is called;
        with ``until`` (ns), only those before it, and the clock then reads ``until``."""
        if until is not None:  # before any event at ``until`` itself (sequence -1)
            heappush(self._queue, (until, -1, self._stop_at_until, None))
        queue = self._queue
        try:
            while queue:
                self._run_some()
        except _Stop:
            pass

    def _run_some(self) -> None:
        """Run up to :data:`BURST` events (fewer if the queue runs dry).

        The loop is in a function called again and again, not in :meth:`run`, which is
        called once: CPython specialises a function's instructions once it has been
        called a few times (3.11: eight), so a loop in a function called once runs
        unspecialised, every attribute and global looked up the slow way."""
        clock = self.env
        queue = self._queue
        for _ in BURST:
            if not queue:
                return
            clock._now, _, fn, arg = heappop(queue)
            fn(arg)

    def _stop_at_until(self, _arg: object) -> None:
        self.stop()

    def stop(self) -> None:
        """End :meth:`run` after the current event (used by stopping rules)."""
        raise _Stop
