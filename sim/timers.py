"""Periodic work on an execution context: the timers a server runs beside its requests.

Not every piece of work on an I/O path is a request's: a Node.js service polling its
database every second, a kernel's periodic tick or housekeeping, a garbage collector on a
schedule. Such work holds the context (its thread, its core) while requests wait behind
it. A timer fires every ``every_ns``, first at ``offset_ns`` (or at a random phase,
uniform in ``[0, every_ns)``, drawn from the timer's own named stream, so replications
see the firing fall at different points of the requests' timeline), and each firing
submits ``cost`` (ns of work at speed 1, a distribution) to its context as one task, like
any stage's work: it queues for the context's threads and cores, is counted in the
context's utilisation, and is not a request (no latency is recorded for it).

Its time is booked in :class:`sim.stages.Accounts` under ``timer.NAME``: the CPU of every
firing, the time it waited for its context, and one visit per firing.

All times are nanoseconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sim.cpu import Context
from sim.kernel import Kernel
from sim.randomness import Distribution


@dataclass(frozen=True)
class TimerSpec:
    """A ``[timers.NAME]`` section in engine units."""

    name: str
    context: str
    every_ns: float  # period
    cost: Distribution  # work per firing (ns at speed 1)
    offset_ns: float | None = None  # first firing; None: a random phase in [0, every_ns)


class Timer:
    """Fires every ``spec.every_ns`` and submits its cost to ``context``."""

    def __init__(self, kernel: Kernel, spec: TimerSpec, context: Context,
                 draws: Iterator[float], first_ns: float, booked: Any, index: int) -> None:
        self.kernel = kernel
        self.spec = spec
        self.context = context
        self._draw = draws
        self.first_ns = first_ns
        self.acct = booked  # sim.stages.Accounts
        self.index = index
        self.inv_speed = 1.0 / context.speed
        self.firings = 0
        self.wait_ns = 0.0  # time firings waited for the context (all of them, unreset)
        self.done = 0  # firings whose work has completed

    def start(self) -> None:
        self.kernel.after(self.first_ns, self._fire)

    def _fire(self, _arg: object) -> None:
        self.kernel.after(self.spec.every_ns, self._fire)
        work = next(self._draw)
        self.firings += 1
        acct = self.acct
        t = work * self.inv_speed
        acct._cpu[self.index] += t
        acct._visits[self.index] += 1
        self.context.submit(work, self._done, (self.kernel.env._now, t))

    def _done(self, submitted: tuple[float, float]) -> None:
        t_submit, t = submitted
        wait = (self.kernel.env._now - t_submit) - t
        self.acct.wait[self.index] += wait
        self.wait_ns += wait
        self.done += 1
