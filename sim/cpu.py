"""CPU cores, execution contexts and how contexts share cores.

An *execution context* is something that runs code: an application's event loop, a
pool of worker threads, a vCPU thread, a host kernel thread such as vhost-net. It has
``threads`` (how many pieces of work it can run at once) and may run on a set of cores.
Contexts that can run on a common core form one *scheduling domain*; each domain has a
policy:

* run-to-completion (``cooperative``, or any domain where the threads never outnumber
  the cores, so nobody ever waits for a core): a task starts when its context has a free
  thread and the domain a free core, and runs uninterrupted. The departure time is known
  at submission (the Lindley recursion), so a task costs exactly one event.
* ``preemptive`` with more threads than cores: the runnable threads share the cores
  equally (egalitarian processor sharing, each thread at most one core); an event is
  scheduled for the next completion and moved when the number of runnable threads changes.
  This is the fluid limit of a time-slicing scheduler such as Linux's CFS.

Work is given in nanoseconds at speed 1.0; a core of speed ``s`` does it in ``work / s``.
Within a domain, pinning of a context to a subset of its cores is not modelled (the domain
acts as one pool), an approximation that is exact for one-core domains.

Where no task ever waits for a core, :meth:`RunToCompletion.bind` gives each context a
``submit`` and ``occupy`` of its own (closures over the domain's state, one call instead
of two), and :meth:`RunToCompletion.inline_state` hands a segment what it needs to do
the submission inline (:func:`sim.stages.fused_visit`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from heapq import heappop, heappush, heapreplace
from itertools import count
from typing import Any

from sim.kernel import Kernel

Callback = Callable[[Any], None]

COOPERATIVE = "cooperative"
PREEMPTIVE = "preemptive"
POLICIES = (PREEMPTIVE, COOPERATIVE)


@dataclass
class Core:
    """One CPU core: ``speed`` is relative (1.0 = the unit the costs are given in)."""

    index: int
    speed: float = 1.0
    scheduling: str = PREEMPTIVE


class Context:
    """An execution context: ``threads`` units of concurrency on a set of cores."""

    def __init__(self, name: str, threads: int, cores: tuple[int, ...], wake_ns: float = 0.0
                 ) -> None:
        self.name = name
        self.threads = threads
        self.cores = cores
        # CPU time (ns of work) to wake a sleeping thread when work arrives for it: the
        # scheduler's wake-up and context switch; for a halted vCPU, the IPI and VM entry
        self.wake_ns = wake_ns
        self.domain: Domain | None = None
        self.busy_ns = 0.0  # CPU time consumed (all threads), since the last reset
        self.tasks = 0
        # run-to-completion state: when each thread is next free (before time 0: asleep)
        self._free: list[float] = [-1.0] * threads
        # preemptive state
        self._queue: deque = deque()
        self._running = 0

    def submit(self, work_ns: float, callback: Callback, payload: Any) -> None:
        """Run ``work_ns`` of work on this context, then call ``callback(payload)``.

        A domain may replace this (and :meth:`occupy`) on the instance by a closure over
        its own state that does the same in one call (:meth:`RunToCompletion.bind`)."""
        self.domain.submit(self, work_ns, callback, payload)  # type: ignore[union-attr]

    def occupy(self, work_ns: float) -> None:
        """Take ``work_ns`` of this context's CPU time for work that nothing waits for
        (its cost in time is booked by whoever asked for it)."""
        self.domain.occupy(self, work_ns)  # type: ignore[union-attr]

    @property
    def speed(self) -> float:
        return self.domain.speed  # type: ignore[union-attr]

    def reset_counters(self) -> None:
        self.busy_ns = 0.0
        self.tasks = 0


def _nothing(_payload: Any) -> None:
    """What happens when CPU work that nothing waits for is done."""


class Domain:
    """Cores shared by a set of contexts, with one scheduling policy."""

    speed: float

    def submit(self, ctx: Context, work_ns: float, callback: Callback, payload: Any) -> None:
        raise NotImplementedError

    def occupy(self, ctx: Context, work_ns: float) -> None:
        """:meth:`submit` with nothing to call when the work is done."""
        self.submit(ctx, work_ns, _nothing, None)


class RunToCompletion(Domain):
    """FIFO per context, no preemption: departures computed at submission."""

    def __init__(self, kernel: Kernel, cores: list[Core], contexts: list[Context]) -> None:
        self.kernel = kernel
        self.speed = cores[0].speed
        self.cores_free = [0.0] * len(cores)
        self.contexts = contexts
        self._clock = kernel.env  # hot path: looked up once
        self._queue = kernel._queue
        self._seq = kernel._seq
        threads = sum(c.threads for c in contexts)
        # if no thread ever waits for a core, the core heap need not be consulted
        self.core_bound = threads > len(cores)
        if not self.core_bound:
            self.submit = self._submit_uncontended  # type: ignore[method-assign]

    def submit(self, ctx: Context, work_ns: float, callback: Callback, payload: Any) -> None:
        # The task is ready at max(now, its thread's free time). It takes the core that
        # fell free last but not after then (best fit), so that a core idle earlier stays
        # free for other contexts' tasks; if none is free by then, the first to fall free.
        start, t = self._ready(ctx, work_ns)
        cf = self.cores_free
        best = -1
        first = 0
        for i, f in enumerate(cf):
            if f <= start and (best < 0 or f > cf[best]):
                best = i
            if f < cf[first]:
                first = i
        if best < 0:
            best = first
            start = cf[first]
        cf[best] = start + t
        self._finish(ctx, start + t, t, callback, payload)

    def _ready(self, ctx: Context, work_ns: float) -> tuple[float, float]:
        """When a task of ``work_ns`` could start on its thread (ns), and how long it takes
        (ns, with the thread's wake-up if it sleeps)."""
        now = self._clock._now
        t = work_ns / self.speed
        start = ctx._free[0]
        if now > start:  # the thread sleeps: waking it costs its wake-up first
            start = now
            t += ctx.wake_ns / self.speed
        return start, t

    def occupy(self, ctx: Context, work_ns: float) -> None:
        if self.core_bound:
            super().occupy(ctx, work_ns)
            return
        # no task waits for a core: the thread is busy for longer, and no event is needed
        start, t = self._ready(ctx, work_ns)
        heapreplace(ctx._free, start + t)
        ctx.busy_ns += t
        ctx.tasks += 1

    def _submit_uncontended(self, ctx: Context, work_ns: float, callback: Callback,
                            payload: Any) -> None:
        """:meth:`submit` where threads never outnumber cores: no task waits for a core,
        only for its own thread (the hot path of most models)."""
        # start, t = self._ready(ctx, work_ns), inlined on the hot path
        now = self._clock._now
        t = work_ns / self.speed
        free = ctx._free
        start = free[0]
        if now > start:
            start = now
            t += ctx.wake_ns / self.speed
        end = start + t
        # self._finish(ctx, end, t, callback, payload), inlined too
        heapreplace(free, end)  # the thread's next free time (one thread: free[0] = end)
        ctx.busy_ns += t
        ctx.tasks += 1
        heappush(self._queue, (end, next(self._seq), callback, payload))

    def bind(self, ctx: Context) -> None:
        """Where no task waits for a core, give ``ctx`` its own :meth:`Context.submit` and
        :meth:`Context.occupy`: closures doing what :meth:`_submit_uncontended` and
        :meth:`occupy` do, with this domain's and the context's state looked up once
        (the wake-up too: a context's ``wake_ns`` is fixed when it is built)."""
        state = self.inline_state(ctx)
        if state is None:
            return
        free, speed, wake = state
        one = len(free) == 1  # one thread: heapreplace(free, end) is free[0] = end
        clock, queue, seq = self._clock, self._queue, self._seq

        def submit(work_ns: float, callback: Callback, payload: Any) -> None:
            now = clock._now
            t = work_ns / speed
            start = free[0]
            if now > start:  # the thread sleeps: waking it costs its wake-up first
                start = now
                t += wake
            end = start + t
            if one:
                free[0] = end
            else:
                heapreplace(free, end)
            ctx.busy_ns += t
            ctx.tasks += 1
            heappush(queue, (end, next(seq), callback, payload))

        def occupy(work_ns: float) -> None:
            now = clock._now
            t = work_ns / speed
            start = free[0]
            if now > start:
                start = now
                t += wake
            if one:
                free[0] = start + t
            else:
                heapreplace(free, start + t)
            ctx.busy_ns += t
            ctx.tasks += 1

        ctx.submit = submit  # type: ignore[method-assign]
        ctx.occupy = occupy  # type: ignore[method-assign]

    def inline_state(self, ctx: Context) -> tuple[list[float], float, float] | None:
        """What :meth:`_submit_uncontended` reads of ``ctx`` and this domain, for a caller
        that inlines it on its hot path: the thread's free times (``ctx._free``), the
        domain's speed and the wake-up in ns of time (``ctx.wake_ns / speed``); None if
        tasks here may wait for a core (then :meth:`submit` must be called)."""
        if self.core_bound:
            return None
        return ctx._free, self.speed, ctx.wake_ns / self.speed

    def _finish(self, ctx: Context, end: float, t: float, callback: Callback, payload: Any
                ) -> None:
        """The task of ``t`` ns ends at ``end``: its thread is busy until then."""
        heapreplace(ctx._free, end)  # the thread's next free time (one thread: free[0] = end)
        ctx.busy_ns += t
        ctx.tasks += 1
        heappush(self._queue, (end, next(self._seq), callback, payload))


class _Task:
    __slots__ = ("callback", "ctx", "payload", "work")

    def __init__(self, ctx: Context, work: float, callback: Callback, payload: Any) -> None:
        self.ctx = ctx
        self.work = work
        self.callback = callback
        self.payload = payload


class ProcessorSharing(Domain):
    """Runnable threads share ``m`` cores equally, each at most one core's speed."""

    def __init__(self, kernel: Kernel, cores: list[Core], contexts: list[Context]) -> None:
        self.kernel = kernel
        self.speed = cores[0].speed
        self.m = len(cores)
        self.contexts = contexts
        self.virtual = 0.0  # work served so far to each thread that has run all along
        self.t_last = 0.0
        self.running = 0
        self.heap: list[tuple[float, int, _Task]] = []
        self.seq = count()
        self.version = 0

    def _rate(self) -> float:
        n = self.running
        return self.speed if n <= self.m else self.speed * self.m / n

    def _advance(self) -> None:
        now = self.kernel.env._now
        if self.running:
            self.virtual += self._rate() * (now - self.t_last)
        self.t_last = now

    def _start(self, task: _Task) -> None:
        task.ctx._running += 1
        self.running += 1
        heappush(self.heap, (self.virtual + task.work, next(self.seq), task))

    def _reschedule(self) -> None:
        self.version += 1
        if self.heap:
            delay = (self.heap[0][0] - self.virtual) / self._rate()
            self.kernel.after(delay if delay > 0 else 0.0, self._complete, self.version)

    def submit(self, ctx: Context, work_ns: float, callback: Callback, payload: Any) -> None:
        self._advance()
        if ctx._running < ctx.threads and ctx.wake_ns:  # a thread of it sleeps: wake it
            work_ns += ctx.wake_ns
        ctx.busy_ns += work_ns / self.speed
        ctx.tasks += 1
        task = _Task(ctx, work_ns, callback, payload)
        if ctx._running < ctx.threads:
            self._start(task)
            self._reschedule()
        else:
            ctx._queue.append(task)

    def _complete(self, version: int) -> None:
        if version != self.version:
            return  # superseded by a later change in the number of runnable threads
        self._advance()
        done: list[_Task] = []
        heap = self.heap
        limit = self.virtual + 1e-9 * max(1.0, abs(self.virtual))
        while heap and heap[0][0] <= limit:
            task = heappop(heap)[2]
            done.append(task)
            ctx = task.ctx
            ctx._running -= 1
            self.running -= 1
        for task in done:
            q = task.ctx._queue
            if q:
                self._start(q.popleft())
        self._reschedule()
        for task in done:
            task.callback(task.payload)


def build_domains(kernel: Kernel, cores: list[Core], contexts: list[Context]) -> list[Domain]:
    """Group contexts that share cores into domains and give each its scheduler.

    Raises ``ValueError`` for mixed policies or speeds inside one domain (the loader turns
    it into a message naming the file and key).
    """
    # contexts that can run on a common core, directly or through other contexts
    groups: list[tuple[set[int], list[Context]]] = []  # (cores, contexts)
    for ctx in contexts:
        group_cores, group_ctx = set(ctx.cores), [ctx]
        for other in [g for g in groups if g[0] & group_cores]:
            groups.remove(other)
            group_cores |= other[0]
            group_ctx = other[1] + group_ctx
        groups.append((group_cores, group_ctx))
    domains: list[Domain] = []
    for group_cores, dom_ctx in groups:
        dom_cores = [cores[i] for i in sorted(group_cores)]
        policies = {c.scheduling for c in dom_cores}
        speeds = {c.speed for c in dom_cores}
        names = ", ".join(sorted(c.name for c in dom_ctx))
        if len(policies) > 1:
            raise ValueError(f"contexts {names} share cores with different scheduling policies")
        if len(speeds) > 1:
            raise ValueError(f"contexts {names} share cores of different speeds")
        threads = sum(c.threads for c in dom_ctx)
        policy = policies.pop()
        if policy == COOPERATIVE or threads <= len(dom_cores):
            dom: Domain = RunToCompletion(kernel, dom_cores, dom_ctx)
        else:
            dom = ProcessorSharing(kernel, dom_cores, dom_ctx)
        for c in dom_ctx:
            c.domain = dom
            if isinstance(dom, RunToCompletion):
                dom.bind(c)
        domains.append(dom)
    return domains
