"""Admission to a server: the listen backlog, SYN drops and retransmission, connect
failure; and a pool of workers that a request holds while it is served.

This is the part of the I/O path where a new TCP connection waits to be accepted. A
stage of kind ``listen`` stands for a listening socket's accept queue: a connection
enters it when its SYN reaches the socket and leaves it when a later stage on the same
route, ``until`` (the application's ``accept``), completes. While ``backlog``
connections wait (Linux: ``min(backlog, somaxconn)``), a SYN that arrives is dropped, as
Linux drops it when the accept queue is full. The client then retransmits it
``rto_ns`` after the first send, ``2 * rto_ns`` after the first retransmission, and so
on, doubling (Linux: 1 s, 3 s, 7 s... after the send), each time crossing the route from
its start again (the client's and the server's SYN processing are paid again). After
``syn_retries`` retransmissions (Linux ``tcp_syn_retries``, 6) it waits one more doubled
timeout and ``connect()`` fails: the request leaves its route through
:meth:`sim.stages.Sink.fail` and its source counts a connect failure. The retransmission
times are computed from the time the request was written, ``t_sent`` (its latency counts
from ``t0``: the same time, as ab's table counts it, unless an open load's request waited
in its client for a free connection).

If the client gave up on the request meanwhile (a timeout, :mod:`sim.workload`), it has
closed the socket: the SYN is not retransmitted and the request leaves the system.

Accounting (:class:`sim.stages.Accounts`): every SYN that reaches the socket is a visit of
the listen stage; the time from a drop to the retransmission (or to the failure) is
booked there as waiting. The accept queue itself books nothing: a connection's time in it
is the time of the stages it crosses until it is accepted.

A stage of kind ``pool`` stands for a server's workers when each serves one request from
start to end, whatever it waits for meanwhile: gunicorn's sync workers, each blocked in
its call to another service. A request takes a worker when it enters the stage and gives
it back when a later stage, ``until``, completes; while all ``size`` are held, requests
wait in turn (FIFO), which in the real server is the accept queue (a connection is
accepted only by a free worker). The time a request waits for a worker is booked as the
pool stage's waiting; the CPU its worker uses is the stages' own, on their context.

All times are nanoseconds.
"""

from __future__ import annotations

from collections import deque

from sim.kernel import Kernel
from sim.requests import RETRY, SETTLED, Request, advance
from sim.stages import Accounts, StageSpec
from sim.stats.recorder import Recorder

CONNECT = "connect"


class ListenSegment:
    """A listening socket's accept queue, shared by every route that crosses it."""

    def __init__(self, kernel: Kernel, spec: StageSpec, index: int, acct: Accounts,
                 recorder: Recorder) -> None:
        self.kernel = kernel
        self.name = spec.name
        self.backlog = spec.backlog
        self.rto_ns = spec.rto_ns
        self.syn_retries = spec.syn_retries
        self.index = index
        self.acct = acct
        self.recorder = recorder
        self.queued = 0  # connections past the socket, not yet accepted
        self.drops = 0  # SYNs dropped (since the start, not reset with the window)
        self.release = Release(self)

    def leave(self) -> None:
        """A connection was accepted: it leaves the queue."""
        self.queued -= 1

    def enter(self, req: Request) -> None:
        acct = self.acct
        acct._visits[self.index] += 1
        if self.queued < self.backlog:
            self.queued += 1
            advance(req)
            return
        self.drops += 1
        k = req.flags >> 1  # retransmissions so far
        now = self.kernel.env._now
        # the (k+1)-th retransmission, or the give-up, at t_sent + rto * (2^(k+1) - 1)
        at = max(req.t_sent + self.rto_ns * ((2 << k) - 1), now)
        acct.wait[self.index] += at - now
        self.kernel.at(at, self._retransmit if k < self.syn_retries else self._give_up, req)

    def _retransmit(self, req: Request) -> None:
        if req.flags & SETTLED:  # the client timed out and closed the socket
            req.route[-1].fail(req, CONNECT)
            return
        req.flags += RETRY
        self.recorder.retransmit()
        req.start()

    @staticmethod
    def _give_up(req: Request) -> None:
        req.route[-1].fail(req, CONNECT)


class Release:
    """Placed on a route right after the segment holding the ``until`` stage: the
    connection leaves the accept queue, or the request gives its worker back (no event,
    no time)."""

    def __init__(self, admission: ListenSegment | PoolSegment) -> None:
        self.admission = admission

    def enter(self, req: Request) -> None:
        self.admission.leave()
        advance(req)


class PoolSegment:
    """A pool of ``size`` workers, shared by every route that crosses it."""

    def __init__(self, kernel: Kernel, spec: StageSpec, index: int, acct: Accounts) -> None:
        self.kernel = kernel
        self.name = spec.name
        self.size = spec.size
        self.index = index
        self.acct = acct
        self.held = 0  # workers serving a request
        self.waiting: deque[tuple[Request, float]] = deque()  # (request, since when)
        self.release = Release(self)

    def enter(self, req: Request) -> None:
        self.acct._visits[self.index] += 1
        if self.held < self.size:
            self.held += 1
            advance(req)
        else:
            self.waiting.append((req, self.kernel.env._now))

    def leave(self) -> None:
        """A worker is free: the longest-waiting request takes it (from now), or it idles."""
        if not self.waiting:
            self.held -= 1
            return
        req, since = self.waiting.popleft()
        now = self.kernel.env._now
        self.acct.wait[self.index] += now - since
        self.kernel.at(now, advance, req)  # after the releasing request's own step


def guarded_resources(stages: dict[str, StageSpec], routes: dict[str, list[str]],
                      contexts: dict[str, tuple[int, tuple[int, ...], float]]) -> set[str]:
    """Resources (``context.NAME``, ``cores.I,J``, ``device.NAME``, as
    :mod:`sim.offered_load` names them) that a stage between a listen stage and its
    ``until`` (both included) uses on some route. The accept queue bounds the connections
    they hold, so an offered load above their capacity drops SYNs instead of growing a
    queue without bound: it is not saturation."""
    out: set[str] = set()
    for route in routes.values():
        for i, name in enumerate(route):
            spec = stages[name]
            if spec.kind != "listen":
                continue
            for inner in route[i:route.index(spec.until, i) + 1]:  # type: ignore[arg-type]
                s = stages[inner]
                if s.context is not None:
                    out.add(f"context.{s.context}")
                    out.add("cores." + ",".join(map(str, contexts[s.context][1])))
                if s.device is not None:
                    out.add(f"device.{s.device}")
            break
    return out
