"""Stages: the layers a request and its reply cross, and their costs.

A stage is one layer of an I/O path (a system call, the TCP/IP stack, a virtio kick, a
wire). Its kind says what it costs:

* ``cpu``: CPU time on an execution context: a fixed cost drawn from a distribution, plus
  a per-byte cost times the bytes the stage carries (the request's or the reply's), plus
  a per-command cost times the commands the message carries (pipelining);
* ``delay``: time that passes without using a shared resource (propagation, a device's
  latency that nothing queues for), fixed plus per byte;
* ``device``: a visit to a device with its own queue (a disk flush, a link's
  transmission), see :mod:`sim.devices`;
* ``batch``: a batching stage on a context, see :mod:`sim.batching`;
* ``listen``: a listening socket's accept queue (a connection waits there from its SYN
  until a later stage, ``until``, accepts it); a SYN that finds ``backlog`` connections
  waiting is dropped and retransmitted by the client, see :mod:`sim.admission`;
* ``pool``: a pool of ``size`` workers (gunicorn's sync workers): a request holds one
  from this stage until a later stage, ``until``, completes, whatever it waits for
  meanwhile (a call to another service); while all are held, requests wait in turn, see
  :mod:`sim.admission`.

At run time stages become *segments* (:mod:`sim.paths` compiles them): consecutive
``cpu`` stages on the same context are one segment that pays their summed cost in one
task, and consecutive ``delay`` stages are one timer, so the number of events follows the
points of contention, not the number of layers. Each segment still books time per stage
in :class:`Accounts`, so a request's time can be shown layer by layer.

On a context whose domain never makes a task wait for a core (the usual case), a cpu
segment's visit is two closures, :func:`fused_visit`: its entry (the cost drawn, the
task submitted) and the task's end (the waiting booked, the next segment entered), with
the visits' sums kept in the closure's variables until :class:`Accounts` books them. The
same operations in the same order as the methods they replace: the same numbers.

All times here are nanoseconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from heapq import heappush, heapreplace
from typing import Any

import numpy as np

from sim.cpu import Context, RunToCompletion
from sim.kernel import Kernel
from sim.randomness import ZERO, Distribution, deterministic
from sim.requests import Request, advance

STAGE_KINDS = ("cpu", "delay", "device", "batch", "listen", "pool")
SIZES = ("request", "reply", "none")


@dataclass(frozen=True)
class Cost:
    """``fixed`` (ns, a distribution) per message, plus ``per_byte_ns`` times the bytes
    carried, plus ``per_command_ns`` times the commands the message carries.

    With ``beyond`` (bytes), the per-byte part counts only the message's bytes past the
    first ``beyond``: the cost of a slower way taken once a fixed buffer is full (Redis
    3.0 copies a reply into its client's 16 KB static buffer, then appends the rest to a
    list of objects)."""

    fixed: Distribution = ZERO
    per_byte_ns: float = 0.0
    size: str = "request"
    per_command_ns: float = 0.0
    beyond: float = 0.0

    def mean_for(self, request_bytes: float, reply_bytes: float, count: int = 1) -> float:
        nbytes = max(0.0, _bytes(self.size, request_bytes, reply_bytes) - self.beyond)
        return self.fixed.mean + self.per_byte_ns * nbytes + self.per_command_ns * count


def _bytes(size: str, request_bytes: float, reply_bytes: float) -> float:
    if size == "request":
        return request_bytes
    if size == "reply":
        return reply_bytes
    return 0.0


@dataclass(frozen=True)
class StageSpec:
    """One stage as declared in a file (after unit conversion to ns)."""

    name: str
    kind: str
    cost: Cost = field(default_factory=Cost)
    context: str | None = None  # cpu, batch
    device: str | None = None  # device
    max_batch: int = 1  # batch
    window_ns: float = 0.0  # batch: wait this long after the first item for more
    per_batch: Distribution = ZERO  # batch: cost paid once per batch
    batch_device: str | None = None  # batch: a device the whole batch then waits for
    batch_device_when: tuple[str, ...] = ()  # ...only if an item of these classes is in it
    backlog: int = 0  # listen: connections that may wait to be accepted
    until: str | None = None  # listen: the stage whose completion accepts the connection;
    # pool: the stage whose completion gives the worker back
    rto_ns: float = 0.0  # listen: the first SYN retransmission timeout, doubled per retry
    syn_retries: int = 0  # listen: retransmissions before connect() fails
    size: int = 0  # pool: requests it holds at once (workers)
    # cpu: a notification, paid only when none of these stages holds a message (the other
    # side is idle and must be told; while it still works it polls: virtio's EVENT_IDX)
    suppressed_while: tuple[str, ...] = ()
    # cpu: the message's bytes (``cost.size``) handled in pieces of this many, each queued
    # anew on the context (an event loop reading one buffer per ready socket); 0: at once
    chunk_bytes: int = 0
    description: str = ""


class Work:
    """The cost of consecutive stages paid as one piece of work: one draw per visit.

    Each stage costs a fixed part (a distribution) plus per-byte and per-command parts.
    For a segment of several stages the fixed parts are drawn as one sum: a gamma with
    the summed mean and variance when every part is deterministic, exponential or gamma
    (moment matching), otherwise part by part. The per-byte and per-command parts are
    linear, so the time of each stage is booked afterwards from running sums (exact in
    total; the random part is shared among stages in proportion to their means).

    :func:`work_for` makes one: a subclass whose :meth:`cost` leaves out the linear parts
    that no stage has (they would only ever add zero, to the cost and to the booked time).
    """

    __slots__ = ("_exact", "_stages", "collect", "draw", "k_command", "k_reply", "k_request",
                 "n", "s_count", "s_fixed", "s_reply", "s_request")
    # the parts paid per byte past a buffer (:class:`_BeyondWork`, which also keeps their
    # running sums): (stage index, ns per byte, reply side?, buffer bytes); none here
    _beyond: tuple[tuple[int, float, bool, float], ...] = ()

    def __init__(self, stages: list[tuple[int, float, float, float, float, float]],
                 exact: bool, draw: Iterator[float]) -> None:
        self._stages = stages  # (index, mean, share of the random part, per-byte x2, per-command)
        self._exact = exact  # every part deterministic: booked as mean x visits (exact)
        self.k_request = sum(s[3] for s in stages)
        self.k_reply = sum(s[4] for s in stages)
        self.k_command = sum(s[5] for s in stages)
        self.draw = draw
        # where a hot path counts the visits in sums of its own instead (a fused visit,
        # :func:`fused_visit`): adds them to these attributes and zeroes its own
        self.collect: Callable[[], None] | None = None
        self.clear()

    @property
    def first(self) -> int:
        return self._stages[0][0]

    @property
    def linear(self) -> bool:
        """Whether some stage has a per-byte or per-command part."""
        return not isinstance(self, _FixedWork)

    def clear(self) -> None:
        if self.collect is not None:
            self.collect()
        self.n = 0
        self.s_fixed = self.s_request = self.s_reply = self.s_count = 0.0

    def cost(self, req: Request) -> float:
        """Draw this visit's cost (ns of work) for ``req``, and count it."""
        f = next(self.draw)
        rb = req.request_bytes
        pb = req.reply_bytes
        c = req.count
        self.n += 1
        self.s_fixed += f
        self.s_request += rb
        self.s_reply += pb
        self.s_count += c
        return f + self.k_request * rb + self.k_reply * pb + self.k_command * c

    def book(self, booked: list[float], visits: list[int], scale: float) -> None:
        """Add the time of each stage since the last clear (times ``scale``) to ``booked``."""
        if self.collect is not None:
            self.collect()
        for i, mean, share, k_req, k_rep, k_cmd in self._stages:
            fixed = mean * self.n if self._exact else share * self.s_fixed
            booked[i] += scale * (fixed + k_req * self.s_request + k_rep * self.s_reply
                                  + k_cmd * self.s_count)
        visits[self.first] += self.n


class _FixedWork(Work):
    """Work without per-byte or per-command parts."""

    __slots__ = ()

    def cost(self, req: Request) -> float:
        f = next(self.draw)
        self.n += 1
        self.s_fixed += f
        return f


class _RequestWork(Work):
    """Work whose only linear part is per request byte (a send)."""

    __slots__ = ()

    def cost(self, req: Request) -> float:
        f = next(self.draw)
        rb = req.request_bytes
        self.n += 1
        self.s_fixed += f
        self.s_request += rb
        return f + self.k_request * rb


class _ReplyWork(Work):
    """Work whose only linear part is per reply byte (a reply's way back)."""

    __slots__ = ()

    def cost(self, req: Request) -> float:
        f = next(self.draw)
        pb = req.reply_bytes
        self.n += 1
        self.s_fixed += f
        self.s_reply += pb
        return f + self.k_reply * pb


class _ReplyCommandWork(Work):
    """Work paid per reply byte and per command (a client reading its replies)."""

    __slots__ = ()

    def cost(self, req: Request) -> float:
        f = next(self.draw)
        pb = req.reply_bytes
        c = req.count
        self.n += 1
        self.s_fixed += f
        self.s_reply += pb
        self.s_count += c
        return f + self.k_reply * pb + self.k_command * c


class _BeyondWork(Work):
    """Work in which some stages pay per byte only past a buffer (:attr:`Cost.beyond`):
    the linear parts as :class:`Work`, plus for each such stage its rate times the bytes
    past its buffer, with their own running sums for the booking."""

    __slots__ = ("_beyond", "s_beyond")

    def __init__(self, stages: list[tuple[int, float, float, float, float, float]],
                 exact: bool, draw: Iterator[float],
                 beyond: list[tuple[int, float, bool, float]]) -> None:
        self._beyond = tuple(beyond)  # (index, ns per byte past the buffer, reply?, buffer)
        super().__init__(stages, exact, draw)

    def clear(self) -> None:
        super().clear()
        self.s_beyond = [0.0] * len(self._beyond)

    def cost(self, req: Request) -> float:
        return add_beyond(Work.cost(self, req), req, self._beyond, self.s_beyond)

    def book(self, booked: list[float], visits: list[int], scale: float) -> None:
        super().book(booked, visits, scale)
        for (i, k, _, _), b in zip(self._beyond, self.s_beyond, strict=True):
            booked[i] += scale * k * b


# which linear parts some stage has (per request byte, per reply byte, per command) -> kind
_WORK_KINDS: dict[tuple[bool, bool, bool], type[Work]] = {
    (False, False, False): _FixedWork,
    (True, False, False): _RequestWork,
    (False, True, False): _ReplyWork,
    (False, True, True): _ReplyCommandWork,
}


def work_for(stages: list[tuple[int, Distribution, Cost]], draw: Iterator[float]) -> Work:
    """The :class:`Work` of stages given as (index, fixed part, cost), drawn from ``draw``."""
    total_mean = sum(d.mean for _, d, _ in stages)
    # a per-byte part past a buffer is not linear in the message's bytes: kept apart
    linear_bytes = [0.0 if c.beyond else c.per_byte_ns for _, _, c in stages]
    parts = [
        (i, d.mean, (d.mean / total_mean) if total_mean > 0 else 1.0 / len(stages),
         k if c.size == "request" else 0.0, k if c.size == "reply" else 0.0,
         c.per_command_ns)
        for (i, d, c), k in zip(stages, linear_bytes, strict=True)
    ]
    exact = all(d.kind == "deterministic" for _, d, _ in stages)
    beyond = [(i, c.per_byte_ns, c.size == "reply", c.beyond) for i, _, c in stages
              if c.beyond and c.per_byte_ns and c.size != "none"]
    if beyond:
        return _BeyondWork(parts, exact, draw, beyond)
    linear = tuple(any(p[k] for p in parts) for k in (3, 4, 5))
    return _WORK_KINDS.get(linear, Work)(parts, exact, draw)


def combined(dists: list[Distribution]) -> Distribution | None:
    """One distribution for the sum of ``dists`` (moment-matched gamma), or None."""
    if any(d.kind not in ("deterministic", "exponential", "gamma") for d in dists):
        return None
    mean = sum(d.mean for d in dists)
    var = 0.0
    for d in dists:
        if d.kind == "exponential":
            var += d.mean**2
        elif d.kind == "gamma":
            var += (d.params["cv"] * d.mean) ** 2
    if var == 0.0 or mean == 0.0:
        return deterministic(mean)
    if len(dists) == 1:
        return dists[0]
    return Distribution("gamma", {"mean": mean, "cv": var**0.5 / mean})


def summed(iterators: list[Iterator[float]]) -> Iterator[float]:
    """Draws of a sum, part by part (for distributions :func:`combined` cannot merge)."""
    while True:
        yield sum(next(it) for it in iterators)


class Accounts:
    """Time booked per stage since the last reset: CPU, waiting, device; and visits."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.index = {n: i for i, n in enumerate(names)}
        self._works: list[tuple[Work, str, float]] = []
        self.reset()

    def register(self, work: Work, kind: str, scale: float) -> None:
        """Book ``work``'s stages into ``kind`` ("cpu" or "device") times ``scale``."""
        self._works.append((work, kind, scale))

    def reset(self) -> None:
        n = len(self.names)
        self._cpu = [0.0] * n  # hot-path writers use these; readers the properties below
        self.wait = [0.0] * n
        self._device = [0.0] * n
        self._visits = [0] * n
        for w, _, _ in self._works:
            w.clear()

    def settle(self) -> None:
        """Book what the registered works have counted since they were last settled."""
        for w, kind, scale in self._works:
            w.book(self._cpu if kind == "cpu" else self._device, self._visits, scale)
            w.clear()

    @property
    def cpu(self) -> list[float]:
        self.settle()
        return self._cpu

    @property
    def device(self) -> list[float]:
        self.settle()
        return self._device

    @property
    def visits(self) -> list[int]:
        self.settle()
        return self._visits

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {
            "cpu_ns": np.asarray(self.cpu),
            "wait_ns": np.asarray(self.wait),
            "device_ns": np.asarray(self.device),
            "visits": np.asarray(self.visits, dtype=float),
        }


class CpuSegment:
    """Consecutive ``cpu`` stages on one context: one task, their summed cost."""

    def __init__(self, kernel: Kernel, context: Context, work: Work, acct: Accounts) -> None:
        self.kernel = kernel
        self.context = context
        self.work = work
        self.acct = acct
        self.first = work.first
        self.inv_speed = 1.0 / context.speed
        acct.register(work, "cpu", self.inv_speed)
        # hot path: bound methods and the environment looked up once, not per request
        self._submit = context.domain.submit  # type: ignore[union-attr]
        self._done_cb = self._done
        self._clock = kernel.env
        self._draw = work.draw
        if not work.linear:
            self.enter = self._enter_fixed  # type: ignore[method-assign]

    def link(self, route: list[Any], index: int) -> None:
        """Told its place once its route is compiled (``route[index]`` is this segment):
        where the context's domain lets its submission be inlined, :meth:`enter` and the
        task's callback become closures that do a visit in one call each: the cost
        (:meth:`Work.cost`), the task (``RunToCompletion._submit_uncontended``) and, at
        the end, the move to the next segment (a segment is on one route at one place, so
        ``advance`` always moves a request from here to ``route[index + 1]``). The same
        operations in the same order: the same numbers."""
        self._fuse(route[index + 1], index + 1, ())

    def _fuse(self, nxt: Any, pos: int, counters: tuple[list[int], ...]) -> None:
        dom = self.context.domain
        state = dom.inline_state(self.context) if isinstance(dom, RunToCompletion) else None
        if state is None:
            return
        self.enter, self._done_cb = fused_visit(self, state, nxt, pos, counters)  # type: ignore[method-assign]

    def enter(self, req: Request) -> None:
        w = self.work.cost(req)
        req.work = w
        req.t_seg = self._clock._now
        self._submit(self.context, w, self._done_cb, req)

    def _enter_fixed(self, req: Request) -> None:
        """:meth:`enter` with the cost of work without linear parts inlined."""
        w = next(self._draw)
        work = self.work
        work.n += 1
        work.s_fixed += w
        req.work = w
        req.t_seg = self._clock._now
        self._submit(self.context, w, self._done_cb, req)

    def _done(self, req: Request) -> None:
        self.acct.wait[self.first] += (self._clock._now - req.t_seg) - req.work * self.inv_speed
        req.pos += 1  # advance(req), inlined on the hot path
        req.route[req.pos].enter(req)


def fused_visit(seg: CpuSegment, state: tuple[list[float], float, float], nxt: Any,
                pos: int, counters: tuple[list[int], ...]
                ) -> tuple[Callable[[Request], None], Callable[[Request], None]]:
    """``enter`` and ``done`` of ``seg`` for a context whose domain never makes a task wait
    for a core (``state``: :meth:`RunToCompletion.inline_state`); ``done`` hands the
    request to ``nxt``, its route's segment ``pos``; with ``counters``, they count the
    message in and out of each (:class:`TrackedCpuSegment`)."""
    work, ctx, acct, clock = seg.work, seg.context, seg.acct, seg._clock
    draw = work.draw
    # a part whose coefficient is zero is left out, as the kinds of Work leave it out:
    # it would add zero to the cost, and zero times its sum to the booked time
    kq, kp, kc = work.k_request, work.k_reply, work.k_command
    # which parts there are, as bools: testing a bool is quicker than a float
    has_q, has_p, has_c = kq != 0.0, kp != 0.0, kc != 0.0
    beyond = work._beyond  # parts paid past a buffer (_BeyondWork): usually none
    has_b = bool(beyond)
    s_b = [0.0] * len(beyond)
    free, speed, wake = state
    one = len(free) == 1
    queue, seq = seg.kernel._queue, seg.kernel._seq
    first, inv = seg.first, seg.inv_speed
    tracked = bool(counters)
    # the usual case, one watched stage: its counter moved without a loop
    only = counters[0] if len(counters) == 1 else [0]
    several = len(counters) > 1

    # the visits' sums (Work.n, s_fixed, s_request, s_reply, s_count), kept here: the
    # closure's variables cost less than attributes; Work.collect takes them in
    n = 0
    s_fixed = s_request = s_reply = s_count = 0.0

    def collect() -> None:
        nonlocal n, s_fixed, s_request, s_reply, s_count
        work.n += n
        work.s_fixed += s_fixed
        work.s_request += s_request
        work.s_reply += s_reply
        work.s_count += s_count
        n = 0
        s_fixed = s_request = s_reply = s_count = 0.0
        if has_b:
            collect_beyond(work, s_b)

    def done(req: Request) -> None:
        if tracked:
            if several:
                for c in counters:
                    c[0] -= 1
            else:
                only[0] -= 1
        acct.wait[first] += (clock._now - req.t_seg) - req.work * inv
        req.pos = pos  # advance(req): req.pos += 1, then enter req.route[req.pos]
        nxt.enter(req)

    def enter(req: Request) -> None:
        nonlocal n, s_fixed, s_request, s_reply, s_count
        if tracked:
            if several:
                for c in counters:
                    c[0] += 1
            else:
                only[0] += 1
        # w = work.cost(req): f + kq * request bytes + kp * reply bytes + kc * commands
        w = f = next(draw)
        n += 1
        s_fixed += f
        if has_q:
            b = req.request_bytes
            s_request += b
            w += kq * b
        if has_p:
            b = req.reply_bytes
            s_reply += b
            w += kp * b
        if has_c:
            b = req.count
            s_count += b
            w += kc * b
        if has_b:
            w = add_beyond(w, req, beyond, s_b)
        req.work = w
        now = clock._now
        req.t_seg = now
        # the task: RunToCompletion._submit_uncontended(ctx, w, done, req)
        t = w / speed
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
        heappush(queue, (end, next(seq), done, req))

    work.collect = collect
    return enter, done


def add_beyond(w: float, req: Request, beyond: tuple[tuple[int, float, bool, float], ...],
               sums: list[float]) -> float:
    """``w`` plus the parts of ``req``'s cost paid per byte past a buffer, counted into
    ``sums`` (what :meth:`_BeyondWork.cost` adds, for the hot paths that inline it)."""
    for j, (_, k, reply, buffer) in enumerate(beyond):
        b = (req.reply_bytes if reply else req.request_bytes) - buffer
        if b > 0.0:
            sums[j] += b
            w += k * b
    return w


def collect_beyond(work: Work, sums: list[float]) -> None:
    """Move a hot path's sums of bytes past a buffer into ``work`` (a :class:`_BeyondWork`),
    and zero them."""
    into = work.s_beyond  # type: ignore[attr-defined]
    for j, b in enumerate(sums):
        into[j] += b
        sums[j] = 0.0


class TrackedCpuSegment(CpuSegment):
    """A :class:`CpuSegment` that counts the messages inside it (queued or running), for
    the notifications that are suppressed while it holds any (:class:`NotifySegment`)."""

    def __init__(self, kernel: Kernel, context: Context, work: Work, acct: Accounts,
                 counters: list[list[int]]) -> None:
        super().__init__(kernel, context, work, acct)
        self.counters = counters  # one per watched stage, shared by every route crossing it
        self._enter_untracked = self.enter
        self.enter = self._enter_tracked  # type: ignore[method-assign]

    def link(self, route: list[Any], index: int) -> None:
        self._fuse(route[index + 1], index + 1, tuple(self.counters))

    def _enter_tracked(self, req: Request) -> None:
        for c in self.counters:
            c[0] += 1
        self._enter_untracked(req)

    def _done(self, req: Request) -> None:
        for c in self.counters:
            c[0] -= 1
        super()._done(req)


class ChunkedCpuSegment(CpuSegment):
    """A :class:`CpuSegment` that does a message's work in pieces, one per ``chunk_bytes``
    of the message (``size``: its request or its reply bytes). Each piece is a task of its
    own, and the next is queued only when the one before is done, behind whatever waits
    for the context by then. An event loop that reads at most one buffer from each ready
    socket per turn serves its connections this way, round robin: hiredis reads 16 KB per
    readable event, so redis-benchmark reads and parses a 54 KB reply in four turns, each
    after the data other connections have ready. The work is the same; the order differs:
    a long message no longer finishes before the next connection's short one starts."""

    def __init__(self, kernel: Kernel, context: Context, work: Work, acct: Accounts,
                 chunk_bytes: int, size: str) -> None:
        super().__init__(kernel, context, work, acct)
        self.chunk = chunk_bytes
        self.of_reply = size == "reply"
        self._piece_cb = self._piece_done
        self.enter = self._enter_chunked  # type: ignore[method-assign]

    def link(self, route: list[Any], index: int) -> None:
        """Its pieces are tasks of the context's own: nothing is fused."""

    def pieces(self, req: Request) -> int:
        """How many pieces ``req``'s work takes (at least one)."""
        size = req.reply_bytes if self.of_reply else req.request_bytes
        return max(1, math.ceil(size / self.chunk))

    def _enter_chunked(self, req: Request) -> None:
        w = self.work.cost(req)
        req.work = w
        req.t_seg = self._clock._now
        n = self.pieces(req)
        if n == 1:
            self._submit(self.context, w, self._done_cb, req)
        else:
            self._submit(self.context, w / n, self._piece_cb, (req, n - 1, w / n))

    def _piece_done(self, state: tuple[Request, int, float]) -> None:
        req, left, piece = state
        if left == 1:
            self._submit(self.context, piece, self._done_cb, req)
        else:
            self._submit(self.context, piece, self._piece_cb, (req, left - 1, piece))


def all_empty(counters: list[list[int]]) -> bool:
    """True when none of the watched stages holds a message: a notification is needed."""
    return not any(c[0] for c in counters)


class NotifySegment:
    """A notification of another context (a virtio kick: a VM exit), paid on its own
    context only when the stages it watches are empty; otherwise the other side, still
    busy with earlier messages, will find this one without being told."""

    def __init__(self, kernel: Kernel, context: Context, work: Work, acct: Accounts,
                 watched: list[list[int]]) -> None:
        self.kernel = kernel
        self.context = context
        self.work = work
        self.acct = acct
        self.watched = watched
        self._clock = kernel.env
        self.inv_speed = 1.0 / context.speed
        acct.register(work, "cpu", self.inv_speed)

    def enter(self, req: Request) -> None:
        for c in self.watched:  # all_empty(self.watched), inlined
            if c[0]:
                advance(req)
                return
        w = self.work.cost(req)
        req.work = w
        req.t_seg = self._clock._now
        self.context.submit(w, self._done, req)

    def _done(self, req: Request) -> None:
        self.acct.wait[self.work.first] += ((self._clock._now - req.t_seg)
                                            - req.work * self.inv_speed)
        advance(req)


class DelaySegment:
    """Consecutive ``delay`` stages: one timer of their summed duration."""

    def __init__(self, kernel: Kernel, work: Work, acct: Accounts) -> None:
        self.kernel = kernel
        self.work = work
        acct.register(work, "device", 1.0)

    def enter(self, req: Request) -> None:
        self.kernel.after(self.work.cost(req), advance, req)


class Sink:
    """The end of every route: hands the finished request to whoever waits for it, and
    takes requests that leave the route without finishing it (:meth:`fail`).

    Entering the sink is finishing: ``enter`` is ``on_done`` itself (no call between).
    """

    enter: Callable[[Request], None]

    def __init__(self, on_done, on_fail=None) -> None:  # type: ignore[no-untyped-def]
        self.on_done = on_done
        self.on_fail = on_fail

    @property
    def on_done(self):  # type: ignore[no-untyped-def]
        """What to call with a request that reached the end of its route."""
        return self.enter

    @on_done.setter
    def on_done(self, fn) -> None:  # type: ignore[no-untyped-def]
        self.enter = fn

    def fail(self, req: Request, reason: str) -> None:
        """``req`` leaves its route unfinished (``reason``: ``connect``)."""
        self.on_fail(req, reason)
