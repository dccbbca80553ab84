"""Requests: what crosses an I/O path.

A request carries its class (a command such as ``GET``, or ``request`` when there is one
class), how many commands it carries (``count``: a pipelined write of ``-P 10`` commands
crosses the path as one message of 10, as it does in the real stack), the bytes it
carries each way (for all its commands), the time its latency counts from (``t0``, ns:
when it was sent, or for an open load when it was due to be sent), the time it was
written (``t_sent``: the same, unless it waited in its client for a free connection) and
where it is on its route. The route is the compiled list of segments for its class; the last
segment is the sink that records the request's latency and tells its source.

``flags`` holds what only the mechanisms that need it keep: :data:`SETTLED` once the
client has its outcome (a completion, a timeout, a connect failure; a request that timed
out may still be inside the system, and its later completion is then ignored), and the
number of SYN retransmissions so far in units of :data:`RETRY` (see
:mod:`sim.admission`). Routes without those mechanisms never read or write it.
"""

from __future__ import annotations

from typing import Any

SETTLED = 1  # the client has recorded this request's outcome
RETRY = 2  # flags += RETRY per SYN retransmission; flags >> 1 = retransmissions so far


class Request:
    __slots__ = ("client", "cls", "count", "flags", "pos", "reply_bytes", "request_bytes",
                 "route", "t0", "t_seg", "t_sent", "work")

    def __init__(self, cls: int, request_bytes: float, reply_bytes: float, t0: float,
                 route: list[Any], client: int = -1, flags: int = 0, count: int = 1) -> None:
        self.cls = cls
        self.count = count
        self.request_bytes = request_bytes
        self.reply_bytes = reply_bytes
        self.t0 = t0
        self.t_sent = t0
        self.route = route
        self.pos = 0
        self.client = client
        self.flags = flags
        self.t_seg = 0.0
        self.work = 0.0

    def start(self) -> None:
        """Enter the first segment of the route."""
        self.pos = 0
        self.route[0].enter(self)


def advance(req: Request) -> None:
    """Move ``req`` into the next segment of its route."""
    req.pos += 1
    req.route[req.pos].enter(req)
