"""Load: who sends requests, and when.

* :class:`OpenSource`: requests arrive on their own schedule (interarrival times drawn
  from a distribution: a fixed spacing, as wrk2's ``-R``, or exponential, Poisson
  arrivals), whatever the system does; latency runs from the intended send time, so a
  slow server cannot hide its queueing (no coordinated omission). By default every
  request is written the moment it is due (unbounded concurrency: as many requests in
  flight as the system holds). With ``connections`` (wrk2's ``-c``) at most that many are
  in flight, each on its own keep-alive connection; a request due while every connection
  waits for a reply waits in the client, in order, for the first one free, and its
  latency still counts from when it was due. That wait is booked as the ``backlog``
  account (:class:`sim.stages.Accounts`), so a request's time adds up. (wrk2 gives each
  connection its own schedule at ``rate / connections``; one shared queue is the same
  while the connections are alike.) Past what the path can serve the system holds at most
  ``connections`` requests and the backlog, not the server's queue, grows.
* :class:`ClosedSource`: ``clients`` clients, each sends ``pipeline`` requests in one
  message (one write, as redis-benchmark's ``-P`` does), waits for the replies, thinks,
  and sends again (redis-benchmark's ``-c`` and ``-P``; ab's ``-c``; wrk). The message
  carries ``pipeline`` times the class's bytes and counts as ``pipeline`` requests; each
  one's latency runs from the message's send. Stages pay per message, per byte and, with
  ``per_command``, per request carried.

A request's class (command) is drawn by weight from the workload's classes, each with the
bytes it carries each way.

With a ``timeout_ns`` (ab's ``-s``), a request that has not completed within it of its
send is a failure (a timeout); a closed-loop client then sends its next request. The
old request keeps going through the system (the server does its work, as a real one does
until it notices the closed socket) and its completion is ignored. Without a timeout no
timer is scheduled at all: the sources use their untimed methods. A request that never
connects (:mod:`sim.admission`) reaches :meth:`failed`: a failure too. After any outcome
a client (a closed-loop client, an open load's connection) moves on (:meth:`_next`).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.kernel import Kernel
from sim.randomness import blocks
from sim.requests import SETTLED, Request
from sim.stats.recorder import Recorder


@dataclass(frozen=True)
class RequestClass:
    name: str
    weight: float = 1.0
    request_bytes: float = 0.0
    reply_bytes: float = 0.0


def class_picker(classes: Sequence[RequestClass], rng: np.random.Generator) -> Iterator[int]:
    """Endless class indices drawn by weight (constant when there is one class)."""
    if len(classes) == 1:
        return itertools.repeat(0)
    w = np.asarray([c.weight for c in classes], float)
    w = w / w.sum()
    idx = np.arange(len(classes))
    return blocks(lambda n: rng.choice(idx, n, p=w))


class _Source:
    def __init__(self, kernel: Kernel, classes: Sequence[RequestClass], picker: Iterator[int],
                 routes: Sequence[list], recorder: Recorder, timeout_ns: float = 0.0) -> None:
        self.kernel = kernel
        self._clock = kernel.env
        self.classes = classes
        self.picker = picker
        self.routes = routes
        self.recorder = recorder
        self.timeout_ns = timeout_ns
        self.sent = 0
        if timeout_ns > 0:
            self.done = self._done_timed  # type: ignore[method-assign]

    def done(self, req: Request) -> None:
        """``req`` completed (its reply is in)."""
        raise NotImplementedError

    def _next(self, req: Request) -> None:
        """What the client of ``req`` does once it has its outcome."""

    def _settled(self, req: Request) -> bool:
        """Settle ``req``'s outcome; False if it was settled already (it timed out)."""
        if req.flags & SETTLED:
            return False
        req.flags |= SETTLED
        return True

    def _arm(self, req: Request) -> None:
        """Start ``req``'s timeout clock (only with a timeout)."""
        self.kernel.after(self.timeout_ns, self._expire, req)

    def _expire(self, req: Request) -> None:
        if self._settled(req):
            self.recorder.timeout(req)
            self._next(req)

    def _done_timed(self, req: Request) -> None:
        if req.flags & SETTLED:  # it timed out: the client no longer listens
            self.recorder.leave(req)
            return
        req.flags |= SETTLED
        type(self).done(self, req)

    def failed(self, req: Request, reason: str) -> None:
        """``req`` leaves the system without a reply (``reason``: ``connect``)."""
        if not self._settled(req):
            self.recorder.leave(req)
            return
        self.recorder.connect_failure(req)
        self._next(req)

    def _new(self, client: int, count: int = 1) -> Request:
        i = next(self.picker)
        c = self.classes[i]
        self.sent += count
        # positional arguments: a keyword costs as much as the rest of the call here
        return Request(i, c.request_bytes * count, c.reply_bytes * count, self._clock._now,
                       self.routes[i], client, 0, count)


class OpenSource(_Source):
    def __init__(self, kernel: Kernel, classes: Sequence[RequestClass], picker: Iterator[int],
                 routes: Sequence[list], recorder: Recorder, interarrival: Iterator[float],
                 timeout_ns: float = 0.0, connections: int = 0,
                 backlog: tuple[Any, int] | None = None) -> None:
        """``connections``: requests in flight at most (0: unbounded); ``backlog``: the
        accounts and index that book the time a request waits for a connection."""
        super().__init__(kernel, classes, picker, routes, recorder, timeout_ns)
        self.interarrival = interarrival
        self.connections = connections
        self.busy = 0  # connections waiting for a reply
        self.waiting: deque[Request] = deque()  # due, not yet written
        # write a request: start its route (and its timeout clock, with a timeout)
        self._send: Callable[[Request], None] = (self._send_timed if timeout_ns > 0
                                                 else Request.start)
        # a request is due: write it, or with a bound on connections maybe wait
        self._dispatch: Callable[[Request], None] = self._send
        if connections:
            assert backlog is not None
            self.acct, self.backlog_index = backlog
            self._dispatch = self._dispatch_bounded

    def start(self) -> None:
        self.kernel.after(next(self.interarrival), self._arrive)

    def _arrive(self, _arg: object) -> None:
        req = self._new(-1)
        self.recorder.arrive(1)
        self.kernel.after(next(self.interarrival), self._arrive)
        self._dispatch(req)

    def _send_timed(self, req: Request) -> None:
        self._arm(req)
        req.start()

    def _dispatch_bounded(self, req: Request) -> None:
        self.acct._visits[self.backlog_index] += 1
        if self.busy < self.connections:
            self.busy += 1
            self._send(req)
        else:
            self.waiting.append(req)

    def done(self, req: Request) -> None:
        self.recorder.complete(req)
        if self.connections:
            self._next(req)

    def _next(self, req: Request) -> None:
        """``req``'s connection is free: it takes the oldest request waiting, if any."""
        if not self.connections:
            return
        if not self.waiting:
            self.busy -= 1
            return
        nxt = self.waiting.popleft()
        now = self._clock._now
        nxt.t_sent = now
        self.acct.wait[self.backlog_index] += now - nxt.t0
        self._send(nxt)


class ClosedSource(_Source):
    def __init__(self, kernel: Kernel, classes: Sequence[RequestClass], picker: Iterator[int],
                 routes: Sequence[list], recorder: Recorder, clients: int, pipeline: int,
                 think: Iterator[float] | None, timeout_ns: float = 0.0) -> None:
        super().__init__(kernel, classes, picker, routes, recorder, timeout_ns)
        self.clients = clients
        self.pipeline = pipeline
        self.think = think
        if timeout_ns > 0:
            self._send = self._send_timed  # type: ignore[method-assign]
        elif think is None:
            self.done = self._turnaround()  # type: ignore[method-assign]

    def start(self) -> None:
        # per class: the bytes of a message of ``pipeline`` requests each way, and its
        # route (what :meth:`_new` computes per message, for the untimed hot path)
        self._messages = [(c.request_bytes * self.pipeline, c.reply_bytes * self.pipeline, r)
                          for c, r in zip(self.classes, self.routes, strict=True)]
        for c in range(self.clients):
            self._send(c)

    def _send(self, client: int) -> None:
        # req = self._new(client, self.pipeline), inlined with the bytes computed once
        i = next(self.picker)
        request_bytes, reply_bytes, route = self._messages[i]
        count = self.pipeline
        self.sent += count
        req = Request(i, request_bytes, reply_bytes, self._clock._now, route, client, 0, count)
        self.recorder.arrive(count)
        route[0].enter(req)  # req.start(), inlined on the hot path

    def _turnaround(self) -> Callable[[Request], None]:
        """:meth:`done` of a closed loop without timeout or think time (the hot path): the
        completion, then at once the client's next message (:meth:`_send`), in one call.
        The next message arrives at the instant of the completion, so the recorder's
        time-average needs no update for it (:meth:`Recorder.arrive_now`), and it travels
        in the finished message's :class:`Request`, set anew as :meth:`_new` would make it
        (the closed loop's one request per client: no allocation per message)."""
        recorder, picker, clock, count = self.recorder, self.picker, self.kernel.env, self.pipeline

        def done(req: Request) -> None:
            recorder.complete(req)
            i = next(picker)
            request_bytes, reply_bytes, route = self._messages[i]
            self.sent += count
            # the next message is the finished one's Request, made anew (nothing holds a
            # finished request: it has left every queue, and no timer of it is pending)
            now = clock._now
            req.cls = i
            req.request_bytes = request_bytes
            req.reply_bytes = reply_bytes
            req.t0 = req.t_sent = now
            req.route = route
            req.pos = req.flags = 0
            req.t_seg = req.work = 0.0
            recorder.arrive_now(count)
            route[0].enter(req)

        return done

    def _send_timed(self, client: int) -> None:
        req = self._new(client, self.pipeline)
        self.recorder.arrive(req.count)
        self._arm(req)
        req.start()

    def done(self, req: Request) -> None:
        self.recorder.complete(req)
        if self.think is None:  # self._next(req), inlined for the common case
            self._send(req.client)
        else:
            self._next(req)

    def _next(self, req: Request) -> None:
        t = next(self.think) if self.think is not None else 0.0
        if t > 0:
            self.kernel.after(t, self._send, req.client)
        else:
            self._send(req.client)
