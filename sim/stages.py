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
* ``batch``: a batching stage on a context, see :mod:`sim.batching`.

At run time stages become *segments* (:mod:`sim.paths` compiles them): consecutive
``cpu`` stages on the same context are one segment that pays their summed cost in one
task, and consecutive ``delay`` stages are one timer, so the number of events follows the
points of contention, not the number of layers. Each segment still books time per stage
in :class:`Accounts`, so a request's time can be shown layer by layer.

All times here are nanoseconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from sim.cpu import Context
from sim.kernel import Kernel
from sim.randomness import ZERO, Distribution
from sim.requests import Request, advance

STAGE_KINDS = ("cpu", "delay", "device", "batch")
SIZES = ("request", "reply", "none")


@dataclass(frozen=True)
class Cost:
    """``fixed`` (ns, a distribution) per message, plus ``per_byte_ns`` times the bytes
    carried, plus ``per_command_ns`` times the commands the message carries."""

    fixed: Distribution = ZERO
    per_byte_ns: float = 0.0
    size: str = "request"
    per_command_ns: float = 0.0

    def mean_for(self, request_bytes: float, reply_bytes: float, count: int = 1) -> float:
        return (self.fixed.mean + self.per_byte_ns * _bytes(self.size, request_bytes, reply_bytes)
                + self.per_command_ns * count)


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
    description: str = ""


class Accounts:
    """Time booked per stage since the last reset: CPU, waiting, device; and visits."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.index = {n: i for i, n in enumerate(names)}
        self.reset()

    def reset(self) -> None:
        n = len(self.names)
        self.cpu = [0.0] * n
        self.wait = [0.0] * n
        self.device = [0.0] * n
        self.visits = [0] * n

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {
            "cpu_ns": np.asarray(self.cpu),
            "wait_ns": np.asarray(self.wait),
            "device_ns": np.asarray(self.device),
            "visits": np.asarray(self.visits, dtype=float),
        }


class _Part:
    """A stage's draw inside a segment."""

    __slots__ = ("fixed", "index", "per_byte", "per_command", "size")

    def __init__(self, fixed: Iterator[float], per_byte: float, size: str, index: int,
                 per_command: float = 0.0) -> None:
        self.fixed = fixed
        self.per_byte = per_byte
        self.size = size
        self.index = index
        self.per_command = per_command


def draw_cost(parts: list[_Part], req: Request, booked: list[float], scale: float) -> float:
    """Sum the parts' costs for ``req`` and book each (times ``scale``) to its stage."""
    total = 0.0
    for p in parts:
        c = next(p.fixed)
        if p.per_byte:
            if p.size == "request":
                c += p.per_byte * req.request_bytes
            elif p.size == "reply":
                c += p.per_byte * req.reply_bytes
        if p.per_command:
            c += p.per_command * req.count
        booked[p.index] += c * scale
        total += c
    return total


class CpuSegment:
    """Consecutive ``cpu`` stages on one context: one task, their summed cost."""

    def __init__(self, kernel: Kernel, context: Context, parts: list[_Part],
                 acct: Accounts) -> None:
        self.kernel = kernel
        self.context = context
        self.parts = parts
        self.acct = acct
        self.first = parts[0].index
        self.inv_speed = 1.0 / context.speed
        one = parts[0]
        self.single = one if len(parts) == 1 and not one.per_command else None
        self._submit = context.domain.submit  # type: ignore[union-attr]  # saves a call per task

    def enter(self, req: Request) -> None:
        p = self.single
        acct = self.acct
        if p is not None:
            w = next(p.fixed)
            if p.per_byte:
                w += p.per_byte * (req.request_bytes if p.size == "request" else
                                   req.reply_bytes if p.size == "reply" else 0.0)
            acct.cpu[p.index] += w * self.inv_speed
        else:
            w = draw_cost(self.parts, req, acct.cpu, self.inv_speed)
        acct.visits[self.first] += 1
        req.work = w
        req.t_seg = self.kernel.env._now
        self._submit(self.context, w, self._done, req)

    def _done(self, event: object) -> None:
        req: Request = event._value  # type: ignore[attr-defined]
        self.acct.wait[self.first] += (self.kernel.env._now - req.t_seg) - req.work * self.inv_speed
        req.pos += 1  # advance(req), inlined on the hot path
        req.route[req.pos].enter(req)


class DelaySegment:
    """Consecutive ``delay`` stages: one timer of their summed duration."""

    def __init__(self, kernel: Kernel, parts: list[_Part], acct: Accounts) -> None:
        self.kernel = kernel
        self.parts = parts
        self.acct = acct
        self.first = parts[0].index

    def enter(self, req: Request) -> None:
        d = draw_cost(self.parts, req, self.acct.device, 1.0)
        self.acct.visits[self.first] += 1
        self.kernel.call_in(d, self._done, req)

    @staticmethod
    def _done(event: object) -> None:
        advance(event._value)  # type: ignore[attr-defined]


class Sink:
    """The end of every route: hands the finished request to whoever waits for it."""

    def __init__(self, on_done) -> None:  # type: ignore[no-untyped-def]
        self.on_done = on_done

    def enter(self, req: Request) -> None:
        self.on_done(req)
